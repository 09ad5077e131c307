//! docs/configuration.md states each key's default; here every literal one (a single
//! backticked value in the table's `default` column) is checked against what validation
//! fills in for a config that leaves the key out, so the two cannot drift apart. A
//! documented literal default without a check here fails, and so does a check whose key
//! the document does not list.

use std::collections::BTreeMap;
use std::time::Duration;

use super::env;
use crate::config::*;

/// A default as validation fills it in.
enum Value {
    Duration(Duration),
    Text(String),
    /// Kept in a form of its own (`token_types`, normalised): judged by whether writing
    /// the documented value yields the same.
    Same(Box<dyn Fn(&str) -> bool>),
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Duration(d) => write!(f, "{}", humantime::format_duration(*d)),
            Value::Text(t) => write!(f, "`{t}`"),
            Value::Same(_) => f.write_str("something else"),
        }
    }
}

/// The `token_types` an issuer gets with `field: written`.
fn token_types_written(field: &str, written: &str) -> Option<TokenTypes> {
    let yaml = format!(
        "listen: {{ext_proc: 'tcp://127.0.0.1:9001'}}\nissuers: [{{issuer: 'http://i', token_types: {{{field}: {written}}}}}]\n"
    );
    Config::from_yaml(&yaml, &env())
        .ok()
        .map(|c| c.issuers[0].token_types.clone())
}

fn text(v: impl ToString) -> Value {
    Value::Text(v.to_string())
}

fn list_text<T: AsRef<str>>(items: &[T]) -> String {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("[{}]", items.join(", "))
}

fn list<T: AsRef<str>>(items: &[T]) -> Value {
    Value::Text(list_text(items))
}

/// The Workload API socket in the environment the config is validated with.
const SOCKET: &str = "unix:///run/spire/agent.sock";

impl Value {
    /// Whether the documented literal `doc` states this value.
    fn stated_by(&self, doc: &str) -> bool {
        match self {
            Value::Duration(d) => humantime::parse_duration(doc).is_ok_and(|p| p == *d),
            Value::Text(t) => t == doc,
            Value::Same(judge) => judge(doc),
        }
    }
}

/// The document's literal defaults: (section, key) → the backticked default.
fn documented() -> BTreeMap<(String, String), String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let backticked = |cell: &str| -> Option<String> {
        let inner = cell.trim().strip_prefix('`')?.strip_suffix('`')?;
        (!inner.contains('`')).then(|| inner.to_string())
    };
    let mut section = String::new();
    let mut out = BTreeMap::new();
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            section = backticked(h).unwrap_or_default();
            continue;
        }
        if !line.starts_with("| `") || section.is_empty() {
            continue;
        }
        // Cells are split at unescaped `|` (a meaning may hold `\|`).
        let cells: Vec<&str> = line.split(" | ").collect();
        let (Some(key), Some(default)) = (
            cells
                .first()
                .and_then(|c| backticked(c.trim_start_matches('|'))),
            cells.get(1).and_then(|c| backticked(c)),
        ) else {
            continue;
        };
        let previous = out.insert((section.clone(), key.clone()), default);
        assert!(previous.is_none(), "`{section}.{key}` is listed twice");
    }
    out
}

fn write(contents: &[u8]) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), contents).unwrap();
    f
}

/// Every section present, every defaulted key left out.
fn everything(github_key: &str, ssh_key: &str, audit_key: &str) -> String {
    format!(
        r#"
listen: {{ext_proc: "tcp://127.0.0.1:9001"}}
issuers:
  - issuer: http://127.0.0.1:8180/realms/demo
    audiences: [agent]
    introspection:
      endpoint: http://127.0.0.1:8180/realms/demo/introspect
  - issuer: http://127.0.0.1:8180/realms/other
outbound:
  token_endpoint: http://127.0.0.1:8180/realms/demo/protocol/openid-connect/token
  client:
    client_id: agent
    auth: {{method: private_key_jwt, private_key_file: '{github_key}'}}
  routes:
    - {{host: plain, cluster: plain, action: exchange, audience: plain}}
    - {{host: docs, cluster: docs, action: exchange, audience: docs, protocol: mcp}}
    - {{host: open, action: passthrough}}
    - {{host: s3.example, cluster: s3, action: credential, credential: s3, mode: sign}}
    - {{host: vend, action: vend, services: {{github: gh, ssh: ssh, postgres: db}}}}
    - {{host: chat, cluster: chat, action: credential, credential: chat, mode: filter}}
credentials:
  - name: s3
    aws_sts: {{role_arn: 'arn:aws:iam::123456789012:role/r', region: us-east-1, bucket: documents}}
  - name: gh
    github_app: {{app_id: 1, installation_id: 2, private_key_file: '{github_key}', owner: o, repositories: {{finance: [r]}}}}
  - name: ssh
    ssh_cert: {{ca_key_file: '{ssh_key}', principals: {{finance: [finance]}}}}
  - name: db
    postgres: {{host: 127.0.0.1, database: d, admin_user: a, admin_password_env: CLIENT_SECRET, roles: {{finance: [r]}}}}
  - name: chat
    filter: {{token_env: CLIENT_SECRET, rules: [{{method: GET, path: /x, query: c, allow: {{finance: [f]}}}}]}}
policy: {{dir: policies}}
audit:
  path: audit.log
  checkpoint: {{signing_key_file: '{audit_key}'}}
admin_api: {{audiences: [admin], roles: [admin]}}
approvals: {{}}
spiffe: {{}}
state: {{redis: {{url: 'redis://127.0.0.1:6379/0'}}}}
rate_limits: {{limits: [{{name: l, per: [user], rate: 1/second}}]}}
"#
    )
}

/// A default that refers to another value (`[client_id]`, `outbound.client`): documented
/// as `written`, and `holds` says validation filled in what it refers to.
fn refers(written: &'static str, holds: bool) -> Value {
    Value::Same(Box::new(move |doc| doc == written && holds))
}

fn same_token_types(field: &'static str, filled_in: &TokenTypes) -> Value {
    let filled_in = filled_in.clone();
    Value::Same(Box::new(move |doc| {
        token_types_written(field, doc).is_some_and(|t| t == filled_in)
    }))
}

/// What validation fills in, by (section, key) as docs/configuration.md names them
/// (`custodian`: the same config with `inbound.token_custody` on, whose other inbound keys
/// are left out). Long by design: one line per defaulted key.
fn filled_in(c: &Config, custodian: &Config) -> BTreeMap<(&'static str, &'static str), Value> {
    use Value::Duration as D;
    let i = &c.issuers[0];
    let intro = i.introspection.as_ref().unwrap();
    let o = c.outbound.as_ref().unwrap();
    let ClientAuthConfig::PrivateKeyJwt { algorithm, .. } = &o.client.auth else {
        panic!("private_key_jwt expected")
    };
    let (max_body_bytes, tool_scope) = match &o.routes[1].action {
        RouteAction::Exchange {
            protocol:
                RouteProtocol::Mcp {
                    max_body_bytes,
                    tool_scope,
                },
            ..
        } => (*max_body_bytes, tool_scope.clone()),
        other => panic!("an mcp exchange expected, got {other:?}"),
    };
    let RouteAction::Exchange {
        target,
        rules,
        protocol,
    } = &o.routes[0].action
    else {
        panic!("an exchange expected")
    };
    let protocol = match protocol {
        RouteProtocol::Http => "http".to_string(),
        other => format!("{other:?}"),
    };
    let RouteAction::Passthrough {
        forward_authorization,
    } = o.routes[2].action
    else {
        panic!("passthrough expected")
    };
    let backend = |n: usize| &c.credentials[n].backend;
    let (BackendConfig::AwsSts(aws), BackendConfig::GithubApp(gh)) = (backend(0), backend(1))
    else {
        panic!("aws_sts and github_app expected")
    };
    let (BackendConfig::SshCert(ssh), BackendConfig::Postgres(pg), BackendConfig::Filter(f)) =
        (backend(2), backend(3), backend(4))
    else {
        panic!("ssh_cert, postgres and filter expected")
    };
    let p = c.policy.as_ref().unwrap();
    let a = c.audit.as_ref().unwrap();
    let cp = a.checkpoint.as_ref().unwrap();
    let ap = c.approvals.as_ref().unwrap();
    let rd = c.redis.as_ref().unwrap();
    let rl = c.rate_limits.as_ref().unwrap();
    let sp = c.spiffe.as_ref().unwrap();
    let inb = &c.inbound;
    let sample_ratio = match c.telemetry.sampling {
        Sampling::ParentBased(Root::AlwaysOn) => "1.0".to_string(),
        ref other => format!("{other:?}"),
    };
    let aws_prefix = match &aws.prefixes {
        PrefixMapping::Template(t) => t.clone(),
        other => format!("{other:?}"),
    };
    let permissions: Vec<String> = gh
        .permissions
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    BTreeMap::from([
        (
            ("listen", "envoy_message_timeout"),
            D(c.envoy_message_timeout),
        ),
        (
            ("issuers[]", "algorithms"),
            list(
                &i.algorithms
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>(),
            ),
        ),
        (("issuers[]", "leeway"), D(i.leeway)),
        (
            ("issuers[]", "jwks_refresh_interval"),
            D(i.jwks_refresh_interval),
        ),
        (
            ("issuers[]", "jwks_min_refetch_interval"),
            D(i.jwks_min_refetch_interval),
        ),
        (("issuers[]", "jwks_timeout"), D(i.jwks_timeout)),
        (("issuers[]", "jwks_max_age"), D(i.jwks_max_age)),
        (("issuers[]", "audiences"), list(&c.issuers[1].audiences)),
        (
            ("issuers[]", "actors_from"),
            text(if i.actors == ActorSource::Act {
                "act"
            } else {
                "azp"
            }),
        ),
        (("issuers[]", "agent_clients"), list::<&str>(&[])),
        (
            ("issuers[]", "introspection.client"),
            refers(
                "outbound.client",
                intro.client.client_id == o.client.client_id,
            ),
        ),
        (("issuers[]", "introspection.timeout"), D(intro.timeout)),
        (("issuers[]", "introspection.cache_ttl"), D(intro.cache_ttl)),
        (
            ("issuers[]", "introspection.cache_entries"),
            text(intro.cache_entries),
        ),
        (
            ("issuers[]", "token_types.header"),
            same_token_types("header", &i.token_types),
        ),
        (
            ("issuers[]", "token_types.claim"),
            same_token_types("claim", &i.token_types),
        ),
        (("tokens", "max_bytes"), text(c.max_token_bytes)),
        (
            ("tokens", "verified_cache_entries"),
            text(c.verified_cache_entries),
        ),
        (("tokens", "max_actor_chain"), text(c.max_actor_chain)),
        (
            ("tokens", "replay_cache_entries"),
            text(c.replay_cache_entries),
        ),
        (("inbound", "delegation"), text(inb.delegation)),
        (
            ("inbound", "public_agent_card"),
            text(inb.public_agent_card),
        ),
        (
            ("inbound", "token_custody"),
            text(inb.custody_entries.is_some()),
        ),
        (
            ("inbound", "custody_entries"),
            text(custodian.inbound.custody_entries.unwrap()),
        ),
        (("policy", "entrypoint"), text(&p.entrypoint)),
        (
            ("policy", "reload_interval"),
            D(p.reload_interval.unwrap_or_default()),
        ),
        (
            ("policy", "decision_cache_entries"),
            text(p.decision_cache_entries),
        ),
        (("policy", "decision_cache_ttl"), D(p.decision_cache_ttl)),
        (("policy", "eval_timeout"), D(p.eval_timeout)),
        (("audit", "retain_files"), text(a.retain_files)),
        (("audit", "max_file_bytes"), text(a.max_file_bytes)),
        (("audit", "queue_capacity"), text(a.queue_capacity)),
        (
            ("audit", "on_queue_full"),
            text(format!("{:?}", a.on_queue_full).to_lowercase()),
        ),
        (("audit", "flush_interval"), D(a.flush_interval)),
        (
            ("audit", "checkpoint.every_records"),
            text(cp.every_records),
        ),
        (("audit", "checkpoint.interval"), D(cp.interval)),
        (
            ("admin_api", "listen"),
            text(c.admin_api.as_ref().unwrap().listen),
        ),
        (("approvals", "timeout"), D(ap.timeout)),
        (("approvals", "max_pending"), text(ap.max_pending)),
        (("state", "redis.timeout"), D(rd.timeout)),
        (("state", "redis.key_prefix"), text(&rd.key_prefix)),
        (("state", "redis.sync_interval"), D(rd.sync_interval)),
        (
            ("rate_limits", "on_unavailable"),
            text(format!("{:?}", rl.on_unavailable).to_lowercase()),
        ),
        (
            ("spiffe", "endpoint"),
            refers("$SPIFFE_ENDPOINT_SOCKET", sp.endpoint == SOCKET),
        ),
        (("spiffe", "svid_secret"), text(&sp.svid_secret)),
        (("spiffe", "bundle_secret"), text(&sp.bundle_secret)),
        (
            ("outbound", "client.auth.algorithm"),
            text(format!("{algorithm:?}")),
        ),
        (("outbound", "send_actor_token"), text(o.send_actor_token)),
        (
            ("outbound", "subject_audiences"),
            refers(
                "[client_id]",
                o.subject_audiences == [o.client.client_id.clone()],
            ),
        ),
        (("outbound", "token_timeout"), D(o.token_timeout)),
        (("outbound", "retry_after"), D(o.retry_after)),
        (("outbound", "cache.max_entries"), text(o.cache_max_entries)),
        (("outbound", "cache.expiry_skew"), D(o.cache_expiry_skew)),
        (
            ("outbound", "default_action"),
            text(if o.default_action == RouteAction::Deny {
                "deny"
            } else {
                "passthrough"
            }),
        ),
        (("outbound", "routes[].scopes"), list(&target.scopes)),
        (("outbound", "routes[].protocol"), text(protocol)),
        (
            ("outbound", "routes[].max_body_bytes"),
            text(max_body_bytes),
        ),
        (("outbound", "routes[].tool_scope"), text(tool_scope)),
        (
            ("outbound", "routes[].forward_authorization"),
            text(forward_authorization),
        ),
        (
            ("outbound", "routes[].allow_direct_use"),
            text(rules.allow_direct_use),
        ),
        (("outbound", "routes[].single_use"), text(rules.single_use)),
        (("outbound", "routes[].introspect"), text(rules.introspect)),
        (("credentials[]", "aws_sts.duration"), D(aws.duration)),
        (("credentials[]", "aws_sts.timeout"), D(aws.timeout)),
        (
            ("credentials[]", "aws_sts.s3_endpoints"),
            text(list_text(&aws.s3_endpoints).replace(&aws.region, "REGION")),
        ),
        (
            ("credentials[]", "aws_sts.prefix_template"),
            text(aws_prefix),
        ),
        (
            ("credentials[]", "aws_sts.public_prefixes"),
            list(&aws.public_prefixes),
        ),
        (
            ("credentials[]", "aws_sts.session_tags"),
            text(aws.session_tags),
        ),
        (
            ("credentials[]", "aws_sts.cache_entries"),
            text(aws.cache_entries),
        ),
        (
            ("credentials[]", "github_app.api_url"),
            text(gh.api_url.as_str().trim_end_matches('/')),
        ),
        (
            ("credentials[]", "github_app.permissions"),
            text(format!("{{{}}}", permissions.join(", "))),
        ),
        (("credentials[]", "github_app.timeout"), D(gh.timeout)),
        (
            ("credentials[]", "github_app.cache_entries"),
            text(gh.cache_entries),
        ),
        (("credentials[]", "ssh_cert.validity"), D(ssh.validity)),
        (
            ("credentials[]", "ssh_cert.extensions"),
            list(&ssh.extensions),
        ),
        (
            ("credentials[]", "ssh_cert.cache_entries"),
            text(ssh.cache_entries),
        ),
        (("credentials[]", "postgres.port"), text(pg.port)),
        (("credentials[]", "postgres.ttl"), D(pg.ttl)),
        (
            ("credentials[]", "postgres.connection_limit"),
            text(pg.connection_limit),
        ),
        (
            ("credentials[]", "postgres.role_prefix"),
            text(&pg.role_prefix),
        ),
        (
            ("credentials[]", "postgres.reaper_interval"),
            D(pg.reaper_interval),
        ),
        (("credentials[]", "postgres.timeout"), D(pg.timeout)),
        (
            ("credentials[]", "filter.max_body_bytes"),
            text(f.max_body_bytes),
        ),
        (("telemetry", "sample_ratio"), text(sample_ratio)),
        (
            ("telemetry", "otlp_protocol"),
            text(c.telemetry.otlp_protocol.as_str()),
        ),
        (("telemetry", "log_allowed"), text(c.telemetry.log_allowed)),
    ])
}

#[test]
fn the_documented_defaults_are_the_ones_validation_fills_in() {
    let github_key = write(
        actbridge_sts::pem::fresh_rsa_private_key()
            .unwrap()
            .as_bytes(),
    );
    let ca =
        ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
            .unwrap();
    let ssh_key = write(ca.to_openssh(ssh_key::LineEnding::LF).unwrap().as_bytes());
    let audit_key = {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
        let k = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        write(k.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes())
    };
    let yaml = everything(
        &github_key.path().display().to_string(),
        &ssh_key.path().display().to_string(),
        &audit_key.path().display().to_string(),
    );
    let mut env = env();
    env.insert(SPIFFE_ENDPOINT_SOCKET.to_string(), SOCKET.to_string());
    let c = Config::from_yaml(&yaml, &env).unwrap();
    let custodian =
        Config::from_yaml(&format!("{yaml}inbound: {{token_custody: true}}\n"), &env).unwrap();
    let code = filled_in(&c, &custodian);
    let doc = documented();

    let mut wrong = Vec::new();
    for ((section, key), value) in &code {
        match doc.get(&(section.to_string(), key.to_string())) {
            None => wrong.push(format!(
                "`{section}.{key}`: a default, but no literal one in docs/configuration.md"
            )),
            Some(d) if !value.stated_by(d) => wrong.push(format!(
                "`{section}.{key}`: documented `{d}`, validation fills in {value:?}"
            )),
            Some(_) => {}
        }
    }
    for ((section, key), d) in &doc {
        if !code.contains_key(&(section.as_str(), key.as_str())) {
            wrong.push(format!(
                "`{section}.{key}`: documented `{d}`, not checked here (add it to `filled_in`)"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
