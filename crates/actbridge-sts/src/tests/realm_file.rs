//! The realm file: the demo file parses; every rule names its field.

use std::io::Write;

use super::support::*;
use crate::{Realm, StsError};

const MINIMAL: &str = "realm: r\n";

fn err(yaml: &str) -> String {
    Realm::from_yaml_str(yaml).unwrap_err().to_string()
}

#[test]
fn the_demo_realm_holds_the_demo_world() {
    let realm = Realm::from_yaml_str(DEMO_REALM).unwrap();
    assert_eq!(realm.name, "actbridge");
    assert_eq!(realm.access_token_lifespan.as_secs(), 300);
    for (user, groups) in [
        ("alice", vec!["engineering", "finance"]),
        ("bob", vec!["finance", "admin"]),
        ("carol", vec!["hr"]),
        ("david", vec!["engineering"]),
    ] {
        assert_eq!(realm.user(user).unwrap().groups, groups, "{user}");
    }
    for agent in [
        "summarizer-hr",
        "summarizer-tech",
        "reviewer-ops",
        "reviewer-general",
    ] {
        let id = format!("spiffe://demo.example.com/agent/{agent}");
        let c = realm.client(&id).unwrap();
        assert!(
            !c.is_public()
                && c.service_account.is_some()
                && !c.direct_access_grants
                && c.standard_token_exchange
        );
        assert_eq!(c.audiences, vec![id.clone()]);
        assert!(c.exchange_audiences.contains(&DOCS.to_string()), "{agent}");
        // (summarizer-tech also holds the demo's one audience scope: below.)
        let scopes: Vec<&str> = c
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|s| *s != "agent-service-audience")
            .collect();
        assert_eq!(
            scopes,
            [
                "openid",
                "profile",
                "email",
                "documents.read",
                "documents.write",
                "mcp",
                "mcp:read_document",
                "mcp:search",
                "mcp:delete_document",
                "mcp:send_message"
            ]
        );
    }
    assert!(realm.client(DOCS).is_some());
    assert!(
        realm
            .client(TECH)
            .unwrap()
            .scopes
            .contains(&"agent-service-audience".to_string())
    );
    assert_eq!(
        realm.audience_of_scope("agent-service-audience"),
        Some("spiffe://demo.example.com/service/agent-service")
    );
    // Users log in through the front end, whose tokens name every agent.
    let portal = realm.client(PORTAL).unwrap();
    assert!(portal.direct_access_grants && !portal.standard_token_exchange);
    assert_eq!(portal.audiences.len(), 4);
    // Debug never prints secrets or passwords.
    let debug = format!("{realm:?}");
    assert!(
        !debug.contains("secret") && !debug.contains("alice123"),
        "{debug}"
    );
}

#[test]
fn the_realm_file_loads_from_disk_and_a_missing_file_is_named() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(DEMO_REALM.as_bytes()).unwrap();
    assert!(Realm::from_yaml_file(file.path()).is_ok());
    let missing =
        Realm::from_yaml_file(std::path::Path::new("/nonexistent/realm.yaml")).unwrap_err();
    assert!(matches!(missing, StsError::ReadRealm { .. }));
    assert!(missing.to_string().contains("/nonexistent/realm.yaml"));
}

#[test]
fn schema_errors_name_the_key() {
    assert!(err("realm: r\nbogus: 1\n").contains("bogus"));
    assert!(
        err("realm: r\nusers:\n  - {username: a, id: nope, password: p}\n").contains("users[0].id")
    );
    assert!(err("realm: r\naccess_token_lifespan: soon\n").contains("access_token_lifespan"));
    assert!(
        err("realm: r\nclients:\n  - {client_id: c, secret: s, colour: red}\n").contains("colour")
    );
    assert_eq!(
        Realm::from_yaml_str("realm: r\naccess_token_lifespan: 5m\n")
            .unwrap()
            .access_token_lifespan
            .as_secs(),
        300
    );
    assert!(Realm::from_yaml_str(MINIMAL).is_ok());
}

#[test]
fn rules_name_the_field() {
    let user = |extra: &str| {
        format!(
            "realm: r\nusers:\n  - {{username: a, id: 835414c6-012e-4647-8369-a9f46e3b9cad, password: p{extra}}}\n"
        )
    };
    let client = |body: &str| format!("realm: r\nclients:\n  - {{client_id: c, {body}}}\n");
    let scope = |list: &str| {
        format!("realm: r\nclients:\n  - {{client_id: c, public: true}}\naudience_scopes: {list}\n")
    };
    let cases: Vec<(String, &str)> = vec![
        ("realm: a/b\n".into(), "realm:"),
        (
            scope("[{name: a, audience: nobody}]"),
            "audience_scopes[0].audience",
        ),
        (
            scope("[{name: profile, audience: c}]"),
            "audience_scopes[0].name",
        ),
        (
            scope("[{name: 'a b', audience: c}]"),
            "audience_scopes[0].name",
        ),
        (
            scope("[{name: a, audience: c}, {name: a, audience: c}]"),
            "audience_scopes[1].name",
        ),
        (
            "realm: r\naccess_token_lifespan: 0s\n".into(),
            "access_token_lifespan",
        ),
        (user(", groups: ['']"), "users[0].groups[0]"),
        (
            format!(
                "{}  - {{username: A, id: ef07780e-6394-4bea-82fd-862cd5c7bec5, password: p}}\n",
                user("")
            ),
            "users[1].username",
        ),
        (
            format!(
                "{}  - {{username: b, id: 835414c6-012e-4647-8369-a9f46e3b9cad, password: p}}\n",
                user("")
            ),
            "users[1].id",
        ),
        (
            user("").replace("password: p", "password: ''"),
            "users[0].password",
        ),
        (client("public: true, secret: s"), "clients[0].secret"),
        (
            client("public: true, service_account: true"),
            "clients[0].service_account",
        ),
        (
            client("public: true, standard_token_exchange: true"),
            "clients[0].standard_token_exchange",
        ),
        (client("scopes: [a]"), "clients[0].secret"),
        (
            client("secret: s, public_key_pem: x"),
            "clients[0].public_key_pem",
        ),
        (
            client("public_key_pem: not-a-key"),
            "clients[0].public_key_pem",
        ),
        (
            client("secret: s, exchange_audiences: [elsewhere]"),
            "clients[0].exchange_audiences[0]",
        ),
        (client("secret: s, scopes: ['a b']"), "clients[0].scopes[0]"),
        (
            client("secret: s, service_account_id: 835414c6-012e-4647-8369-a9f46e3b9cad"),
            "clients[0].service_account_id",
        ),
    ];
    for (yaml, field) in cases {
        let e = err(&yaml);
        assert!(e.contains(field), "{yaml:?} → {e}");
    }
    let dup = "realm: r\nclients:\n  - {client_id: c, secret: s}\n  - {client_id: c, secret: t}\n";
    assert!(err(dup).contains("clients[1].client_id"));
    let collide = format!(
        "{}clients:\n  - {{client_id: c, secret: s, service_account: true, service_account_id: 835414c6-012e-4647-8369-a9f46e3b9cad}}\n",
        user("")
    );
    assert!(err(&collide).contains("clients[0].service_account_id"));
    let private = client_keys().rsa.public_pem.replace("PUBLIC", "PRIVATE");
    let yaml = format!(
        "realm: r\nclients:\n  - client_id: c\n    public_key_pem: |\n{}",
        private
            .lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    );
    assert!(err(&yaml).contains("private key"));
}

#[test]
fn groups_accept_a_leading_slash() {
    let yaml = "realm: r\nusers:\n  - {username: a, id: 835414c6-012e-4647-8369-a9f46e3b9cad, password: p, groups: [/hr, hr, finance]}\n";
    assert_eq!(
        Realm::from_yaml_str(yaml)
            .unwrap()
            .user("a")
            .unwrap()
            .groups,
        ["hr", "finance"]
    );
}
