//! Single-use capability tokens: the embedded token service issues a token for one
//! action, and the tool's sidecar refuses its second presentation.

use crate::support::world::{Sts, World, claims_of, sidecar_head};

const TOOL: &str = "spiffe://demo.example.com/tool/document-reader";

fn tool_config(sts: &Sts) -> String {
    sidecar_head(sts, TOOL) + "inbound:\n  single_use_paths:\n    - prefix: /tools/\n"
}

#[tokio::test]
async fn a_capability_token_names_one_tool_one_action_lives_seconds_and_is_used_once() {
    let sts = Sts::start().await;
    let config = tool_config(&sts);
    let world = World::start_with(sts, &config).await;
    let delegated = world
        .sts
        .delegated("alice", "summarizer-tech", crate::support::world::AGENT)
        .await;

    // Two actions at once are not a capability token.
    let http = reqwest::Client::new();
    let resp = http
        .post(world.sts.service.token_endpoint())
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("client_id", crate::support::world::AGENT),
            ("client_secret", crate::support::world::AGENT_SECRET),
            ("subject_token", &delegated),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("audience", TOOL),
            ("scope", "openid documents.read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "A capability token is issued for exactly one audience and one scope"
    );

    let capability = world
        .sts
        .exchange_scoped("summarizer-tech", &delegated, TOOL, "documents.read")
        .await;
    let c = claims_of(&capability);
    assert_eq!(c["aud"], TOOL);
    assert_eq!(c["scope"], "documents.read");
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let life = c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap();
    assert!(life <= 30, "lives seconds, not minutes: {life}");

    let first = world
        .inbound("/tools/read_document")
        .bearer_auth(&capability)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200, "{}", world.actbridge.log());
    let again = world
        .inbound("/tools/read_document")
        .bearer_auth(&capability)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body["error_description"], "token replayed");
    assert_eq!(world.app.count(), 1, "the replay never reaches the tool");

    // Outside the single-use paths the same token is an ordinary bearer token.
    let other = world
        .inbound("/health-of-tool")
        .bearer_auth(&capability)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn a_token_without_jti_cannot_be_single_use() {
    let sts = Sts::start().await;
    let config = tool_config(&sts);
    let world = World::start_with(sts, &config).await;
    let now = actbridge::clock::now_secs();
    let token = world.sts.sign(serde_json::json!({
        "iss": world.sts.service.issuer(), "sub": "u", "aud": TOOL,
        "iat": now, "exp": now + 30,
    }));
    let resp = world
        .inbound("/tools/read_document")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(world.app.count(), 0);
}

#[tokio::test]
async fn may_act_in_the_subject_token_names_who_may_act_for_the_user() {
    // The front end's user tokens name every agent in `aud` (reviewer-ops too), but their
    // `may_act` names only summarizer-tech.
    let realm =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/demo/realm.yaml")).unwrap();
    let tech = crate::support::world::AGENT;
    let ops = crate::support::world::agent_id("reviewer-ops");
    let realm = crate::support::config_edit::ConfigEdit::of(&realm)
        .set(
            "clients[client_id=agent-portal].may_act",
            &format!("['{tech}']"),
        )
        .yaml();
    let sts = Sts::start_with_realm(&realm).await;
    let own = sts
        .login(
            "alice",
            "alice123",
            crate::support::world::PORTAL,
            crate::support::world::PORTAL_SECRET,
        )
        .await;
    assert_eq!(
        claims_of(&own)["may_act"],
        serde_json::json!([{ "client_id": tech }])
    );
    let (status, body) = sts
        .exchange_as("reviewer-ops", &own, &ops, true)
        .await
        .expect_err("reviewer-ops is not in may_act");
    assert_eq!(status, 403);
    assert_eq!(body["error"], "access_denied");
    // Without an actor token nobody is named: not an impersonation either, not even by
    // the client that may act (issue 20 §3).
    for agent in ["reviewer-ops", "summarizer-tech"] {
        let (status, body) = sts
            .exchange_as(agent, &own, tech, false)
            .await
            .expect_err("may_act needs an actor token");
        assert_eq!(status, 403, "{agent}");
        assert_eq!(body["error"], "access_denied");
    }
    let delegated = sts
        .exchange_as("summarizer-tech", &own, tech, true)
        .await
        .expect("summarizer-tech is in may_act");
    assert_eq!(claims_of(&delegated)["act"]["client_id"], tech);
}
