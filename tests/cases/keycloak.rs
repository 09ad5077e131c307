//! actbridge against a real Keycloak 26.7.3 (tests/support/keycloak.rs: one per test
//! process, the demo realm created from demo/realm.yaml) through the real Envoy: the
//! token service and issuer is Keycloak, not the embedded one.
//!
//! Keycloak's standard token exchange writes no `act` and ignores an `actor_token`, so
//! the sidecar here exchanges the user's own token (`allow_direct_use`) and sends no actor
//! token; the delegation chain with Keycloak is issue 26's next step.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::config_edit::ConfigEdit;
use crate::support::keycloak::{self, Keycloak};
use crate::support::pem;
use crate::support::world::{
    AGENT, AGENT_SECRET, DOCUMENT_SERVICE, Sts, World, claims_of, sidecar_config,
};

/// summarizer-tech's sidecar with Keycloak's demo realm as issuer and token service.
fn keycloak_sidecar(sts: &Sts, kc: &Keycloak) -> String {
    sidecar_for_realm(sts, kc, keycloak::REALM)
}

/// summarizer-tech's sidecar with Keycloak's `realm` as issuer and token service.
fn sidecar_for_realm(sts: &Sts, kc: &Keycloak, realm: &str) -> String {
    ConfigEdit::of(&sidecar_config(sts))
        .replace("issuers[0].issuer", &kc.issuer_of(realm))
        .replace("outbound.token_endpoint", &kc.token_endpoint_of(realm))
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

/// The `kid` in a JWT's header.
fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: Value = serde_json::from_slice(&bytes).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

/// Keycloak's realm keys rotated (a new RSA key with a higher priority): tokens signed
/// with the new key are verified once actbridge fetches the new JWKS, with no restart,
/// and tokens signed before stay valid while Keycloak still publishes their key.
#[tokio::test]
async fn a_realm_key_rotation_is_followed_without_a_restart() {
    let kc = keycloak::shared().await;
    let realm = "rotation";
    kc.create_demo_realm(realm).await;
    let sts = Sts::start().await;
    let config = sidecar_for_realm(&sts, kc, realm);
    let world = World::start_with(sts, &config).await;
    let login = async || {
        kc.password_token_in(realm, (AGENT, AGENT_SECRET), "alice", "alice123")
            .await
    };
    let before = login().await;
    let inbound = async |token: &str| {
        let r = world.inbound("/documents").bearer_auth(token).send().await;
        r.unwrap().status().as_u16()
    };
    assert_eq!(inbound(&before).await, 200, "{}", world.actbridge.log());

    let admin = kc.admin().await;
    let realm_id = admin.get(realm).await["id"].as_str().unwrap().to_string();
    admin
        .post(
            &format!("{realm}/components"),
            &json!({
                "name": "rotated",
                "providerId": "rsa-generated",
                "providerType": "org.keycloak.keys.KeyProvider",
                "parentId": realm_id,
                "config": {"priority": ["500"]},
            }),
        )
        .await;
    let after = login().await;
    assert_ne!(kid_of(&after), kid_of(&before), "the new key signs");
    // An unknown `kid` is fetched at most once a second (`jwks_min_refetch_interval`):
    // within a few seconds the new key is known.
    let mut status = 0;
    for _ in 0..5 {
        status = inbound(&after).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(status, 200, "{}", world.actbridge.log());
    assert_eq!(
        inbound(&before).await,
        200,
        "the old key is still published"
    );
}

/// A token whose session Keycloak has ended (the user logged out everywhere) still
/// verifies locally until its `exp`, but Keycloak refuses to exchange it (400
/// `invalid_request` "Invalid token"): the agent gets 403 and the destination nothing.
#[tokio::test]
async fn a_token_whose_session_keycloak_ended_is_not_exchanged() {
    let kc = keycloak::shared().await;
    let realm = "sessions";
    kc.create_demo_realm(realm).await;
    let sts = Sts::start().await;
    let config = sidecar_for_realm(&sts, kc, realm);
    let world = World::start_with(sts, &config).await;
    let alice = kc
        .password_token_in(realm, (AGENT, AGENT_SECRET), "alice", "alice123")
        .await;
    let sub = claims_of(&alice)["sub"].as_str().unwrap().to_string();
    let admin = kc.admin().await;
    admin
        .post(&format!("{realm}/users/{sub}/logout"), &json!({}))
        .await;
    let resp = world
        .agent_call("document-service", "/documents", &alice)
        .await;
    assert_eq!(resp.status(), 403, "{}", world.actbridge.log());
    assert_eq!(world.docs.count(), 0);
    assert!(world.actbridge.log().contains("Invalid token"));
}

/// actbridge authenticates to Keycloak with `private_key_jwt` (RFC 7523), a key it
/// holds: Keycloak knows the client by its public key (`jwks.string`), and the
/// exchange succeeds. Users log in through a front-end client whose tokens name the
/// agent, as docs/deploy.md recommends.
#[tokio::test]
async fn private_key_jwt_authenticates_actbridge_to_keycloak() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    // The uncompressed point: 0x04, x, y.
    let point = kp.public_key().as_ref();
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "agent-key",
        "x": b64(&point[1..33]), "y": b64(&point[33..65]),
    }]});
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("agent.pem");
    std::fs::write(&key_file, pem("PRIVATE KEY", pkcs8.as_ref())).unwrap();

    let kc = keycloak::shared().await;
    let realm = keycloak::REALM;
    let agent = "spiffe://demo.example.com/agent/key-holder";
    let audience = |name: &str, aud: &str| {
        json!({
            "name": name, "protocol": "openid-connect",
            "protocolMapper": "oidc-audience-mapper",
            "config": {"included.custom.audience": aud, "access.token.claim": "true"},
        })
    };
    let admin = kc.admin().await;
    admin
        .post(
            &format!("{realm}/clients"),
            &json!({
                "clientId": agent, "publicClient": false, "standardFlowEnabled": false,
                "clientAuthenticatorType": "client-jwt",
                "attributes": {
                    "standard.token.exchange.enabled": "true",
                    "use.jwks.string": "true",
                    "jwks.string": jwks.to_string(),
                    "token.endpoint.auth.signing.alg": "ES256",
                },
                "protocolMappers": [audience("documents", DOCUMENT_SERVICE)],
            }),
        )
        .await;
    admin
        .post(
            &format!("{realm}/clients"),
            &json!({
                "clientId": "key-holder-front", "secret": "front-secret",
                "publicClient": false, "standardFlowEnabled": false,
                "directAccessGrantsEnabled": true,
                "protocolMappers": [audience("agent", agent)],
            }),
        )
        .await;

    let sts = Sts::start().await;
    let config = ConfigEdit::of(&keycloak_sidecar(&sts, kc))
        .replace("issuers[0].audiences", &format!("['{agent}']"))
        .replace("outbound.client.client_id", agent)
        .replace(
            "outbound.client.auth",
            &format!(
                "{{method: private_key_jwt, algorithm: ES256, key_id: agent-key, private_key_file: '{}'}}",
                key_file.display()
            ),
        )
        .replace("outbound.routes[name=document-service].scopes", "[]")
        .yaml();
    let world = World::start_with(sts, &config).await;
    let alice = kc
        .password_token_in(
            realm,
            ("key-holder-front", "front-secret"),
            "alice",
            "alice123",
        )
        .await;
    let resp = world
        .agent_call("document-service", "/documents", &alice)
        .await;
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    let issued = claims_of(world.docs.seen()[0].bearer());
    assert_eq!(issued["azp"], agent, "{issued}");
    assert_eq!(issued["aud"], DOCUMENT_SERVICE, "{issued}");
    assert_eq!(issued["sub"], claims_of(&alice)["sub"]);
}
