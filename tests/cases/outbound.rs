//! Outbound through the real Envoy: the exchange, the cache, single-flight, failures of
//! the token service, and the route table.

use std::sync::Arc;

use crate::support::config_edit::ConfigEdit;
use crate::support::world::{AGENT, DOCUMENT_SERVICE, Sts, World, claims_of, sidecar_config};

#[tokio::test]
async fn the_destination_receives_a_delegated_token_for_itself_never_the_original() {
    let world = World::start().await;
    let token = world.sts.alice_delegated().await;
    let resp = world
        .agent_call("document-service", "/documents/DOC-001", &token)
        .await;
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    let seen = world.docs.seen();
    assert_eq!(seen.len(), 1);
    let auth = seen[0].header_all("authorization");
    assert_eq!(auth.len(), 1);
    let delegated = auth[0].strip_prefix("Bearer ").unwrap();
    assert_ne!(delegated, token);
    assert!(
        seen[0].headers.iter().all(|(_, v)| !v.contains(&token)),
        "the user's token must never leave the pod"
    );
    let original = claims_of(&token);
    let c = claims_of(delegated);
    assert_eq!(c["sub"], original["sub"]);
    assert_eq!(c["preferred_username"], "alice");
    assert_eq!(c["act"]["client_id"], AGENT);
    assert!(
        c["act"].get("act").is_none(),
        "the agent already named in the token is not named twice: {c}"
    );
    let aud = match &c["aud"] {
        serde_json::Value::String(s) => vec![s.clone()],
        v => v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect(),
    };
    assert_eq!(aud, vec![DOCUMENT_SERVICE.to_string()]);
    assert!(c["exp"].as_u64().unwrap() <= original["exp"].as_u64().unwrap());
    assert_eq!(c["scope"], "documents.read");
    let log = world.actbridge.log();
    assert!(log.contains("allowed"), "the decision is logged: {log}");
    for secret in [
        token.as_str(),
        delegated,
        crate::support::world::AGENT_SECRET,
    ] {
        assert!(!log.contains(secret), "a token or secret reached the log");
    }
}

#[tokio::test]
async fn a_cached_exchange_is_not_repeated_and_the_actor_token_is_shared() {
    let world = World::start().await;
    // Tokens reviewer-general delegated on to summarizer-tech: this sidecar names itself
    // as the next actor, so it needs its own actor token.
    let alice = world
        .sts
        .delegated("alice", "reviewer-general", AGENT)
        .await;
    let david = world
        .sts
        .delegated("david", "reviewer-general", AGENT)
        .await;
    let before = world.sts.service.stats();
    for token in [&alice, &david, &alice, &david, &alice, &david] {
        let resp = world
            .agent_call("document-service", "/documents", token)
            .await;
        assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    }
    assert_eq!(world.docs.count(), 6);
    let after = world.sts.service.stats();
    assert_eq!(
        after.token_exchange - before.token_exchange,
        2,
        "one exchange per subject token: {after:?}"
    );
    assert_eq!(
        after.client_credentials - before.client_credentials,
        1,
        "the actor token is cached across subjects: {after:?}"
    );
    let delegated = world.docs.seen()[0].bearer().to_string();
    let act = &claims_of(&delegated)["act"];
    assert_eq!(act["client_id"], AGENT, "this agent is the newest actor");
    assert_eq!(
        act["act"]["client_id"],
        crate::support::world::agent_id("reviewer-general")
    );
}

#[tokio::test]
async fn two_hundred_concurrent_identical_cold_requests_cause_one_exchange() {
    let world = Arc::new(World::start().await);
    let token = world.sts.alice_delegated().await;
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (w, t) = (world.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            w.agent_call("document-service", "/documents", &t)
                .await
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(world.docs.count(), 200);
    // One exchange made the token (the agent's delegation), one by the sidecar.
    assert_eq!(world.sts.service.stats().token_exchange, 2);
}

#[tokio::test]
async fn token_service_down_is_503_with_retry_after_and_the_destination_is_not_reached() {
    let world = World::start().await;
    let token = world.sts.alice_delegated().await;
    world.sts.service.set_unavailable(true);
    let resp = world
        .agent_call("document-service", "/documents", &token)
        .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(world.docs.count(), 0);
}

#[tokio::test]
async fn token_service_unreachable_is_503() {
    let sts = Sts::start().await;
    let closed = crate::support::net::free_port();
    let config = ConfigEdit::of(&sidecar_config(&sts))
        .replace(
            "outbound.token_endpoint",
            &format!("http://127.0.0.1:{closed}/realms/demo/protocol/openid-connect/token"),
        )
        .yaml();
    let world = World::start_with(sts, &config).await;
    let token = world.sts.alice_delegated().await;
    let resp = world
        .agent_call("document-service", "/documents", &token)
        .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(world.docs.count(), 0);
}

#[tokio::test]
async fn an_exchange_the_token_service_refuses_is_403() {
    let sts = Sts::start().await;
    let config = ConfigEdit::of(&sidecar_config(&sts))
        .replace(
            "outbound.routes[name=document-service].audience",
            "spiffe://demo.example.com/service/payroll",
        )
        .yaml();
    let world = World::start_with(sts, &config).await;
    let token = world.sts.alice_delegated().await;
    let resp = world
        .agent_call("document-service", "/documents", &token)
        .await;
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "access_denied");
    assert_eq!(world.docs.count(), 0);
}

#[tokio::test]
async fn unmatched_and_denied_hosts_are_refused_and_missing_tokens_are_401() {
    let world = World::start().await;
    let token = world.sts.alice_delegated().await;
    for host in ["unknown.example.com", "blocked.example.com"] {
        let resp = world.agent_call(host, "/", &token).await;
        assert_eq!(resp.status(), 403, "{host}");
    }
    let resp = world
        .outbound("document-service", "/documents")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // A token delegated to another agent is not accepted as a subject token here.
    let ops = "spiffe://demo.example.com/agent/reviewer-ops";
    let other = world.sts.delegated("alice", "reviewer-ops", ops).await;
    let resp = world
        .agent_call("document-service", "/documents", &other)
        .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(world.docs.count(), 0);
    assert_eq!(
        world.sts.service.stats().token_exchange,
        2,
        "only the exchanges that made the test's tokens"
    );
}

#[tokio::test]
async fn passthrough_removes_the_users_token() {
    let world = World::start().await;
    let token = world.sts.alice_delegated().await;
    // The passthrough route `plain.example` leaves by the document service's cluster.
    let resp = world.agent_call("plain.example", "/public", &token).await;
    assert_eq!(resp.status(), 200, "{}", world.envoy.log());
    let seen = world.docs.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].header("authorization").is_none());
}

#[tokio::test]
async fn the_users_own_token_is_not_a_delegation_and_is_refused_before_any_exchange() {
    let world = World::start().await;
    let own = world.sts.alice().await; // no `act`: alice's own token, aud = the agent
    let before = world.sts.service.stats();
    let resp = world
        .agent_call("document-service", "/documents", &own)
        .await;
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "access_denied");
    assert_eq!(
        body["error_description"],
        "this destination requires a token delegated to an agent"
    );
    assert_eq!(world.docs.count(), 0);
    let after = world.sts.service.stats();
    assert_eq!(after.token_exchange, before.token_exchange);
    assert_eq!(after.client_credentials, before.client_credentials);
}

#[tokio::test]
async fn azp_never_stands_in_for_an_agent() {
    // A token whose `azp` names an agent but which carries no `act` is still the user's
    // own token: refused like any other direct use.
    let world = World::start().await;
    let now = actbridge::clock::now_secs();
    let token = world.sts.sign(serde_json::json!({
        "iss": world.sts.service.issuer(), "sub": "835414c6-012e-4647-8369-a9f46e3b9cad",
        "preferred_username": "alice", "aud": AGENT, "azp": AGENT,
        "groups": ["engineering", "finance"], "iat": now, "exp": now + 300,
    }));
    let resp = world
        .agent_call("document-service", "/documents", &token)
        .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(world.sts.service.stats().token_exchange, 0);
    assert_eq!(world.docs.count(), 0);
}

#[tokio::test]
async fn a_route_that_allows_direct_use_exchanges_the_users_token_without_an_actor() {
    let sts = Sts::start().await;
    let config = ConfigEdit::of(&sidecar_config(&sts))
        .set(
            "outbound.routes[name=document-service].allow_direct_use",
            "true",
        )
        .yaml();
    let world = World::start_with(sts, &config).await;
    let own = world.sts.alice().await;
    let resp = world
        .agent_call("document-service", "/documents", &own)
        .await;
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    let seen = world.docs.seen();
    let delegated = seen[0].bearer();
    let c = claims_of(delegated);
    assert_eq!(c["preferred_username"], "alice");
    assert!(c.get("act").is_none(), "direct use names no actor: {c}");
    assert_eq!(world.sts.service.stats().client_credentials, 0);
}
