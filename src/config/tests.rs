use std::collections::HashMap;
use std::time::Duration;

use super::*;

mod actors;
mod agent_protocols;
mod all_at_once;
mod credentials;
mod defaults;
mod introspection;
mod rate_limits;
mod state;
mod token_types;

const MINIMAL: &str = r#"
listen: {ext_proc: "tcp://127.0.0.1:9001"}
issuers:
  - issuer: http://127.0.0.1:8180/realms/demo
    audiences: [agent]
"#;

fn env() -> HashMap<String, String> {
    HashMap::from([("CLIENT_SECRET".to_string(), "s3cret".to_string())])
}

fn err(yaml: &str) -> ConfigError {
    Config::from_yaml(yaml, &env()).expect_err("must be refused")
}

#[test]
fn a_minimal_config_gets_safe_defaults() {
    let c = Config::from_yaml(MINIMAL, &env()).unwrap();
    assert_eq!(
        c.ext_proc_listen,
        ListenAddr::Tcp("127.0.0.1:9001".parse().unwrap())
    );
    assert_eq!(c.max_token_bytes, 8192);
    assert_eq!(c.max_actor_chain, 10);
    let i = &c.issuers[0];
    assert_eq!(i.leeway, Duration::from_secs(30));
    assert_eq!(
        i.jwks,
        JwksSource::Discovery(
            "http://127.0.0.1:8180/realms/demo/.well-known/openid-configuration"
                .parse()
                .unwrap()
        )
    );
    assert_eq!(
        i.algorithms,
        vec![
            jsonwebtoken::Algorithm::RS256,
            jsonwebtoken::Algorithm::PS256,
            jsonwebtoken::Algorithm::ES256,
            jsonwebtoken::Algorithm::EdDSA
        ]
    );
    assert_eq!(
        c.inbound.identity_headers.subject.as_str(),
        "x-actbridge-subject"
    );
    assert!(
        c.outbound.is_none(),
        "no outbound section: every outbound request is refused"
    );
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key() {
    let e = err(&format!("{MINIMAL}inbound: {{bypas_paths: []}}\n"));
    assert_eq!(e.key(), Some("inbound.bypas_paths"), "{e}");
    assert!(e.to_string().contains("bypas_paths"), "{e}");
    let e = err("listen: {ext_proc: 5}\nissuers: []\n");
    assert!(
        e.to_string().contains("listen.ext_proc") || e.to_string().contains("issuers"),
        "{e}"
    );
    let e = err(&MINIMAL.replace(
        "audiences: [agent]",
        "audiences: [agent]\n    leeway: forever",
    ));
    assert_eq!(e.key(), Some("issuers[0].leeway"), "{e}");
}

#[test]
fn shared_secret_algorithms_are_refused() {
    let e = err(&MINIMAL.replace(
        "audiences: [agent]",
        "audiences: [agent]\n    algorithms: [RS256, HS256]",
    ));
    assert_eq!(e.key(), Some("issuers[0].algorithms"));
    let e = err(&MINIMAL.replace(
        "audiences: [agent]",
        "audiences: [agent]\n    algorithms: [none]",
    ));
    assert_eq!(e.key(), Some("issuers[0].algorithms"));
}

fn outbound(body: &str) -> String {
    format!(
        "{MINIMAL}outbound:\n  token_endpoint: http://127.0.0.1:8180/t\n  client:\n    client_id: agent\n    auth: {{method: client_secret_post, secret_env: CLIENT_SECRET}}\n{body}"
    )
}

#[test]
fn outbound_routes_are_validated_and_default_to_deny() {
    let c = Config::from_yaml(
        &outbound(
            "  routes:\n    - {host: 'Docs', cluster: docs, action: exchange, audience: docs, scopes: [read]}\n",
        ),
        &env(),
    )
    .unwrap();
    let o = c.outbound.unwrap();
    assert_eq!(o.default_action, RouteAction::Deny);
    assert_eq!(o.subject_audiences, vec!["agent".to_string()]);
    assert!(
        o.routes[0].host.matches("docs"),
        "hosts are matched lower case"
    );
    assert_eq!(o.routes[0].cluster.as_deref(), Some("docs"));
    match &o.client.auth {
        ClientAuthConfig::SecretPost(s) => assert_eq!(s.expose().as_str(), "s3cret"),
        other => panic!("{other:?}"),
    }
    let e = err(&outbound(
        "  routes:\n    - {host: 'a', action: exchange}\n",
    ));
    assert_eq!(e.key(), Some("outbound.routes[0].audience"));
    let e = err(&outbound(
        "  routes:\n    - {host: 'a', action: passthrough, audience: x}\n",
    ));
    assert_eq!(e.key(), Some("outbound.routes[0].audience"));
    let e = err(&outbound("  routes:\n    - {host: 'a', action: allow}\n"));
    assert_eq!(e.key(), Some("outbound.routes[0].action"));
    // A misspelt action is reported as itself, naming the actions, not as a problem
    // with the keys the intended action reads.
    let e = err(&outbound(
        "  routes:\n    - {host: 'a', action: exchnage, audience: x, cluster: c}\n",
    ));
    assert_eq!(e.key(), Some("outbound.routes[0].action"), "{e}");
    let text = e.to_string();
    assert!(
        [
            "exchnage",
            "exchange",
            "credential",
            "vend",
            "passthrough",
            "deny"
        ]
        .iter()
        .all(|w| text.contains(w)),
        "{text}"
    );
    let e = err(&outbound("  default_action: exchange\n"));
    assert_eq!(e.key(), Some("outbound.default_action"));
}

#[test]
fn client_secrets_come_from_exactly_one_place_and_never_print() {
    let e = err(&outbound("").replace("secret_env: CLIENT_SECRET", "secret_env: MISSING"));
    assert_eq!(e.key(), Some("outbound.client.auth.secret_env"));
    let e = err(&outbound("").replace(
        "secret_env: CLIENT_SECRET",
        "secret_env: CLIENT_SECRET, secret: x",
    ));
    assert_eq!(e.key(), Some("outbound.client.auth"));
    let e = err(&outbound("").replace("client_secret_post", "client_secret_jwt"));
    assert_eq!(e.key(), Some("outbound.client.auth.method"));
    let c = Config::from_yaml(&outbound(""), &env()).unwrap();
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "secrets must be redacted in Debug"
    );
}

#[test]
fn listen_addresses_must_be_tcp_or_absolute_unix_paths() {
    let c = Config::from_yaml(
        &MINIMAL.replace("tcp://127.0.0.1:9001", "unix:///run/a.sock"),
        &env(),
    )
    .unwrap();
    assert_eq!(c.ext_proc_listen, ListenAddr::Unix("/run/a.sock".into()));
    assert_eq!(
        err(&MINIMAL.replace("tcp://127.0.0.1:9001", "unix://rel.sock")).key(),
        Some("listen.ext_proc")
    );
    assert_eq!(
        err(&MINIMAL.replace("tcp://127.0.0.1:9001", "127.0.0.1:9001")).key(),
        Some("listen.ext_proc")
    );
}

#[test]
fn the_policy_section_has_safe_defaults_and_named_errors() {
    let c = Config::from_yaml(&format!("{MINIMAL}policy: {{dir: policies}}\n"), &env()).unwrap();
    let p = c.policy.unwrap();
    assert_eq!(p.entrypoint, "data.actbridge.decision");
    assert_eq!(p.reload_interval, Some(Duration::from_secs(2)));
    assert_eq!(p.decision_cache_entries, 10_000);
    assert_eq!(p.eval_timeout, Duration::from_millis(100));
    let off = Config::from_yaml(
        &format!("{MINIMAL}policy: {{dir: p, reload_interval: 0s}}\n"),
        &env(),
    )
    .unwrap();
    assert_eq!(off.policy.unwrap().reload_interval, None);
    let opa = Config::from_yaml(
        &format!("{MINIMAL}policy: {{opa_url: 'http://127.0.0.1:8181'}}\n"),
        &env(),
    )
    .unwrap();
    assert!(matches!(
        opa.policy.unwrap().source,
        PolicySource::Opa(u) if u.as_str() == "http://127.0.0.1:8181/"
    ));
    for (yaml, key) in [
        (
            "policy: {dir: p, entrypoint: 'actbridge.decision'}",
            "policy.entrypoint",
        ),
        (
            "policy: {dir: p, entrypoint: 'data.a..b'}",
            "policy.entrypoint",
        ),
        ("policy: {dir: p, eval_timeout: 0s}", "policy.eval_timeout"),
        ("policy: {dir: ''}", "policy.dir"),
        (
            "policy: {dir: p, opa_url: 'http://127.0.0.1:8181'}",
            "policy",
        ),
        ("policy: {entrypoint: data.a.b}", "policy"),
        ("policy: {opa_url: 'ftp://opa'}", "policy.opa_url"),
        ("policy: {dir: p, colour: red}", "policy.colour"),
        ("inbound: {delegation: true}", "inbound.delegation"),
        ("inbound: {token_custody: true}", "inbound.token_custody"),
        ("inbound: {custody_entries: 5}", "inbound.custody_entries"),
    ] {
        let e = err(&format!("{MINIMAL}{yaml}\n"));
        assert_eq!(e.key(), Some(key), "{yaml}: {e}");
    }
}

#[test]
fn allow_direct_use_belongs_to_exchange_routes_and_defaults_off() {
    let c = Config::from_yaml(
        &outbound("  routes:\n    - {host: 'a', cluster: a, action: exchange, audience: a}\n"),
        &env(),
    )
    .unwrap();
    assert!(matches!(
        c.outbound.unwrap().routes[0].action,
        RouteAction::Exchange {
            rules: TokenRules {
                allow_direct_use: false,
                ..
            },
            ..
        }
    ));
    let e = err(&outbound(
        "  routes:\n    - {host: 'a', action: passthrough, allow_direct_use: true}\n",
    ));
    assert_eq!(e.key(), Some("outbound.routes[0].allow_direct_use"));
}

#[test]
fn the_admin_api_listens_on_loopback_only() {
    let base = "listen: {ext_proc: 'tcp://127.0.0.1:9001'}\nissuers: [{issuer: 'http://x/r', audiences: [a]}]\n";
    let with =
        |listen: &str| format!("{base}admin_api: {{{listen}audiences: [admin], roles: [admin]}}\n");
    let cfg = Config::from_yaml(&with(""), &env()).unwrap();
    assert_eq!(
        cfg.admin_api.unwrap().listen,
        "127.0.0.1:9903".parse().unwrap(),
        "the default"
    );
    let cfg = Config::from_yaml(&with("listen: '[::1]:7000', "), &env()).unwrap();
    assert_eq!(cfg.admin_api.unwrap().listen, "[::1]:7000".parse().unwrap());
    for bad in ["0.0.0.0:9903", "10.0.0.5:9903", "localhost:9903", "9903"] {
        let e = err(&with(&format!("listen: '{bad}', ")));
        assert_eq!(e.key(), Some("admin_api.listen"), "{bad}: {e}");
    }
}
