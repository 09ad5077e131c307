//! The policy through the real Envoy: DEMO.md's matrix, two hops, unknown and foreign
//! agents, unknown users, deep chains, policy failures, reloads, inbound delegation and
//! "no token service call happened" for every refusal.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::config_edit::ConfigEdit;
use crate::support::world::{
    AGENT, DOCUMENT_SERVICE, Sts, World, agent_id, claims_of, policies_dir, sidecar_config,
    sidecar_head,
};

/// The document service's sidecar: inbound only, judged by `policy_dir`.
fn document_service_config(sts: &Sts, policy_dir: &Path, extra_policy: &str) -> String {
    sidecar_head(sts, DOCUMENT_SERVICE)
        + &format!(
            "policy:\n  dir: \"{dir}\"\n{extra_policy}\n",
            dir = policy_dir.display()
        )
}

/// summarizer-tech's sidecar with the demo policy (and inbound delegation).
fn agent_config_with_policy(sts: &Sts) -> String {
    ConfigEdit::of(&sidecar_config(sts))
        .set("inbound.delegation", "true")
        .set(
            "policy",
            &format!("{{dir: '{}'}}", policies_dir().display()),
        )
        .yaml()
}

async fn get(world: &World, path: &str, token: &str) -> (u16, Value) {
    let resp = world.inbound(path).bearer_auth(token).send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

const DOCUMENTS: [(&str, &[&str]); 7] = [
    ("DOC-001", &["engineering"]),
    ("DOC-002", &["finance"]),
    ("DOC-003", &["admin"]),
    ("DOC-004", &["hr"]),
    ("DOC-005", &["finance", "engineering"]),
    ("DOC-006", &["admin", "finance"]),
    ("DOC-007", &[]),
];

/// DEMO.md's table: (user, agent) → grant; empty = refused.
const MATRIX: [(&str, &str, &[&str]); 16] = [
    ("alice", "summarizer-hr", &[]),
    ("alice", "summarizer-tech", &["engineering", "finance"]),
    ("alice", "reviewer-ops", &["engineering"]),
    ("alice", "reviewer-general", &["engineering", "finance"]),
    ("bob", "summarizer-hr", &[]),
    ("bob", "summarizer-tech", &["finance"]),
    ("bob", "reviewer-ops", &["admin"]),
    ("bob", "reviewer-general", &["admin", "finance"]),
    ("carol", "summarizer-hr", &["hr"]),
    ("carol", "summarizer-tech", &[]),
    ("carol", "reviewer-ops", &[]),
    ("carol", "reviewer-general", &["hr"]),
    ("david", "summarizer-hr", &[]),
    ("david", "summarizer-tech", &["engineering"]),
    ("david", "reviewer-ops", &["engineering"]),
    ("david", "reviewer-general", &["engineering"]),
];

#[tokio::test]
async fn the_demo_matrix_of_sixteen_delegations_against_every_document() {
    let sts = Sts::start().await;
    let config = document_service_config(&sts, &policies_dir(), "");
    let world = World::start_with(sts, &config).await;
    let mut allowed = 0;
    for (user, agent, grant) in MATRIX {
        // The agent's real delegation: user → agent, exchanged for the document service.
        let token = world.sts.delegated(user, agent, DOCUMENT_SERVICE).await;
        assert_eq!(claims_of(&token)["act"]["client_id"], agent_id(agent));
        for (doc, departments) in DOCUMENTS {
            let (status, body) = get(&world, &format!("/documents/{doc}"), &token).await;
            let want = !grant.is_empty() && departments.iter().all(|d| grant.contains(d));
            assert_eq!(
                status,
                if want { 200 } else { 403 },
                "{user} via {agent} reading {doc}: {body}"
            );
            if want {
                allowed += 1;
                let seen = world.app.seen();
                let last = seen.last().unwrap();
                assert_eq!(
                    last.header_all("x-actbridge-grant"),
                    vec![grant.join(",")],
                    "{user} via {agent}"
                );
            } else if grant.is_empty() {
                assert_eq!(
                    body["error_description"],
                    "the user and the agents acting for them share no permission"
                );
            } else {
                assert_eq!(
                    body["error_description"],
                    format!("{doc} needs every one of its departments in the grant")
                );
            }
        }
    }
    assert_eq!(
        world.app.count(),
        allowed,
        "refused requests never reach the app"
    );
    assert!(allowed > 20, "the matrix allows a good part: {allowed}");
}

#[tokio::test]
async fn two_hops_multiply_the_restriction() {
    let sts = Sts::start().await;
    let config = document_service_config(&sts, &policies_dir(), "");
    let world = World::start_with(sts, &config).await;
    // alice → reviewer-general → reviewer-ops → document service.
    let first = world
        .sts
        .delegated("alice", "reviewer-general", &agent_id("reviewer-ops"))
        .await;
    let token = world
        .sts
        .exchange_as("reviewer-ops", &first, DOCUMENT_SERVICE, true)
        .await
        .unwrap();
    let act = &claims_of(&token)["act"];
    assert_eq!(act["client_id"], agent_id("reviewer-ops"));
    assert_eq!(act["act"]["client_id"], agent_id("reviewer-general"));
    let (status, _) = get(&world, "/documents/DOC-001", &token).await;
    assert_eq!(status, 200);
    assert_eq!(
        world.app.seen()[0].header_all("x-actbridge-grant"),
        vec!["engineering"]
    );
    let (status, body) = get(&world, "/documents/DOC-002", &token).await;
    assert_eq!(status, 403, "finance is lost at reviewer-ops: {body}");
}

/// A token for the document service signed by the trusted issuer with chosen claims.
fn signed(sts: &Sts, user: &str, groups: &[&str], act: Option<Value>) -> String {
    let now = actbridge::clock::now_secs();
    let mut claims = json!({
        "iss": sts.service.issuer(), "sub": format!("{user}-id"), "preferred_username": user,
        "aud": DOCUMENT_SERVICE, "groups": groups, "iat": now, "exp": now + 300,
    });
    if let Some(act) = act {
        claims["act"] = act;
    }
    sts.sign(claims)
}

#[tokio::test]
async fn unknown_agents_foreign_trust_domains_unknown_users_and_azp_get_nothing() {
    let sts = Sts::start().await;
    let config = document_service_config(&sts, &policies_dir(), "");
    let world = World::start_with(sts, &config).await;
    let alice = ["engineering", "finance"];
    let cases = [
        (
            "unknown agent",
            signed(
                &world.sts,
                "alice",
                &alice,
                Some(json!({
                "client_id": "spiffe://demo.example.com/agent/summarizer-everything"})),
            ),
            "an agent in the delegation chain is not registered",
        ),
        (
            "foreign trust domain",
            signed(
                &world.sts,
                "alice",
                &alice,
                Some(json!({
                "client_id": "spiffe://evil.example.com/agent/reviewer-general"})),
            ),
            "an agent in the delegation chain is not registered",
        ),
        (
            "unknown agent deeper in the chain",
            signed(
                &world.sts,
                "alice",
                &alice,
                Some(json!({
                "client_id": agent_id("reviewer-general"),
                "act": {"client_id": "spiffe://demo.example.com/agent/nobody"}})),
            ),
            "an agent in the delegation chain is not registered",
        ),
        (
            "actor named only by sub",
            signed(
                &world.sts,
                "alice",
                &alice,
                Some(json!({"sub": "reviewer-general"})),
            ),
            "an agent in the delegation chain is not registered",
        ),
        (
            "unknown user without departments",
            signed(
                &world.sts,
                "mallory",
                &["everyone"],
                Some(json!({
                "client_id": agent_id("reviewer-general")})),
            ),
            "the user has no permissions",
        ),
    ];
    for (what, token, reason) in cases {
        let (status, body) = get(&world, "/documents/DOC-007", &token).await;
        assert_eq!(status, 403, "{what}: {body}");
        assert_eq!(body["error_description"], reason, "{what}");
    }
    assert_eq!(world.app.count(), 0);

    // `azp` naming an agent is not a delegation: the policy sees no actor at all.
    let mut claims = claims_of(&signed(&world.sts, "bob", &["finance", "admin"], None));
    claims["azp"] = json!(agent_id("summarizer-hr"));
    let token = world.sts.sign(claims);
    let (status, _) = get(&world, "/documents/DOC-002", &token).await;
    assert_eq!(status, 200);
    let seen = world.app.seen();
    assert_eq!(seen[0].header_all("x-actbridge-actors"), vec!["[]"]);
    assert_eq!(
        seen[0].header_all("x-actbridge-grant"),
        vec!["admin,finance"]
    );
}

#[tokio::test]
async fn a_chain_deeper_than_the_limit_is_refused() {
    let sts = Sts::start().await;
    let config = document_service_config(&sts, &policies_dir(), "");
    let world = World::start_with(sts, &config).await;
    let nest = |depth: usize| {
        let mut act = json!({"client_id": agent_id("reviewer-general")});
        for _ in 1..depth {
            act = json!({"client_id": agent_id("reviewer-general"), "act": act});
        }
        act
    };
    let ten = signed(&world.sts, "alice", &["engineering"], Some(nest(10)));
    let (status, body) = get(&world, "/documents/DOC-001", &ten).await;
    assert_eq!(status, 200, "ten hops is the default limit: {body}");
    let eleven = signed(&world.sts, "alice", &["engineering"], Some(nest(11)));
    let (status, body) = get(&world, "/documents/DOC-001", &eleven).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error_description"],
        "the token's delegation chain is too deep"
    );
    assert_eq!(world.app.count(), 1);
}

/// A policy directory in a temp dir: the demo's files, then `edit` applied.
fn policy_copy(edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["actbridge", "data"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(policies_dir().join(sub)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name())).unwrap();
        }
    }
    edit(dir.path());
    dir
}

#[tokio::test]
async fn a_policy_that_fails_or_answers_nonsense_refuses_with_403() {
    let cases = [
        (
            "runtime error",
            "package actbridge\nimport rego.v1\ndecision := {\"allow\": true, \"reason\": \"x\", \"grant\": [1 / 0]}\n",
        ),
        (
            "allow is not a boolean",
            "package actbridge\nimport rego.v1\ndecision := {\"allow\": \"yes\", \"reason\": \"x\", \"grant\": [\"engineering\"]}\n",
        ),
        (
            "undefined decision",
            "package actbridge\nimport rego.v1\ndecision := {\"allow\": true, \"reason\": \"x\", \"grant\": [\"a\"]} if input.nothing\n",
        ),
        (
            "unknown field",
            "package actbridge\nimport rego.v1\ndecision := {\"allowed\": true, \"allow\": true, \"reason\": \"x\", \"grant\": [\"a\"]}\n",
        ),
    ];
    for (what, rego) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("broken.rego"), rego).unwrap();
        let sts = Sts::start().await;
        let config = document_service_config(&sts, dir.path(), "");
        let world = World::start_with(sts, &config).await;
        let token = world
            .sts
            .delegated("alice", "summarizer-tech", DOCUMENT_SERVICE)
            .await;
        let (status, body) = get(&world, "/documents/DOC-001", &token).await;
        assert_eq!(status, 403, "{what}: {body}");
        assert_eq!(
            body["error_description"],
            "the request could not be authorized"
        );
        assert_eq!(world.app.count(), 0, "{what}");
        assert!(
            world.actbridge.log().contains("policy failed; refusing"),
            "{what}: the operator is told"
        );
    }
}

#[tokio::test]
async fn a_changed_policy_is_reloaded_and_a_broken_one_keeps_the_running_version() {
    let dir = policy_copy(|_| {});
    let sts = Sts::start().await;
    let config = document_service_config(&sts, dir.path(), "  reload_interval: 100ms");
    let world = World::start_with(sts, &config).await;
    let token = world
        .sts
        .delegated("david", "summarizer-tech", DOCUMENT_SERVICE)
        .await;
    assert_eq!(get(&world, "/documents/DOC-001", &token).await.0, 200);

    // summarizer-tech loses engineering.
    let world_file = dir.path().join("data/world.yaml");
    let data = std::fs::read_to_string(&world_file).unwrap();
    std::fs::write(
        &world_file,
        data.replace(
            "capabilities: [finance, engineering]",
            "capabilities: [finance]",
        ),
    )
    .unwrap();
    let mut refused = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if get(&world, "/documents/DOC-001", &token).await.0 == 403 {
            refused = true;
            break;
        }
    }
    assert!(
        refused,
        "the new data was not loaded: {}",
        world.actbridge.log()
    );
    assert!(world.actbridge.log().contains("policy reloaded"));

    // A broken module: reported, and the running version (engineering removed) kept.
    std::fs::write(
        dir.path().join("actbridge/broken.rego"),
        "package actbridge\nthis is not rego\n",
    )
    .unwrap();
    let mut reported = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if world.actbridge.log().contains("policy reload failed") {
            reported = true;
            break;
        }
    }
    assert!(reported, "{}", world.actbridge.log());
    assert!(
        world.actbridge.log().contains("broken.rego"),
        "the file is named"
    );
    assert_eq!(get(&world, "/documents/DOC-001", &token).await.0, 403);
    let finance = get(&world, "/documents/DOC-002", &token).await;
    assert_eq!(finance.0, 403, "david has no finance: {}", finance.1);
    // The metrics say so: one reload, one failure (counted once, however often the
    // broken version is tried), failing now, generation 1.
    let metrics = world.actbridge.metrics().await;
    for line in [
        "actbridge_policy_generation 1",
        "actbridge_policy_reloads_total{outcome=\"ok\"} 1",
        "actbridge_policy_reloads_total{outcome=\"error\"} 1",
        "actbridge_policy_reload_failing 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no `{line}`: {metrics}");
    }
    // Mended: no longer failing.
    std::fs::remove_file(dir.path().join("actbridge/broken.rego")).unwrap();
    let mut mended = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let text = world.actbridge.metrics().await;
        if text
            .lines()
            .any(|l| l == "actbridge_policy_reload_failing 0")
        {
            mended = true;
            break;
        }
    }
    assert!(mended, "the reload failure was not cleared");
}

#[tokio::test]
async fn the_agent_sidecar_delegates_on_the_way_in_and_refuses_at_its_door() {
    let sts = Sts::start().await;
    let config = agent_config_with_policy(&sts);
    let world = World::start_with(sts, &config).await;
    let own = world.sts.alice().await;
    let (status, body) = get(&world, "/summaries", &own).await;
    assert_eq!(status, 200, "{body} {}", world.actbridge.log());
    let seen = world.app.seen();
    let held = seen[0].bearer().to_string();
    assert_ne!(
        held, own,
        "the app gets the delegated token, not alice's own"
    );
    let c = claims_of(&held);
    assert_eq!(c["preferred_username"], "alice");
    assert_eq!(c["aud"], AGENT);
    assert_eq!(c["act"]["client_id"], AGENT);
    assert_eq!(
        seen[0].header_all("x-actbridge-grant"),
        vec!["engineering,finance"]
    );

    // What the app holds works outbound: a delegation, judged and exchanged.
    let before = world.sts.service.stats().token_exchange;
    let resp = world
        .agent_call("document-service", "/documents/DOC-005", &held)
        .await;
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    assert_eq!(world.sts.service.stats().token_exchange, before + 1);

    // Refused outbound by the policy: no token-service call, nothing reaches the peer.
    let resp = world
        .agent_call("document-service", "/documents/DOC-004", &held)
        .await;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error_description"],
        "DOC-004 needs every one of its departments in the grant"
    );
    assert_eq!(world.sts.service.stats().token_exchange, before + 1);
    assert_eq!(world.docs.count(), 1);

    // carol cannot be served by summarizer-tech: refused at the door, no exchange.
    let carol = world
        .sts
        .login(
            "carol",
            "carol123",
            crate::support::world::PORTAL,
            crate::support::world::PORTAL_SECRET,
        )
        .await;
    let stats = world.sts.service.stats();
    let (status, body) = get(&world, "/summaries", &carol).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error_description"],
        "the user and the agents acting for them share no permission"
    );
    let after = world.sts.service.stats();
    assert_eq!(after.token_exchange, stats.token_exchange);
    assert_eq!(after.client_credentials, stats.client_credentials);
    assert_eq!(world.app.count(), 1);

    // A token carol got delegated elsewhere is refused outbound before any exchange.
    let carol_delegated = world.sts.delegated("carol", "summarizer-tech", AGENT).await;
    let stats = world.sts.service.stats();
    let resp = world
        .agent_call("document-service", "/documents/DOC-007", &carol_delegated)
        .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        world.sts.service.stats().token_exchange,
        stats.token_exchange
    );
    assert_eq!(world.docs.count(), 1);
}

#[tokio::test]
async fn a_remote_opa_decides_the_same_and_its_outage_refuses_with_503() {
    let opa = crate::support::opa::Opa::start(&policies_dir()).await;
    let sts = Sts::start().await;
    let config = sidecar_head(&sts, DOCUMENT_SERVICE)
        + &format!("policy:\n  opa_url: {}\n  eval_timeout: 1s\n", opa.url);
    let world = World::start_with(sts, &config).await;
    let alice = world
        .sts
        .delegated("alice", "summarizer-tech", DOCUMENT_SERVICE)
        .await;
    let (status, body) = get(&world, "/documents/DOC-005", &alice).await;
    assert_eq!(status, 200, "{body} {}", world.actbridge.log());
    assert_eq!(
        world.app.seen()[0].header_all("x-actbridge-grant"),
        vec!["engineering,finance"]
    );
    let bob = world
        .sts
        .delegated("bob", "summarizer-tech", DOCUMENT_SERVICE)
        .await;
    let (status, body) = get(&world, "/documents/DOC-005", &bob).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error_description"],
        "DOC-005 needs every one of its departments in the grant"
    );
    assert_eq!(opa.calls(), 2);
    // A repeated decision is served from the cache.
    assert_eq!(get(&world, "/documents/DOC-005", &alice).await.0, 200);
    assert_eq!(opa.calls(), 2);

    // OPA down: 503, nothing reaches the app.
    opa.force_status(503);
    let (status, body) = get(&world, "/documents/DOC-001", &alice).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    // OPA failing to evaluate (500 internal_error): a policy error.
    opa.force_status(500);
    let (status, body) = get(&world, "/documents/DOC-002", &alice).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error_description"],
        "the request could not be authorized"
    );
    assert_eq!(world.app.count(), 2);
}

#[tokio::test]
async fn an_unreachable_opa_refuses_with_503() {
    let sts = Sts::start().await;
    let closed = crate::support::net::free_port();
    let config = sidecar_head(&sts, DOCUMENT_SERVICE)
        + &format!("policy:\n  opa_url: http://127.0.0.1:{closed}\n");
    let world = World::start_with(sts, &config).await;
    let alice = world
        .sts
        .delegated("alice", "summarizer-tech", DOCUMENT_SERVICE)
        .await;
    let (status, _) = get(&world, "/documents/DOC-001", &alice).await;
    assert_eq!(status, 503);
    assert_eq!(world.app.count(), 0);
}

/// The shipped policy is default-deny (issue 20 §8): on the document service's route,
/// only `GET`/`HEAD /documents` and `/documents/<known id>` go on. Case variants, extra
/// segments, writes and unknown shapes are refused before any exchange, and the document
/// service (which a case-insensitive framework might serve them from) receives nothing.
#[tokio::test]
async fn shapes_the_policy_does_not_know_are_refused_before_the_exchange() {
    let sts = Sts::start().await;
    let config = agent_config_with_policy(&sts);
    let world = World::start_with(sts, &config).await;
    let token = world.sts.alice_delegated().await;
    let exchanges = world.sts.service.stats().token_exchange;
    for (method, path) in [
        ("GET", "/Documents/DOC-004"),
        ("GET", "/DOCUMENTS/DOC-001"),
        ("GET", "/documents/DOC-004/content"),
        ("GET", "/documents/DOC-001/content"),
        ("DELETE", "/Documents/DOC-001"),
        ("DELETE", "/documents/DOC-001"),
        ("POST", "/documents"),
        ("GET", "/documents/DOC-999"),
        ("GET", "/admin/secrets"),
        ("GET", "/"),
    ] {
        let r = world
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("http://127.0.0.1:{}{path}", world.envoy.outbound_port),
            )
            .header("host", "document-service")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
    }
    assert_eq!(world.docs.count(), 0);
    assert_eq!(world.sts.service.stats().token_exchange, exchanges);
    // The shapes it knows still go on.
    for path in ["/documents", "/documents/DOC-001"] {
        let r = world.agent_call("document-service", path, &token).await;
        assert_eq!(r.status(), 200, "{path}");
    }
}
