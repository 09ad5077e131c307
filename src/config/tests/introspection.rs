//! `issuers[].introspection`, `inbound.introspect_paths` and `routes[].introspect`.

use super::*;

const HEAD: &str = r#"
listen: {ext_proc: "tcp://127.0.0.1:9001"}
issuers:
  - issuer: http://127.0.0.1:8180/realms/demo
    audiences: [agent]
"#;

const INTROSPECT: &str =
    "http://127.0.0.1:8180/realms/demo/protocol/openid-connect/token/introspect";

const OUTBOUND: &str = r#"outbound:
  token_endpoint: http://127.0.0.1:8180/realms/demo/protocol/openid-connect/token
  client:
    client_id: agent
    auth: {method: client_secret_basic, secret_env: CLIENT_SECRET}
  routes:
    - {host: 'docs', cluster: docs, action: exchange, audience: docs, introspect: true}
"#;

fn section(extra: &str) -> String {
    format!("    introspection:\n      endpoint: {INTROSPECT}\n{extra}")
}

fn key_of(yaml: &str) -> String {
    err(yaml).key().unwrap().to_string()
}

#[test]
fn introspection_defaults_to_the_outbound_client_and_no_cache() {
    let yaml = format!(
        "{HEAD}{}inbound:\n  introspect_paths: [{{prefix: /pay/}}]\n{OUTBOUND}",
        section("")
    );
    let c = Config::from_yaml(&yaml, &env()).unwrap();
    let i = c.issuers[0].introspection.as_ref().unwrap();
    assert_eq!(i.endpoint.as_str(), INTROSPECT);
    assert_eq!(i.client.client_id, "agent");
    assert!(
        matches!(&i.client.auth, ClientAuthConfig::SecretBasic(s) if s.expose().as_str() == "s3cret")
    );
    assert_eq!(i.timeout, Duration::from_secs(2));
    assert_eq!(i.cache_ttl, Duration::ZERO);
    assert_eq!(
        c.inbound.introspect_paths,
        vec![PathMatch::Prefix(
            crate::http_path::CanonicalPath::parse("/pay/").unwrap()
        )]
    );
    assert!(matches!(
        c.outbound.unwrap().routes[0].action,
        RouteAction::Exchange {
            rules: TokenRules {
                introspect: true,
                ..
            },
            ..
        }
    ));
}

#[test]
fn an_own_client_takes_secrets_from_the_environment_and_keys_are_named() {
    let client = "      client:\n        client_id: checker\n        auth: {method: client_secret_post, secret_env: CLIENT_SECRET}\n      cache_ttl: 5s\n      cache_entries: 10\n";
    let c = Config::from_yaml(&format!("{HEAD}{}", section(client)), &env()).unwrap();
    let i = c.issuers[0].introspection.as_ref().unwrap();
    assert_eq!(i.client.client_id, "checker");
    assert!(
        matches!(&i.client.auth, ClientAuthConfig::SecretPost(s) if s.expose().as_str() == "s3cret")
    );
    assert_eq!((i.cache_ttl, i.cache_entries), (Duration::from_secs(5), 10));

    let missing = client.replace("CLIENT_SECRET", "NOT_SET");
    assert_eq!(
        key_of(&format!("{HEAD}{}", section(&missing))),
        "issuers[0].introspection.client.auth.secret_env"
    );
    let svid = "      client:\n        client_id: c\n        auth: {method: jwt_svid}\n";
    assert_eq!(
        key_of(&format!("{HEAD}{}", section(svid))),
        "issuers[0].introspection.client.auth.method"
    );
}

#[test]
fn bad_introspection_values_name_their_key() {
    let client = "      client: {client_id: c, auth: {method: client_secret_post, secret: x}}\n";
    let cases = [
        (
            "    introspection: {endpoint: 'ftp://x'}\n".to_string(),
            "issuers[0].introspection.endpoint",
        ),
        (section(""), "issuers[0].introspection.client"),
        (
            section(&format!("{client}      cache_ttl: 61s\n")),
            "issuers[0].introspection.cache_ttl",
        ),
        (
            section(&format!("{client}      timeout: 0s\n")),
            "issuers[0].introspection.timeout",
        ),
        (
            section(&format!("{client}      cache_entries: 5\n")),
            "issuers[0].introspection.cache_entries",
        ),
        (
            section(&format!(
                "{client}      cache_ttl: 1s\n      cache_entries: 0\n"
            )),
            "issuers[0].introspection.cache_entries",
        ),
        (
            section(&format!("{client}      surprise: 1\n")),
            "issuers[0].introspection",
        ),
    ];
    for (issuer_extra, key) in cases {
        let got = key_of(&format!("{HEAD}{issuer_extra}"));
        assert!(got.starts_with(key), "{issuer_extra}: {got}");
    }
}

#[test]
fn asking_for_introspection_needs_it_on_every_issuer_the_token_may_come_from() {
    let second = "  - issuer: http://127.0.0.1:8180/realms/other\n    audiences: [agent]\n";
    let paths = "inbound:\n  introspect_paths: [{exact: /pay}]\n";
    let e = err(&format!(
        "{HEAD}{}{second}{paths}",
        section("      client: {client_id: c, auth: {method: client_secret_post, secret: x}}\n")
    ));
    assert_eq!(e.key(), Some("inbound.introspect_paths"));
    assert!(e.to_string().contains("issuers[1]"), "{e}");
    // An issuer that is not accepted inbound (no audiences) needs none for the paths.
    let admin_only = "  - issuer: http://127.0.0.1:8180/realms/admins\n";
    let client = "      client: {client_id: c, auth: {method: client_secret_post, secret: x}}\n";
    Config::from_yaml(
        &format!("{HEAD}{}{admin_only}{paths}", section(client)),
        &env(),
    )
    .unwrap();
    // ... but it may sign the agent's token, so a route needs one there too.
    let e = err(&format!("{HEAD}{}{admin_only}{OUTBOUND}", section("")));
    assert_eq!(e.key(), Some("outbound.routes[0].introspect"));
    assert!(e.to_string().contains("issuers[1]"), "{e}");
    // No section at all.
    assert_eq!(
        key_of(&format!("{HEAD}{paths}")),
        "inbound.introspect_paths"
    );
    assert_eq!(
        key_of(&format!("{HEAD}{OUTBOUND}")),
        "outbound.routes[0].introspect"
    );
    // `introspect` is a token rule: not on a passthrough route.
    let passthrough = OUTBOUND.replace(
        "{host: 'docs', cluster: docs, action: exchange, audience: docs, introspect: true}",
        "{host: 'docs', action: passthrough, introspect: true}",
    );
    assert_eq!(
        key_of(&format!("{HEAD}{}{passthrough}", section(""))),
        "outbound.routes[0].introspect"
    );
}
