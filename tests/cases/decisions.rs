//! The decision core as a table, in process and without Envoy: one sidecar config (every
//! route action), the embedded token service on loopback as issuer and token endpoint,
//! the shipped policy, and rows of (request facts, body) → (status and reason, or what
//! the request goes on with). Each row is one rule; a new refusal gets a row here before
//! it gets an Envoy test.

use std::collections::HashMap;
use std::sync::Arc;

use actbridge::clock::Clock;
use actbridge::config::Config;
use actbridge::credentials::Credentials;
use actbridge::pipeline::{Decision, Pipeline, RequestFacts};
use actbridge::policy::PolicyEngine;
use actbridge::state::revocations::{Revocation, RevocationKind};
use actbridge::state::{DenyList, State};
use serde_json::json;

use crate::support::world::{AGENT, Sts, agent_id, policies_dir};

const DOCS_AUDIENCE: &str = "spiffe://demo.example.com/service/document-service";
const MCP: &str = "spiffe://demo.example.com/tool/mcp-documents";
const CHAT_TOKEN: &str = "xoxb-table-service-token";

fn config(sts: &Sts, ca_key: &std::path::Path) -> String {
    format!(
        r#"
listen:
  ext_proc: tcp://127.0.0.1:1
issuers:
  - issuer: {issuer}
    audiences: ["{AGENT}"]
    jwks_min_refetch_interval: 1h
inbound:
  bypass_paths: [{{exact: /healthz}}]
outbound:
  token_endpoint: {token}
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_post, secret: summarizer-tech-demo-secret}}
  routes:
    - {{name: document-service, host: document-service, cluster: document_service, action: exchange, audience: "{DOCS_AUDIENCE}", scopes: [documents.read]}}
    - {{name: mcp-documents, host: mcp-documents, cluster: mcp, action: exchange, audience: "{MCP}", scopes: [mcp], protocol: mcp, max_body_bytes: 256}}
    - {{name: blocked, host: blocked.example, action: deny}}
    - {{name: plain, host: plain.example, cluster: plain, action: passthrough}}
    - {{name: chat, host: chat.example, cluster: chat, action: credential, credential: chat, mode: filter}}
    - {{name: credentials, host: credentials.actbridge.local, action: vend, services: {{ssh: ssh}}}}
credentials:
  - name: chat
    filter:
      token_env: CHAT_TOKEN
      max_body_bytes: 128
      rules:
        - {{method: POST, path: /api/chat.postMessage, body_field: channel, allow: {{finance: [finance-general], hr: [hr-private]}}}}
  - name: ssh
    ssh_cert: {{ca_key_file: {ca}, principals: {{finance: [finance], engineering: [engineering]}}}}
policy:
  dir: {policies}
"#,
        issuer = sts.service.issuer(),
        token = sts.service.token_endpoint(),
        ca = ca_key.display(),
        policies = policies_dir().display(),
    )
}

/// The token a row presents.
#[derive(Clone, Copy, Debug)]
enum Token {
    None,
    /// `Authorization: Basic …`.
    Basic,
    /// A JWT whose signature does not verify.
    Forged,
    /// alice's own login token for the agent (no `act`).
    AliceOwn,
    /// alice's token delegated to summarizer-tech.
    Alice,
    /// As `Alice`, logged in with the MCP server's scopes.
    AliceMcp,
    /// carol's token delegated to summarizer-tech (hr ∩ engineering,finance = nothing).
    Carol,
    /// A token for another audience.
    OtherAudience,
    /// An expired token.
    Expired,
}

/// What a row expects.
#[derive(Debug)]
enum Expect {
    /// Refused with this status and reason.
    Deny(u16, &'static str),
    /// Forwarded; `authorization` set to something other than what was presented.
    ForwardWithNewAuthorization,
    /// Forwarded with the caller's headers untouched.
    ForwardUnchanged,
    /// Forwarded with the verified identity in the trusted headers.
    ForwardWithIdentity,
    /// Answered by actbridge with this status.
    Answer(u16),
}

struct Row {
    name: &'static str,
    direction: &'static str,
    method: &'static str,
    authority: &'static str,
    path: &'static str,
    /// Envoy's route and cluster (`None`: the attributes are missing).
    envoy: Option<(&'static str, Option<&'static str>)>,
    token: Token,
    extra: &'static [(&'static str, &'static str)],
    /// The body, when the request has one.
    body: Option<String>,
    expect: Expect,
}

fn row(name: &'static str, authority: &'static str, path: &'static str, expect: Expect) -> Row {
    let envoy = match authority {
        "document-service" => Some(("document-service", Some("document_service"))),
        "mcp-documents" => Some(("mcp-documents", Some("mcp"))),
        "blocked.example" => Some(("blocked", None)),
        "plain.example" => Some(("plain", Some("plain"))),
        "chat.example" => Some(("chat", Some("chat"))),
        "credentials.actbridge.local" => Some(("credentials", None)),
        _ => Some(("default", None)),
    };
    Row {
        name,
        direction: "outbound",
        method: "GET",
        authority,
        path,
        envoy,
        token: if authority == "mcp-documents" {
            Token::AliceMcp
        } else {
            Token::Alice
        },
        extra: &[],
        body: None,
        expect,
    }
}

struct Table {
    sts: Sts,
    pipeline: Pipeline,
    alice: String,
    alice_own: String,
    alice_mcp: String,
    carol: String,
}

/// A fresh SSH certificate authority's key, in a directory that lives as long as the
/// returned guard.
fn ssh_ca() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let key =
        ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
            .unwrap();
    std::fs::write(&ca, key.to_openssh(ssh_key::LineEnding::LF).unwrap()).unwrap();
    (dir, ca)
}

/// A pipeline built from `yaml` (the chat token in the environment), its issuer's keys
/// loaded.
async fn pipeline(yaml: &str, revocations: Arc<DenyList>) -> Pipeline {
    pipeline_on_clock(yaml, revocations, Clock::system()).await
}

/// [`pipeline`], its single-use memory and custody reading `clock`.
async fn pipeline_on_clock(yaml: &str, revocations: Arc<DenyList>, clock: Clock) -> Pipeline {
    let env = HashMap::from([("CHAT_TOKEN".to_string(), CHAT_TOKEN.to_string())]);
    let cfg = Config::from_yaml(yaml, &env).unwrap();
    let policy = PolicyEngine::load_configured(cfg.policy.as_ref()).unwrap();
    let credentials = Arc::new(Credentials::load(&cfg.credentials).await);
    let state = State::with_clock(&cfg, revocations, clock);
    let pipeline = Pipeline::new(&cfg, policy, credentials, &state).unwrap();
    for store in pipeline.verifier().jwks_stores() {
        store.refresh().await.unwrap();
    }
    pipeline
}

/// Whether `got` is what `expect` says (`presented`: the `authorization` sent).
fn verdict(
    expect: &Expect,
    got: &Result<Decision, actbridge::pipeline::Denial>,
    presented: &str,
) -> Result<(), String> {
    let ok = match (expect, got) {
        (Expect::Deny(status, reason), Err(d))
        | (Expect::Deny(status, reason), Ok(Decision::Deny(d))) => {
            d.status == *status && d.reason == *reason
        }
        (
            Expect::ForwardWithNewAuthorization,
            Ok(
                Decision::Continue(m)
                | Decision::Narrow { mutations: m, .. }
                | Decision::Watch { mutations: m, .. },
            ),
        ) => m
            .set
            .iter()
            .any(|(k, v)| k == "authorization" && v.as_bytes() != presented.as_bytes()),
        (Expect::ForwardUnchanged, Ok(Decision::Continue(m))) => m.set.is_empty(),
        (Expect::ForwardWithIdentity, Ok(Decision::Continue(m))) => m
            .set
            .iter()
            .any(|(k, v)| k == "x-actbridge-username" && v == "alice"),
        (Expect::Answer(status), Ok(Decision::Respond(reply))) => reply.status == *status,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let got = match got {
        Err(d) | Ok(Decision::Deny(d)) => {
            format!("deny {} {} ({})", d.status, d.reason, d.description)
        }
        Ok(other) => format!("{other:?}"),
    };
    Err(format!("expected {expect:?}, got {got}"))
}

impl Table {
    async fn start() -> (Table, tempfile::TempDir) {
        let (dir, ca) = ssh_ca();
        let sts = Sts::start().await;
        let revocations = Arc::new(DenyList::load(None).unwrap());
        let pipeline = pipeline(&config(&sts, &ca), revocations).await;
        let alice = sts.delegated("alice", "summarizer-tech", AGENT).await;
        let alice_own = sts.alice().await;
        let carol = sts.delegated("carol", "summarizer-tech", AGENT).await;
        let own = sts
            .login_scoped(
                "alice",
                "alice123",
                (AGENT, "summarizer-tech-demo-secret"),
                "openid mcp mcp:read_document mcp:search",
            )
            .await;
        let alice_mcp = sts
            .exchange_as("summarizer-tech", &own, AGENT, true)
            .await
            .unwrap();
        let table = Table {
            sts,
            pipeline,
            alice,
            alice_own,
            alice_mcp,
            carol,
        };
        (table, dir)
    }

    fn authorization(&self, token: Token) -> Option<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let signed = |aud: &str, exp: u64| {
            self.sts.sign(json!({
                "iss": self.sts.service.issuer(), "sub": "0b7e-alice",
                "preferred_username": "alice", "aud": aud, "exp": exp, "iat": now - 600,
            }))
        };
        Some(match token {
            Token::None => return None,
            Token::Basic => "Basic YWxpY2U6YWxpY2UxMjM=".to_string(),
            Token::Forged => {
                // One character in the middle of the signature changed.
                let mut t = self.alice.clone().into_bytes();
                let at = t.iter().rposition(|b| *b == b'.').unwrap() + 10;
                t[at] = if t[at] == b'A' { b'B' } else { b'A' };
                format!("Bearer {}", String::from_utf8(t).unwrap())
            }
            Token::AliceOwn => format!("Bearer {}", self.alice_own),
            Token::Alice => format!("Bearer {}", self.alice),
            Token::AliceMcp => format!("Bearer {}", self.alice_mcp),
            Token::Carol => format!("Bearer {}", self.carol),
            Token::OtherAudience => {
                format!("Bearer {}", signed(&agent_id("reviewer-ops"), now + 300))
            }
            Token::Expired => format!("Bearer {}", signed(AGENT, now - 120)),
        })
    }

    /// The decision for `r`, its body decided too when the core asks for it.
    async fn decide(&self, r: &Row) -> Result<Decision, actbridge::pipeline::Denial> {
        decide(&self.pipeline, r, self.authorization(r.token)).await
    }
}

/// The decision of `pipeline` for `r` presenting `authorization`, its body decided too
/// when the core asks for it.
async fn decide(
    pipeline: &Pipeline,
    r: &Row,
    authorization: Option<String>,
) -> Result<Decision, actbridge::pipeline::Denial> {
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        (":authority".into(), r.authority.as_bytes().to_vec()),
        (":method".into(), r.method.as_bytes().to_vec()),
        (":path".into(), r.path.as_bytes().to_vec()),
    ];
    if let Some(a) = authorization {
        headers.push(("authorization".into(), a.into_bytes()));
    }
    for (k, v) in r.extra {
        headers.push((k.to_string(), v.as_bytes().to_vec()));
    }
    let mut facts = match RequestFacts::new(Some(r.direction), headers) {
        Ok(f) => f,
        Err(e) => return Err(pipeline.refuse_unreadable(Some(r.direction), e)),
    };
    facts.end_of_stream = r.body.is_none();
    if let Some((route, cluster)) = r.envoy {
        facts.proxy_route = Some(route.to_string());
        facts.proxy_cluster = cluster.map(str::to_string);
    }
    let decision = pipeline.decide(&facts).await;
    Ok(match (decision, &r.body) {
        (Decision::ReadBody { max_bytes, .. }, Some(body)) => {
            let within = (body.len() <= max_bytes).then_some(body.as_bytes());
            pipeline.decide_body(&facts, within).await
        }
        (d, _) => d,
    })
}

fn rows() -> Vec<Row> {
    use Expect::*;
    let alice_own = |mut r: Row| {
        r.token = Token::AliceOwn;
        r
    };
    let inbound = |mut r: Row, token: Token| {
        r.direction = "inbound";
        r.envoy = None;
        r.token = token;
        r
    };
    let with = |mut r: Row, token: Token| {
        r.token = token;
        r
    };
    let body = |mut r: Row,
                method: &'static str,
                b: &'static str,
                extra: &'static [(&'static str, &'static str)]| {
        r.method = method;
        r.body = Some(b.to_string());
        r.extra = extra;
        r
    };
    let json = &[("content-type", "application/json")][..];
    vec![
        // Route actions.
        row(
            "exchange: a delegated token is exchanged",
            "document-service",
            "/documents/DOC-001",
            ForwardWithNewAuthorization,
        ),
        row(
            "deny route",
            "blocked.example",
            "/",
            Deny(403, "route_denied"),
        ),
        row(
            "default: no route",
            "unknown.example",
            "/",
            Deny(403, "route_denied"),
        ),
        with(
            row(
                "passthrough: the caller's request goes on",
                "plain.example",
                "/x",
                ForwardUnchanged,
            ),
            Token::None,
        ),
        body(
            row(
                "credential (filter): an allowed channel gets the service token",
                "chat.example",
                "/api/chat.postMessage",
                ForwardWithNewAuthorization,
            ),
            "POST",
            r#"{"channel":"finance-general"}"#,
            json,
        ),
        body(
            row(
                "vend: an SSH certificate is answered",
                "credentials.actbridge.local",
                "/credentials",
                Answer(200),
            ),
            "POST",
            r#"{"target_service":"ssh","action":"login","public_key":"PUBKEY"}"#,
            json,
        ),
        body(
            row(
                "mcp: a tools/list is judged and exchanged",
                "mcp-documents",
                "/mcp",
                ForwardWithNewAuthorization,
            ),
            "POST",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            json,
        ),
        // Inbound.
        inbound(
            row(
                "inbound: a verified caller's identity goes to the app",
                "app",
                "/data",
                ForwardWithIdentity,
            ),
            Token::AliceOwn,
        ),
        inbound(
            row(
                "inbound: no token",
                "app",
                "/data",
                Deny(401, "token_missing"),
            ),
            Token::None,
        ),
        inbound(
            row(
                "inbound: a forged signature",
                "app",
                "/data",
                Deny(401, "token_bad_signature"),
            ),
            Token::Forged,
        ),
        inbound(
            row(
                "inbound: a bypass path goes on unverified",
                "app",
                "/healthz",
                ForwardUnchanged,
            ),
            Token::None,
        ),
        // The request itself.
        row(
            "a path with two readings",
            "document-service",
            "/documents;x=1",
            Deny(400, "path_ambiguous"),
        ),
        row(
            "userinfo in the authority",
            "alice@document-service",
            "/documents",
            Deny(400, "authority_ambiguous"),
        ),
        Row {
            envoy: None,
            ..row(
                "Envoy did not say which route it chose",
                "document-service",
                "/documents",
                Deny(500, "proxy_route_unknown"),
            )
        },
        Row {
            envoy: Some(("blocked", None)),
            ..row(
                "Envoy chose another route",
                "document-service",
                "/documents",
                Deny(403, "route_mismatch"),
            )
        },
        Row {
            envoy: Some(("document-service", Some("egress"))),
            ..row(
                "Envoy chose another cluster",
                "document-service",
                "/documents",
                Deny(403, "route_mismatch"),
            )
        },
        // The token.
        with(
            row(
                "no token",
                "document-service",
                "/documents",
                Deny(401, "token_missing"),
            ),
            Token::None,
        ),
        with(
            row(
                "not a bearer token",
                "document-service",
                "/documents",
                Deny(401, "authorization_malformed"),
            ),
            Token::Basic,
        ),
        with(
            row(
                "a forged signature",
                "document-service",
                "/documents",
                Deny(401, "token_bad_signature"),
            ),
            Token::Forged,
        ),
        with(
            row(
                "an expired token",
                "document-service",
                "/documents",
                Deny(401, "token_expired"),
            ),
            Token::Expired,
        ),
        with(
            row(
                "a token for another audience",
                "document-service",
                "/documents",
                Deny(401, "token_wrong_audience"),
            ),
            Token::OtherAudience,
        ),
        alice_own(row(
            "the user's own token where a delegation is required",
            "document-service",
            "/documents",
            Deny(403, "delegation_required"),
        )),
        // The policy.
        // (The shipped policy refuses an empty grant itself, with its own reason.)
        with(
            row(
                "an empty grant",
                "document-service",
                "/documents",
                Deny(403, "policy_denied"),
            ),
            Token::Carol,
        ),
        row(
            "a document outside the grant",
            "document-service",
            "/documents/DOC-004",
            Deny(403, "policy_denied"),
        ),
        Row {
            method: "DELETE",
            ..row(
                "a request shape the policy does not know",
                "document-service",
                "/documents/DOC-001",
                Deny(403, "policy_denied"),
            )
        },
        // Credential backends.
        body(
            row(
                "filter: a channel outside the grant",
                "chat.example",
                "/api/chat.postMessage",
                Deny(403, "filter_refused"),
            ),
            "POST",
            r#"{"channel":"hr-private"}"#,
            json,
        ),
        body(
            row(
                "filter: a body over the limit",
                "chat.example",
                "/api/chat.postMessage",
                Deny(413, "body_too_large"),
            ),
            "POST",
            r#"{"channel":"finance-general","text":"................................................................................................................................"}"#,
            json,
        ),
        row(
            "vend: another path",
            "credentials.actbridge.local",
            "/other",
            Deny(404, "not_found"),
        ),
        row(
            "vend: another method",
            "credentials.actbridge.local",
            "/credentials",
            Deny(405, "method_not_allowed"),
        ),
        body(
            row(
                "vend: a body that is not a vending request",
                "credentials.actbridge.local",
                "/credentials",
                Deny(400, "vend_body_invalid"),
            ),
            "POST",
            "not json",
            json,
        ),
        // Agent protocols.
        body(
            row(
                "mcp: a body that is not JSON",
                "mcp-documents",
                "/mcp",
                Deny(400, "jsonrpc_parse_error"),
            ),
            "POST",
            "{",
            json,
        ),
        body(
            row(
                "mcp: a member named twice (parsers disagree on which wins)",
                "mcp-documents",
                "/mcp",
                Deny(400, "jsonrpc_invalid"),
            ),
            "POST",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}"#,
            json,
        ),
        body(
            row(
                "mcp: a tools/call without a tool name",
                "mcp-documents",
                "/mcp",
                Deny(400, "mcp_invalid"),
            ),
            "POST",
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"arguments":{}}}"#,
            json,
        ),
        Row {
            method: "PUT",
            ..row(
                "mcp: a method MCP does not define",
                "mcp-documents",
                "/mcp",
                Deny(405, "method_not_allowed"),
            )
        },
    ]
}

/// Every row decides as its rule says.
#[tokio::test]
async fn every_rule_decides_as_the_table_says() {
    let (t, _dir) = Table::start().await;
    let public_key =
        ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
            .unwrap()
            .public_key()
            .to_openssh()
            .unwrap();
    let mut failures = Vec::new();
    for r in rows() {
        let r = Row {
            body: r.body.as_ref().map(|b| b.replace("PUBKEY", &public_key)),
            ..r
        };
        let presented = t.authorization(r.token).unwrap_or_default();
        let got = t.decide(&r).await;
        if let Err(why) = verdict(&r.expect, &got, &presented) {
            failures.push(format!("{}: {why}", r.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The sidecar with the inbound protections on: single-use tokens on `/once` (a memory
/// of one), token custody, a passthrough route that forwards `authorization`.
fn guarded_config(sts: &Sts) -> String {
    format!(
        r#"
listen:
  ext_proc: tcp://127.0.0.1:1
issuers:
  - issuer: {issuer}
    audiences: ["{AGENT}"]
tokens:
  replay_cache_entries: 1
inbound:
  single_use_paths: [{{exact: /once}}]
  token_custody: true
outbound:
  token_endpoint: {token}
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_post, secret: summarizer-tech-demo-secret}}
  routes:
    - {{name: document-service, host: document-service, cluster: document_service, action: exchange, audience: "{DOCS_AUDIENCE}", scopes: [documents.read]}}
    - {{name: plain, host: plain.example, cluster: plain, action: passthrough, forward_authorization: true}}
policy:
  dir: {policies}
"#,
        issuer = sts.service.issuer(),
        token = sts.service.token_endpoint(),
        policies = policies_dir().display(),
    )
}

/// The `authorization` the app gets from an inbound decision under custody: its
/// placeholder.
fn app_authorization(got: &Result<Decision, actbridge::pipeline::Denial>) -> String {
    let Ok(Decision::Continue(m)) = got else {
        panic!("inbound with custody: {got:?}")
    };
    m.set
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.to_str().unwrap().to_string())
        .expect("the app's authorization is replaced")
}

/// The rules that depend on what came before — single use, custody, revocation — as
/// one table of steps, in order, on one pipeline; and a sidecar without `outbound`.
#[tokio::test]
async fn stateful_rules_decide_as_the_table_says() {
    use Expect::*;
    let sts = Sts::start().await;
    let revocations = Arc::new(DenyList::load(None).unwrap());
    let p = pipeline(&guarded_config(&sts), revocations.clone()).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let alice_own = sts.alice().await;
    // alice's own token, re-signed with another `jti` (or none).
    let alice_with = |jti: Option<&str>| {
        let mut claims = crate::support::world::claims_of(&alice_own);
        match jti {
            Some(j) => claims["jti"] = json!(j),
            None => {
                claims.as_object_mut().unwrap().remove("jti");
            }
        }
        format!("Bearer {}", sts.sign(claims))
    };
    let inbound = |path: &'static str| Row {
        direction: "inbound",
        envoy: None,
        ..row("", "app", path, ForwardUnchanged)
    };
    let outbound =
        |authority: &'static str, path: &'static str| row("", authority, path, ForwardUnchanged);

    // Custody: the app gets a placeholder for alice's token.
    let got = decide(&p, &inbound("/data"), Some(format!("Bearer {alice_own}"))).await;
    let placeholder = app_authorization(&got);
    assert!(
        placeholder.starts_with("Bearer actbridge~"),
        "{placeholder}"
    );
    let unknown = "Bearer actbridge~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string();

    let steps: Vec<(&str, Row, Option<String>, Expect)> = vec![
        (
            "a single-use token, first use",
            inbound("/once"),
            Some(alice_with(Some("jti-1"))),
            ForwardWithIdentity,
        ),
        (
            "the same token again",
            inbound("/once"),
            Some(alice_with(Some("jti-1"))),
            Deny(401, "token_replayed"),
        ),
        (
            "another while the memory of one is full",
            inbound("/once"),
            Some(alice_with(Some("jti-2"))),
            Deny(503, "replay_memory_full"),
        ),
        (
            "a single-use path without a jti",
            inbound("/once"),
            Some(alice_with(None)),
            Deny(401, "token_id_missing"),
        ),
        (
            "a placeholder presented inbound",
            inbound("/data"),
            Some(placeholder.clone()),
            Deny(401, "placeholder_misused"),
        ),
        (
            "a placeholder this sidecar never gave out",
            outbound("document-service", "/documents"),
            Some(unknown),
            Deny(401, "placeholder_unknown"),
        ),
        (
            "a placeholder forwarded by a passthrough route",
            outbound("plain.example", "/"),
            Some(placeholder.clone()),
            Deny(401, "placeholder_misused"),
        ),
        (
            "a user's token forwarded by a passthrough route",
            outbound("plain.example", "/"),
            Some(format!("Bearer {alice_own}")),
            Deny(403, "user_token_would_leave"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, r, authorization, expect) in steps {
        let presented = authorization.clone().unwrap_or_default();
        let got = decide(&p, &r, authorization).await;
        if let Err(why) = verdict(&expect, &got, &presented) {
            failures.push(format!("{name}: {why}"));
        }
    }

    // Revocation: alice's user, then the agent.
    let delegated = format!(
        "Bearer {}",
        sts.delegated("alice", "summarizer-tech", AGENT).await
    );
    let docs = outbound("document-service", "/documents");
    for (kind, value, expect) in [
        (RevocationKind::Agent, AGENT, Deny(403, "agent_revoked")),
        (RevocationKind::User, "alice", Deny(401, "token_revoked")),
    ] {
        revocations
            .add(Revocation {
                kind,
                value: value.to_string(),
                reason: None,
                by: "table".into(),
                at: now,
            })
            .unwrap();
        let got = decide(&p, &docs, Some(delegated.clone())).await;
        if let Err(why) = verdict(&expect, &got, &delegated) {
            failures.push(format!("revoked {value}: {why}"));
        }
        revocations.remove(kind, value).unwrap();
    }

    // A sidecar without `outbound` refuses every outbound request.
    let guarded = guarded_config(&sts).replace("  token_custody: true\n", "");
    let inbound_only = &guarded[..guarded.find("outbound:").unwrap()];
    let p = pipeline(inbound_only, Arc::new(DenyList::load(None).unwrap())).await;
    let got = decide(&p, &docs, Some(delegated.clone())).await;
    if let Err(why) = verdict(&Deny(403, "outbound_disabled"), &got, &delegated) {
        failures.push(format!("no outbound section: {why}"));
    }
    assert!(
        failures.is_empty(),
        "{} steps failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A policy whose answer the request's path picks, for the rules actbridge enforces on
/// the policy's answer itself.
const SCRIPTED_POLICY: &str = r#"package actbridge

import rego.v1

default decision := {"allow": false, "reason": "not scripted"}

decision := {"allow": true, "reason": "ok", "grant": ["x"]} if input.path in {"/ok", "/live"}

decision := {"allow": true, "reason": "an empty grant", "grant": []} if input.path == "/empty-grant"

decision := {"allow": true, "reason": "a person decides", "grant": ["x"], "approval_required": true} if {
	input.path == "/approval"
}

decision := {"allow": true, "reason": 7, "grant": ["x"]} if input.path == "/malformed"

decision := {"allow": true, "reason": "one", "grant": ["x"]} if input.path == "/conflict"

decision := {"allow": true, "reason": "two", "grant": ["y"]} if input.path == "/conflict"
"#;

/// A sidecar with the scripted policy, live checks at the issuer on `/live`, and an
/// exchange route whose audience the token service does not know; `token_endpoint`
/// overrides the token service's own.
fn scripted_config(sts: &Sts, policies: &std::path::Path, token_endpoint: Option<&str>) -> String {
    format!(
        r#"
listen:
  ext_proc: tcp://127.0.0.1:1
issuers:
  - issuer: {issuer}
    audiences: ["{AGENT}"]
    introspection:
      endpoint: {introspection}
inbound:
  introspect_paths: [{{exact: /live}}]
outbound:
  token_endpoint: {token}
  token_timeout: 1s
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_post, secret: summarizer-tech-demo-secret}}
  routes:
    - {{name: document-service, host: document-service, cluster: document_service, action: exchange, audience: "{DOCS_AUDIENCE}", scopes: [documents.read]}}
    - {{name: nowhere, host: nowhere.example, cluster: nowhere, action: exchange, audience: "spiffe://demo.example.com/service/nowhere"}}
policy:
  dir: {policies}
"#,
        issuer = sts.service.issuer(),
        introspection = sts.service.introspection_endpoint(),
        token = token_endpoint.map_or_else(|| sts.service.token_endpoint(), str::to_string),
        policies = policies.display(),
    )
}

/// What actbridge enforces on a policy's answer (an empty grant, an approval nobody can
/// give, a malformed or conflicting answer), and its peers' failures: the token service
/// refusing or gone, a token revoked at the issuer.
#[tokio::test]
async fn the_policys_answers_and_the_peers_failures_decide_as_the_table_says() {
    use Expect::*;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scripted.rego"), SCRIPTED_POLICY).unwrap();
    let sts = Sts::start().await;
    let deny_list = || Arc::new(DenyList::load(None).unwrap());
    let p = pipeline(&scripted_config(&sts, dir.path(), None), deny_list()).await;
    let alice = format!(
        "Bearer {}",
        sts.delegated("alice", "summarizer-tech", AGENT).await
    );
    let docs = |path: &'static str| row("", "document-service", path, ForwardUnchanged);
    let mut steps: Vec<(&str, Row, Expect)> = vec![
        (
            "the policy allows: exchanged",
            docs("/ok"),
            ForwardWithNewAuthorization,
        ),
        (
            "an allow with an empty grant",
            docs("/empty-grant"),
            Deny(403, "grant_empty"),
        ),
        (
            "an approval and no approvals configured",
            docs("/approval"),
            Deny(403, "approval_unavailable"),
        ),
        (
            "an answer of the wrong shape",
            docs("/malformed"),
            Deny(403, "policy_error"),
        ),
        (
            "two rules, two answers",
            docs("/conflict"),
            Deny(403, "policy_error"),
        ),
        (
            "a refusal with the policy's reason",
            docs("/other"),
            Deny(403, "policy_denied"),
        ),
        (
            "an audience the token service refuses",
            Row {
                envoy: Some(("nowhere", Some("nowhere"))),
                ..row("", "nowhere.example", "/ok", ForwardUnchanged)
            },
            Deny(403, "exchange_refused"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, r, expect) in steps.drain(..) {
        let got = decide(&p, &r, Some(alice.clone())).await;
        if let Err(why) = verdict(&expect, &got, &alice) {
            failures.push(format!("{name}: {why}"));
        }
    }

    // A token revoked at the issuer: refused where it is checked live.
    let own = sts.alice().await;
    let live = Row {
        direction: "inbound",
        envoy: None,
        ..row("", "app", "/live", ForwardWithIdentity)
    };
    let bearer = format!("Bearer {own}");
    let before = decide(&p, &live, Some(bearer.clone())).await;
    if let Err(why) = verdict(&ForwardWithIdentity, &before, &bearer) {
        failures.push(format!("live check, active: {why}"));
    }
    let revoked = reqwest::Client::new()
        .post(sts.service.revocation_endpoint())
        .form(&[
            ("client_id", AGENT),
            ("client_secret", "summarizer-tech-demo-secret"),
            ("token", own.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let after = decide(&p, &live, Some(bearer.clone())).await;
    if let Err(why) = verdict(&Deny(401, "token_inactive"), &after, &bearer) {
        failures.push(format!("live check, revoked at the issuer: {why}"));
    }

    // The token service gone: 503 with Retry-After.
    let gone = format!(
        "http://127.0.0.1:{}/token",
        crate::support::net::free_port()
    );
    let p = pipeline(&scripted_config(&sts, dir.path(), Some(&gone)), deny_list()).await;
    let got = decide(&p, &docs("/ok"), Some(alice.clone())).await;
    if let Err(why) = verdict(&Deny(503, "sts_unavailable"), &got, &alice) {
        failures.push(format!("token service gone: {why}"));
    }
    match &got {
        Ok(Decision::Deny(d)) if d.retry_after.is_some() => {}
        other => failures.push(format!("token service gone: no Retry-After in {other:?}")),
    }
    assert!(
        failures.is_empty(),
        "{} steps failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A placeholder dies with the token it stands for: past the token's `exp` (by the
/// custody's clock, moved by hand instead of slept), it no longer resolves, though the
/// token is still inside the verifier's leeway.
#[tokio::test]
async fn a_placeholder_dies_with_its_token() {
    use Expect::*;
    let sts = Sts::start().await;
    let now = actbridge::clock::now_secs();
    let clock = Clock::manual(now);
    let revocations = Arc::new(DenyList::load(None).unwrap());
    let p = pipeline_on_clock(&guarded_config(&sts), revocations, clock.clone()).await;
    // alice's token delegated to this agent, re-signed to live three seconds.
    let mut claims =
        crate::support::world::claims_of(&sts.delegated("alice", "summarizer-tech", AGENT).await);
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 3);
    let token = sts.sign(claims);
    let inbound = Row {
        direction: "inbound",
        envoy: None,
        ..row("", "app", "/data", ForwardUnchanged)
    };
    let got = decide(&p, &inbound, Some(format!("Bearer {token}"))).await;
    let placeholder = app_authorization(&got);
    let docs = row("", "document-service", "/documents", ForwardUnchanged);
    let got = decide(&p, &docs, Some(placeholder.clone())).await;
    verdict(&ForwardWithNewAuthorization, &got, &placeholder).unwrap();
    clock.advance(3);
    let got = decide(&p, &docs, Some(placeholder.clone())).await;
    verdict(&Deny(401, "placeholder_unknown"), &got, &placeholder).unwrap();
}

/// A route whose backend or policy is missing stops the start, naming the route and
/// what is missing, instead of refusing each request it matches with a 500.
#[tokio::test]
async fn a_route_without_its_backend_or_policy_is_refused_at_start() {
    let sts = Sts::start().await;
    let (_dir, ca) = ssh_ca();
    let env = HashMap::from([("CHAT_TOKEN".to_string(), CHAT_TOKEN.to_string())]);
    let cfg = Config::from_yaml(&config(&sts, &ca), &env).unwrap();
    let state = State::new(&cfg, Arc::new(DenyList::load(None).unwrap()));
    let policy = PolicyEngine::load_configured(cfg.policy.as_ref()).unwrap();
    let loaded = Arc::new(Credentials::load(&cfg.credentials).await);

    let without_backends = Pipeline::new(
        &cfg,
        policy.clone(),
        Arc::new(Credentials::default()),
        &state,
    );
    let err = without_backends
        .err()
        .expect("a credential route without its backend must not build")
        .to_string();
    assert!(
        err.contains("route `chat`") && err.contains("credential `chat`"),
        "the error names the route and the backend: {err}"
    );

    let without_policy = Pipeline::new(&cfg, None, loaded.clone(), &state);
    let err = without_policy
        .err()
        .expect("a credential route without a policy must not build")
        .to_string();
    assert!(
        err.contains("route `chat`") && err.contains("no policy"),
        "the error names the route: {err}"
    );

    assert!(Pipeline::new(&cfg, policy, loaded, &state).is_ok());
}

/// The config of `scripted_config` with `from` replaced by `to` (one change per row).
fn scripted_with(sts: &Sts, policies: &std::path::Path, from: &str, to: &str) -> String {
    let yaml = scripted_config(sts, policies, None);
    assert!(
        yaml.contains(from),
        "`{from}` is not in the scripted config"
    );
    yaml.replacen(from, to, 1)
}

/// What is refused because a peer or the proxy failed actbridge — the remote policy, the
/// issuer's keys, the token service answering garbage, the issuer's live check, the proxy
/// sending what cannot be read or a body never asked for — each as the table says, in
/// process.
#[tokio::test]
async fn peer_and_proxy_failures_refuse_as_the_table_says() {
    use Expect::*;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scripted.rego"), SCRIPTED_POLICY).unwrap();
    let sts = Sts::start().await;
    let deny_list = || Arc::new(DenyList::load(None).unwrap());
    let alice = format!(
        "Bearer {}",
        sts.delegated("alice", "summarizer-tech", AGENT).await
    );
    let docs = docs_row();
    let nowhere = || format!("http://127.0.0.1:{}", crate::support::net::free_port());
    let mut failures = Vec::new();

    // A remote OPA that does not answer.
    let opa = scripted_with(
        &sts,
        dir.path(),
        &format!("  dir: {}", dir.path().display()),
        &format!("  opa_url: {}", nowhere()),
    );
    let p = pipeline(&opa, deny_list()).await;
    let got = decide(&p, &docs, Some(alice.clone())).await;
    note(
        &mut failures,
        "the remote policy is down",
        &got,
        Deny(503, "policy_unavailable"),
        &alice,
    );

    // A token service that answers what is not a token response.
    let garbage = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage_url = format!("http://{}/token", garbage.local_addr().unwrap());
    let answers_garbage =
        axum::Router::new().route("/token", axum::routing::post(|| async { "not json" }));
    tokio::spawn(async move { axum::serve(garbage, answers_garbage).await });
    let p = pipeline(
        &scripted_config(&sts, dir.path(), Some(&garbage_url)),
        deny_list(),
    )
    .await;
    let got = decide(&p, &docs, Some(alice.clone())).await;
    note(
        &mut failures,
        "the token service answers garbage",
        &got,
        Deny(502, "sts_invalid_response"),
        &alice,
    );

    // The issuer's live check that does not answer.
    let introspection = scripted_with(
        &sts,
        dir.path(),
        &format!("endpoint: {}", sts.service.introspection_endpoint()),
        &format!("endpoint: {}/introspect", nowhere()),
    );
    let p = pipeline(&introspection, deny_list()).await;
    let live = Row {
        direction: "inbound",
        envoy: None,
        ..row("", "app", "/live", ForwardWithIdentity)
    };
    let own = format!("Bearer {}", sts.alice().await);
    let got = decide(&p, &live, Some(own.clone())).await;
    let expect = Deny(503, "introspection_unavailable");
    note(&mut failures, "the live check is down", &got, expect, &own);

    // The issuer's keys never loaded (the pipeline built without its first fetch).
    let env = HashMap::new();
    let keyless = scripted_with(
        &sts,
        dir.path(),
        &format!("  - issuer: {}\n", sts.service.issuer()),
        &format!(
            "  - issuer: {}\n    jwks_uri: {}/certs\n",
            sts.service.issuer(),
            nowhere()
        ),
    );
    let cfg = Config::from_yaml(&keyless, &env).unwrap();
    let policy = PolicyEngine::load_configured(cfg.policy.as_ref()).unwrap();
    let state = State::new(&cfg, deny_list());
    let p = Pipeline::new(&cfg, policy, Arc::new(Credentials::default()), &state).unwrap();
    let got = decide(&p, &docs, Some(alice.clone())).await;
    note(
        &mut failures,
        "the issuer's keys are unavailable",
        &got,
        Deny(503, "jwks_unavailable"),
        &alice,
    );

    // What the proxy sends that cannot be read, or was never asked for.
    let p = pipeline(&scripted_config(&sts, dir.path(), None), deny_list()).await;
    let sideways = Row {
        direction: "sideways",
        ..docs_row()
    };
    let got = decide(&p, &sideways, Some(alice.clone())).await;
    note(
        &mut failures,
        "a direction the proxy never sets",
        &got,
        Deny(500, "direction_unknown"),
        &alice,
    );
    let no_path = RequestFacts::new(
        Some("outbound"),
        vec![
            (":authority".into(), b"document-service".to_vec()),
            (":method".into(), b"GET".to_vec()),
        ],
    );
    let got = match no_path {
        Ok(f) => Ok(p.decide(&f).await),
        Err(e) => Err(p.refuse_unreadable(Some("outbound"), e)),
    };
    note(
        &mut failures,
        "a request without :path",
        &got,
        Deny(400, "request_malformed"),
        &alice,
    );
    let inbound_facts = RequestFacts::new(
        Some("inbound"),
        vec![
            (":authority".into(), b"app".to_vec()),
            (":method".into(), b"POST".to_vec()),
            (":path".into(), b"/ok".to_vec()),
        ],
    )
    .unwrap();
    let got = Ok(p.decide_body(&inbound_facts, Some(b"{}")).await);
    note(
        &mut failures,
        "a body phase nobody asked for",
        &got,
        Deny(500, "sidecar_misconfigured"),
        &alice,
    );

    assert!(
        failures.is_empty(),
        "{} steps failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A row to the document service on a path the scripted policy allows.
fn docs_row() -> Row {
    row("", "document-service", "/ok", Expect::ForwardUnchanged)
}

/// Notes a failure when `got` is not what `expect` says (`presented`: the
/// `authorization` sent).
fn note(
    failures: &mut Vec<String>,
    name: &str,
    got: &Result<Decision, actbridge::pipeline::Denial>,
    expect: Expect,
    presented: &str,
) {
    if let Err(why) = verdict(&expect, got, presented) {
        failures.push(format!("{name}: {why}"));
    }
}
