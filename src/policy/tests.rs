use std::time::Duration;

use serde_json::json;

use super::*;
use crate::config::PolicyConfig;

fn cfg(dir: &std::path::Path) -> PolicyConfig {
    PolicyConfig {
        source: crate::config::PolicySource::Directory(dir.to_path_buf()),
        entrypoint: "data.actbridge.decision".into(),
        reload_interval: None,
        decision_cache_entries: 100,
        decision_cache_ttl: Duration::from_secs(60),
        eval_timeout: Duration::from_millis(200),
    }
}

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn input(groups: &[&str]) -> PolicyInput {
    PolicyInput {
        direction: "inbound",
        route: "inbound".into(),
        destination: "docs".into(),
        method: "GET".into(),
        path: "/x".into(),
        action: "read",
        resource: vec!["x".into()],
        backend: "app",
        user: UserInput {
            sub: Some("u".into()),
            username: Some("u".into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        },
        actors: Vec::new(),
        scopes: Vec::new(),
        mcp: None,
        a2a: None,
    }
}

const GROUPS_POLICY: &str = r#"package actbridge
import rego.v1
decision := {"allow": count(input.user.groups) > 0, "reason": "by groups", "grant": input.user.groups}
"#;

#[test]
fn resource_segments_are_decoded_and_ambiguous_paths_refused() {
    assert_eq!(
        resource_of("/documents/DOC-001").unwrap(),
        vec!["documents", "DOC-001"]
    );
    assert_eq!(resource_of("/a/b/").unwrap(), vec!["a", "b"]);
    assert_eq!(resource_of("/a%20b").unwrap(), vec!["a b"]);
    assert_eq!(resource_of("/").unwrap(), Vec::<String>::new());
    for bad in [
        "/a/../b",
        "/a/./b",
        "/a/%2e%2e/b",
        "/a%2Fb",
        "/a%5cb",
        "//a",
        "/a;b",
        "/a%252e",
    ] {
        assert_eq!(resource_of(bad), Err(ResourceError::Ambiguous), "{bad}");
    }
    for bad in ["/a%zz", "/a%2", "/a%ff", "/a%+1"] {
        assert_eq!(resource_of(bad), Err(ResourceError::Undecodable), "{bad}");
    }
}

#[test]
fn methods_map_to_actions() {
    assert_eq!(action_of("GET"), "read");
    assert_eq!(action_of("HEAD"), "read");
    assert_eq!(action_of("DELETE"), "delete");
    assert_eq!(action_of("POST"), "write");
    assert_eq!(action_of("PATCH"), "write");
}

#[test]
fn a_spiffe_actor_is_split_into_trust_domain_and_path() {
    let a = ActorInput::from(&crate::jwt::Actor {
        sub: None,
        client_id: Some("spiffe://demo.example.com/agent/x".into()),
    });
    assert_eq!(a.trust_domain.as_deref(), Some("demo.example.com"));
    assert_eq!(a.spiffe_path.as_deref(), Some("/agent/x"));
    let b = ActorInput::from(&crate::jwt::Actor {
        sub: None,
        client_id: Some("plain-client".into()),
    });
    assert_eq!(b.trust_domain, None);
}

#[test]
fn malformed_decisions_are_errors_and_grants_are_normalised() {
    let ok = PolicyDecision::from_value(json!({
        "allow": true, "reason": "fine", "grant": ["b", "a", "b"]
    }))
    .unwrap();
    assert_eq!(ok.grant, vec!["a", "b"]);
    assert!(!ok.approval_required);
    for bad in [
        json!(null),
        json!(true),
        json!({"allow": "true", "reason": "x"}),
        json!({"allow": true}),
        json!({"allow": true, "reason": ""}),
        json!({"allow": true, "reason": "line\nbreak"}),
        json!({"allow": true, "reason": "x".repeat(201)}),
        json!({"allow": true, "reason": "x", "grant": "engineering"}),
        json!({"allow": true, "reason": "x", "grant": ["a,b"]}),
        json!({"allow": true, "reason": "x", "grant": [""]}),
        json!({"allow": true, "reason": "x", "allowed": true}),
    ] {
        assert!(PolicyDecision::from_value(bad.clone()).is_err(), "{bad}");
    }
}

#[test]
fn a_module_that_does_not_compile_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ok.rego", GROUPS_POLICY);
    write(
        dir.path(),
        "bad.rego",
        "package other\nimport rego.v1\n\nx := {\n",
    );
    let err = PolicyEngine::load(&cfg(dir.path()))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("bad.rego:"), "{err}");
}

#[test]
fn an_empty_directory_a_missing_entrypoint_and_bad_data_refuse_to_load() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        PolicyEngine::load(&cfg(dir.path())),
        Err(PolicyError::Empty(_))
    ));
    write(
        dir.path(),
        "p.rego",
        "package other\nimport rego.v1\nx := 1\n",
    );
    assert!(matches!(
        PolicyEngine::load(&cfg(dir.path())),
        Err(PolicyError::Compile(_))
    ));
    write(dir.path(), "p.rego", GROUPS_POLICY);
    write(dir.path(), "data.yaml", "- a list\n");
    let err = PolicyEngine::load(&cfg(dir.path())).err().unwrap();
    assert!(matches!(err, PolicyError::Data { .. }), "{err}");
}

#[tokio::test]
async fn decisions_are_cached_per_version_and_a_reload_is_seen_at_once() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p.rego", GROUPS_POLICY);
    let engine = PolicyEngine::load(&cfg(dir.path())).unwrap();
    let first = engine.decide(&input(&["eng"])).await.unwrap();
    assert!(first.allow);
    let again = engine.decide(&input(&["eng"])).await.unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "served from the cache"
    );
    assert!(!engine.decide(&input(&[])).await.unwrap().allow);

    assert_eq!(engine.reload().unwrap(), None, "nothing changed");
    write(
        dir.path(),
        "p.rego",
        &GROUPS_POLICY.replace("count(input.user.groups) > 0", "false"),
    );
    let v = engine.reload().unwrap();
    assert!(v.is_some());
    assert!(
        !engine.decide(&input(&["eng"])).await.unwrap().allow,
        "the cached allow of the old version is not served"
    );

    write(
        dir.path(),
        "p.rego",
        "package actbridge\nthis is not rego\n",
    );
    assert!(engine.reload().is_err());
    assert_eq!(engine.version(), v.unwrap(), "the running version is kept");
}

#[tokio::test]
async fn an_evaluation_over_the_time_limit_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.rego",
        r#"package actbridge
import rego.v1
n := count([x | some a in numbers.range(1, 5000); some b in numbers.range(1, 5000); x := a * b])
decision := {"allow": n > 0, "reason": "slow", "grant": ["a"]}
"#,
    );
    let mut c = cfg(dir.path());
    c.eval_timeout = Duration::from_millis(20);
    let engine = PolicyEngine::load(&c).unwrap();
    let started = std::time::Instant::now();
    let out = engine.decide(&input(&["eng"])).await;
    let err = out.err().unwrap().to_string();
    assert!(err.contains("limit") || err.contains("time"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_shipped_policy_tests_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let report = run_tests(&dir).unwrap();
    assert!(report.outcomes.len() >= 10);
    assert_eq!(report.failed(), 0, "{:?}", report.outcomes);
}

#[test]
fn a_failing_rego_test_is_reported_by_name() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p.rego", GROUPS_POLICY);
    write(
        dir.path(),
        "p_test.rego",
        "package actbridge_test\nimport rego.v1\nimport data.actbridge\n\ntest_ok if true\n\ntest_bad if {\n\tactbridge.decision.allow with input as {\"user\": {\"groups\": []}}\n}\n",
    );
    let report = run_tests(dir.path()).unwrap();
    assert_eq!(report.outcomes.len(), 2);
    assert_eq!(report.failed(), 1);
    let bad = report
        .outcomes
        .iter()
        .find(|o| o.failure.is_some())
        .unwrap();
    assert_eq!(bad.name, "data.actbridge_test.test_bad");
}
