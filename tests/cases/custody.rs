//! Token custody through the real Envoy: the app holds an opaque placeholder, never a
//! token; the placeholder works only on this sidecar's exchange routes and only while the
//! token it stands for lives (that expiry is tested in process, on a clock moved by hand:
//! `decisions/stateful.rs::a_placeholder_dies_with_its_token`).

use serde_json::Value;

use crate::support::config_edit::ConfigEdit;
use crate::support::world::{AGENT, Sts, World, claims_of, sidecar_config};

/// summarizer-tech's sidecar with inbound delegation and token custody, and a
/// passthrough route that forwards `authorization` (to `forward.example`).
fn custody_config(sts: &Sts, delegation: bool) -> String {
    ConfigEdit::of(&sidecar_config(sts))
        .set("inbound.delegation", &delegation.to_string())
        .set("inbound.token_custody", "true")
        .push(
            "outbound.routes",
            "{name: forward, host: forward.example, cluster: document_service, action: passthrough, forward_authorization: true}",
        )
        .yaml()
}

/// An outbound call with `placeholder` is refused as unknown or expired.
async fn assert_placeholder_unknown(world: &World, placeholder: &str) {
    let (status, body) = error_of(
        world
            .agent_call("document-service", "/documents", placeholder)
            .await,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error_description"],
        "the token is unknown or has expired"
    );
}

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_app_holds_a_placeholder_that_works_only_outbound_through_its_sidecar() {
    let sts = Sts::start().await;
    let config = custody_config(&sts, true);
    assert!(config.contains("token_custody: true") && config.contains("forward.example"));
    let world = World::start_with(sts, &config).await;
    let own = world.sts.alice().await;

    let resp = world
        .inbound("/summaries")
        .bearer_auth(&own)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    let held = world.app.seen()[0].bearer().to_string();
    assert!(held.starts_with("actbridge~"), "{held}");
    assert_eq!(held.split('.').count(), 1, "not a JWT");
    assert!(!held.contains(&own));
    // The same caller token gets the same placeholder.
    world
        .inbound("/summaries")
        .bearer_auth(&own)
        .send()
        .await
        .unwrap();
    assert_eq!(world.app.seen()[1].bearer(), held);

    // Outbound, the placeholder is resolved, judged and exchanged.
    let resp = world
        .agent_call("document-service", "/documents/DOC-001", &held)
        .await;
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    let delegated = world.docs.seen()[0].bearer().to_string();
    let c = claims_of(&delegated);
    assert_eq!(c["preferred_username"], "alice");
    assert_eq!(c["act"]["client_id"], AGENT);
    assert!(
        world.docs.seen()[0]
            .headers
            .iter()
            .all(|(_, v)| !v.contains(&held))
    );

    let exchanges = world.sts.service.stats().token_exchange;
    // Presented inbound, it is refused.
    let (status, body) = error_of(
        world
            .inbound("/summaries")
            .bearer_auth(&held)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error_description"], "this token cannot be used here");
    // On a route that would forward it, it is refused and never leaves the pod.
    let (status, _) = error_of(world.agent_call("forward.example", "/", &held).await).await;
    assert_eq!(status, 401);
    // A placeholder this sidecar never handed out is unknown.
    let forged = format!("actbridge~{}", "A".repeat(43));
    assert_placeholder_unknown(&world, &forged).await;
    assert_eq!(world.sts.service.stats().token_exchange, exchanges);
    assert_eq!(world.docs.count(), 1);
    assert_eq!(world.app.count(), 2);
}

#[tokio::test]
async fn custody_holds_on_bypass_paths_and_a_forwarding_route_never_carries_a_user_token() {
    let sts = Sts::start().await;
    let config = custody_config(&sts, true);
    let world = World::start_with(sts, &config).await;
    // A bypass path needs no token; under custody the app never receives the caller's.
    let own = world.sts.alice().await;
    for path in ["/healthz", "/public/readme.txt"] {
        let resp = world
            .inbound(path)
            .bearer_auth(&own)
            .header("proxy-authorization", format!("Bearer {own}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let seen = world.app.seen().pop().unwrap();
        assert!(seen.header("authorization").is_none(), "{path}: {seen:?}");
        assert!(seen.header("proxy-authorization").is_none(), "{path}");
    }
    // A route forwarding the agent's `authorization` refuses a user's token, delegated
    // or not, valid or not, in whatever scheme or position.
    let delegated = world.sts.alice_delegated().await;
    let forged = format!("{}.forged", &delegated[..delegated.rfind('.').unwrap()]);
    for value in [
        format!("Bearer {delegated}"),
        format!("Bearer {own}"),
        format!("Token {delegated}"),
        format!("Bearer {forged}"),
        format!("Basic abc, Bearer {delegated}"),
    ] {
        let resp = world
            .outbound("forward.example", "/")
            .header("authorization", &value)
            .send()
            .await
            .unwrap();
        let (status, body) = error_of(resp).await;
        assert_eq!(status, 403, "{value}");
        assert_eq!(
            body["error_description"],
            "this destination does not take the user's token"
        );
    }
    assert_eq!(world.docs.count(), 0, "a user token left the pod");
    // The agent's own credential for a third party still goes through.
    let resp = world
        .outbound("forward.example", "/")
        .header("authorization", "Bearer third-party-api-key")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(world.docs.seen()[0].bearer(), "third-party-api-key");
}

/// Revocation reaches what was derived: with delegation and custody, the app holds a
/// placeholder for a token exchanged from alice's. Revoking alice's own token (kind `token`, its `jti`)
/// or alice refuses the placeholder outbound at once, though the token it stands for is
/// another (issue 20 §2).
#[tokio::test]
async fn revoking_the_callers_token_or_user_reaches_the_placeholder_derived_from_it() {
    use serde_json::json;
    for kind in ["token", "user"] {
        let sts = Sts::start().await;
        let config = custody_config(&sts, true)
            + "admin_api:\n  listen: 127.0.0.1:{ADMIN_API}\n  audiences: [actbridge-admin]\n  roles: [actbridge-admin]\n";
        let world = World::start_with(sts, &config).await;
        let own = world.sts.alice().await;
        let resp = world
            .inbound("/summaries")
            .bearer_auth(&own)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let held = world.app.seen()[0].bearer().to_string();
        assert!(held.starts_with("actbridge~"));
        let call = || world.agent_call("document-service", "/documents/DOC-001", &held);
        assert_eq!(call().await.status(), 200, "before the revocation");
        let now = actbridge::clock::now_secs();
        let admin = world.sts.sign(json!({
            "iss": world.sts.service.issuer(), "sub": "bob-id", "preferred_username": "bob",
            "aud": "actbridge-admin", "realm_access": {"roles": ["actbridge-admin"]},
            "iat": now, "exp": now + 300,
        }));
        let value = match kind {
            "token" => claims_of(&own)["jti"].as_str().unwrap().to_string(),
            _ => "alice".to_string(),
        };
        let r = world
            .http
            .post(format!(
                "http://127.0.0.1:{}/revocations",
                world.actbridge.admin_api_port
            ))
            .bearer_auth(&admin)
            .json(&json!({"kind": kind, "value": value}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{kind}: {}", r.status());
        let (status, _) = error_of(call().await).await;
        assert_eq!(status, 401, "{kind}: the placeholder still worked");
        assert_eq!(world.docs.count(), 1, "{kind}");
    }
}
