//! Outbound through the real Envoy: the exchange, the cache, single-flight, failures of
//! the token service, and the route table.

use std::sync::Arc;

use crate::support::world::{AGENT, DOCUMENT_SERVICE, Sts, World, claims_of, sidecar_config};

#[tokio::test]
async fn the_destination_receives_a_delegated_token_for_itself_never_the_original() {
    let world = World::start().await;
    let token = world.sts.alice().await;
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
async fn a_cached_exchange_is_not_repeated() {
    let world = World::start().await;
    let token = world.sts.alice().await;
    for _ in 0..3 {
        let resp = world
            .agent_call("document-service", "/documents", &token)
            .await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(world.docs.count(), 3);
    let stats = world.sts.service.stats();
    assert_eq!(stats.token_exchange, 1, "{stats:?}");
    assert_eq!(
        stats.client_credentials, 1,
        "the actor token is cached too: {stats:?}"
    );
}

#[tokio::test]
async fn two_hundred_concurrent_identical_cold_requests_cause_one_exchange() {
    let world = Arc::new(World::start().await);
    let token = world.sts.alice().await;
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
    assert_eq!(world.sts.service.stats().token_exchange, 1);
}

#[tokio::test]
async fn token_service_down_is_503_with_retry_after_and_the_destination_is_not_reached() {
    let world = World::start().await;
    let token = world.sts.alice().await;
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
    let config = sidecar_config(&sts).replace(
        &sts.service.token_endpoint(),
        &format!("http://127.0.0.1:{closed}/realms/demo/protocol/openid-connect/token"),
    );
    let world = World::start_with(sts, &config).await;
    let token = world.sts.alice().await;
    let resp = world
        .agent_call("document-service", "/documents", &token)
        .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(world.docs.count(), 0);
}

#[tokio::test]
async fn an_exchange_the_token_service_refuses_is_403() {
    let sts = Sts::start().await;
    let config = sidecar_config(&sts).replace(
        &format!("audience: \"{DOCUMENT_SERVICE}\""),
        "audience: \"spiffe://demo.example.com/service/payroll\"",
    );
    let world = World::start_with(sts, &config).await;
    let token = world.sts.alice().await;
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
    let token = world.sts.alice().await;
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
    // The inbound token of another agent is not accepted as a subject token here.
    let other = world
        .sts
        .login(
            "alice",
            "alice123",
            "spiffe://demo.example.com/agent/reviewer-ops",
            "reviewer-ops-demo-secret",
        )
        .await;
    let resp = world
        .agent_call("document-service", "/documents", &other)
        .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(world.docs.count(), 0);
    assert_eq!(world.sts.service.stats().token_exchange, 0);
}

#[tokio::test]
async fn passthrough_removes_the_users_token() {
    let world = World::start().await;
    let token = world.sts.alice().await;
    // The passthrough route matches 127.0.0.1:*; the egress cluster forwards it to the
    // document-service echo's port.
    let host = format!("127.0.0.1:{}", world.docs.port);
    let resp = world.agent_call(&host, "/public", &token).await;
    assert_eq!(resp.status(), 200, "{}", world.envoy.log());
    let seen = world.docs.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].header("authorization").is_none());
}
