//! actbridge against a real Keycloak 26.7.3 (tests/support/keycloak.rs: one per test
//! process, the demo realm created from demo/realm.yaml) through the real Envoy: the
//! token service and issuer is Keycloak, not the embedded one.
//!
//! Keycloak's standard token exchange writes no `act` and ignores an `actor_token`, so
//! the sidecar here exchanges the user's own token (`allow_direct_use`) and sends no actor
//! token; the delegation chain with Keycloak is issue 26's next step.

use serde_json::Value;

use crate::support::config_edit::ConfigEdit;
use crate::support::keycloak::{self, Keycloak};
use crate::support::world::{
    AGENT, AGENT_SECRET, DOCUMENT_SERVICE, Sts, World, claims_of, sidecar_config,
};

/// summarizer-tech's sidecar with Keycloak as issuer and token service.
fn keycloak_sidecar(sts: &Sts, kc: &Keycloak) -> String {
    ConfigEdit::of(&sidecar_config(sts))
        .replace("issuers[0].issuer", &kc.issuer())
        .replace("outbound.token_endpoint", &kc.token_endpoint())
        .set("outbound.send_actor_token", "false")
        .set(
            "outbound.routes[name=document-service].allow_direct_use",
            "true",
        )
        .yaml()
}

#[tokio::test]
async fn keycloak_tokens_are_verified_inbound_and_exchanged_outbound_for_the_destination() {
    let kc = keycloak::shared().await;
    let sts = Sts::start().await;
    let config = keycloak_sidecar(&sts, kc);
    let world = World::start_with(sts, &config).await;
    let alice = kc
        .password_token(AGENT, AGENT_SECRET, "alice", "alice123")
        .await;
    let login = claims_of(&alice);
    assert_eq!(login["iss"], kc.issuer(), "{login}");

    // Inbound: Keycloak's token verified against its JWKS; the app gets alice.
    let resp = world
        .inbound("/documents")
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    let seen = &world.app.seen()[0];
    assert_eq!(seen.header("x-actbridge-subject"), login["sub"].as_str());
    assert_eq!(seen.header("x-actbridge-username"), Some("alice"));

    // Outbound: Keycloak exchanges it for the document service: sub kept, aud narrowed,
    // documents.read granted, azp = the agent; alice's own token never leaves.
    let resp = world
        .agent_call("document-service", "/documents", &alice)
        .await;
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    let sent = world.docs.seen()[0].bearer().to_string();
    assert_ne!(sent, alice);
    let issued = claims_of(&sent);
    assert_eq!(issued["iss"], kc.issuer());
    assert_eq!(issued["sub"], login["sub"], "{issued}");
    assert_eq!(issued["aud"], Value::from(DOCUMENT_SERVICE), "{issued}");
    assert_eq!(issued["azp"], AGENT);
    let scopes: Vec<&str> = issued["scope"].as_str().unwrap().split(' ').collect();
    assert!(scopes.contains(&"documents.read"), "{issued}");
}

/// Each way Keycloak refuses an exchange, as actbridge answers the agent: refusals of the
/// request are the caller's (403), a rejection of actbridge's own client is the
/// operator's (500), and nothing reaches the destination.
#[tokio::test]
async fn keycloaks_refusals_are_mapped_to_the_documented_statuses() {
    let kc = keycloak::shared().await;
    let alice = kc
        .password_token(AGENT, AGENT_SECRET, "alice", "alice123")
        .await;
    let route = "outbound.routes[name=document-service]";
    let cases = [
        // 400 invalid_client "Audience not found".
        (
            format!("{route}.audience"),
            "spiffe://demo.example.com/service/payroll",
            (403, "access_denied"),
            "Audience not found",
        ),
        // 400 invalid_scope "Invalid scopes: payroll.write".
        (
            format!("{route}.scopes"),
            "[payroll.write]",
            (403, "access_denied"),
            "invalid_scope",
        ),
        // 401 unauthorized_client "Invalid client or Invalid client credentials".
        (
            "outbound.client.auth.secret".to_string(),
            "not-the-secret",
            (500, "server_error"),
            "rejected actbridge's client",
        ),
    ];
    let mut failures = Vec::new();
    // (key, its value, the agent's status and `error`, what the operator's log says)
    for (key, value, (status, error), log_says) in cases {
        let sts = Sts::start().await;
        let config = ConfigEdit::of(&keycloak_sidecar(&sts, kc))
            .replace(&key, value)
            .yaml();
        let world = World::start_with(sts, &config).await;
        let resp = world
            .agent_call("document-service", "/documents", &alice)
            .await;
        let got_status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or_default();
        let log = world.actbridge.log();
        if (got_status, body["error"].as_str()) != (status, Some(error))
            || world.docs.count() != 0
            || !log.contains(log_says)
        {
            failures.push(format!(
                "{key} = {value}: {got_status} {body}, {} reached the destination, log without `{log_says}`:\n{log}",
                world.docs.count(),
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
