//! actbridge against a real Keycloak 26.7.3 (tests/support/keycloak.rs: one per test
//! process, the demo realm created from demo/realm.yaml) through the real Envoy: the
//! token service and issuer is Keycloak, not the embedded one.
//!
//! Keycloak's standard token exchange writes no `act` and ignores an `actor_token`, so
//! the sidecar takes the actor from `azp` (`actors_from: azp`, the demo's agents by their
//! SPIFFE IDs): users log in through the front end (`agent-portal`), and no agent's client
//! lets a user log in, so a token whose `azp` is an agent comes from an exchange.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::config_edit::ConfigEdit;
use crate::support::keycloak::{self, Keycloak};
use crate::support::pem;
use crate::support::world::{
    AGENT, AGENT_SECRET, DOCUMENT_SERVICE, PORTAL, Sts, World, agent_id, claims_of, sidecar_config,
};

/// The demo's agents, as `agent_clients` names them.
const AGENTS: &str = "['spiffe://demo.example.com/agent/*']";

/// summarizer-tech's sidecar with Keycloak's demo realm as issuer and token service.
fn keycloak_sidecar(sts: &Sts, kc: &Keycloak) -> String {
    sidecar_for_realm(sts, kc, keycloak::REALM)
}

/// summarizer-tech's sidecar with Keycloak's `realm` as issuer (actors from `azp`) and
/// token service, delegating inbound tokens to the agent and holding them in custody.
fn sidecar_for_realm(sts: &Sts, kc: &Keycloak, realm: &str) -> String {
    ConfigEdit::of(&sidecar_config(sts))
        .replace("issuers[0].issuer", &kc.issuer_of(realm))
        .set("issuers[0].actors_from", "azp")
        .set("issuers[0].agent_clients", AGENTS)
        .set("inbound.delegation", "true")
        .set("inbound.token_custody", "true")
        .replace("outbound.token_endpoint", &kc.token_endpoint_of(realm))
        .set("outbound.send_actor_token", "false")
        .yaml()
}

/// A copy of the demo realm named `realm` (for a test that changes it), and
/// summarizer-tech's sidecar with it as issuer and token service.
async fn world_in_realm_copy(kc: &Keycloak, realm: &str) -> World {
    kc.create_demo_realm(realm).await;
    let sts = Sts::start().await;
    let config = sidecar_for_realm(&sts, kc, realm);
    World::start_with(sts, &config).await
}

/// alice's token delegated to summarizer-tech by Keycloak (what the inbound delegation
/// holds for the app): `azp` = the agent.
async fn alice_delegated(kc: &Keycloak, realm: &str) -> String {
    let alice = kc.user_token_in(realm, "alice").await;
    kc.exchange_in(realm, (AGENT, AGENT_SECRET), &alice, AGENT)
        .await
        .unwrap_or_else(|(status, body)| panic!("exchange: {status} {body}"))
}

/// `token` refused inbound and outbound with `status` and `description`, the log naming
/// `reason`, and nothing reaching the app or the destination.
async fn refused_in_and_out(
    world: &World,
    token: &str,
    (status, description): (u16, &str),
    reason: &str,
) {
    for resp in [
        world
            .inbound("/documents")
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
        world
            .agent_call("document-service", "/documents", token)
            .await,
    ] {
        let (got, body) = refusal(resp).await;
        assert_eq!(got, status, "{body}");
        assert_eq!(body["error_description"], description);
    }
    assert!(world.actbridge.log().contains(reason));
    assert_eq!((world.app.count(), world.docs.count()), (0, 0));
}

/// The error body of a refused request.
async fn refusal(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

/// The whole story: alice logs in at the front end; the agent's sidecar verifies her
/// token with Keycloak's keys, has Keycloak delegate it to the agent and hands the app a
/// placeholder; outbound, Keycloak exchanges the held token for the document service.
/// The destination gets `sub` = alice, `aud` narrowed, `documents.read`, and the agent as
/// `azp`, the one actor Keycloak records.
#[tokio::test]
async fn keycloak_tokens_are_verified_inbound_delegated_and_exchanged_for_the_destination() {
    let kc = keycloak::shared().await;
    let sts = Sts::start().await;
    let config = keycloak_sidecar(&sts, &kc);
    let world = World::start_with(sts, &config).await;
    let alice = kc.user_token("alice").await;
    let login = claims_of(&alice);
    assert_eq!(login["iss"], kc.issuer(), "{login}");
    assert_eq!(login["azp"], PORTAL, "{login}");

    // Inbound: Keycloak's token verified against its JWKS; the app gets alice and a
    // placeholder for the token Keycloak delegated to the agent.
    let held = world.held_for("/documents", &alice).await;
    let seen = &world.app.seen()[0];
    assert_eq!(seen.header("x-actbridge-subject"), login["sub"].as_str());
    assert_eq!(seen.header("x-actbridge-username"), Some("alice"));
    assert_eq!(
        seen.header("x-actbridge-actors"),
        Some("[]"),
        "her own token"
    );
    assert!(held.starts_with("actbridge~"), "{held}");

    // Outbound: the held token exchanged for the document service.
    let resp = world
        .agent_call("document-service", "/documents", &held)
        .await;
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    let sent = world.docs.seen()[0].bearer().to_string();
    assert_ne!(sent, alice);
    let issued = claims_of(&sent);
    assert_eq!(issued["iss"], kc.issuer());
    assert_eq!(issued["sub"], login["sub"], "{issued}");
    assert_eq!(issued["aud"], Value::from(DOCUMENT_SERVICE), "{issued}");
    assert_eq!(issued["azp"], AGENT);
    assert!(
        issued.get("act").is_none(),
        "Keycloak writes no act: {issued}"
    );
    let scopes: Vec<&str> = issued["scope"].as_str().unwrap().split(' ').collect();
    assert!(scopes.contains(&"documents.read"), "{issued}");

    // alice's own token is not a delegation: refused outbound, nothing exchanged.
    let (status, body) = refusal(
        world
            .agent_call("document-service", "/documents", &alice)
            .await,
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (403, &json!("access_denied")),
        "{body}"
    );
    assert!(world.actbridge.log().contains("delegation_required"));
    assert_eq!(world.docs.count(), 1);
}

/// What makes `azp` an honest actor: an agent's client cannot log a user in (Keycloak
/// refuses the password grant), and an `act` that Keycloak did not compute (a hard-coded
/// claim mapper on the front end, as docs/deploy.md once advised) is refused, inbound
/// and outbound, before anything is exchanged.
#[tokio::test]
async fn an_agent_cannot_log_a_user_in_and_an_act_from_a_mapper_is_refused() {
    let kc = keycloak::shared().await;
    let (status, body) = kc
        .password_token_in(keycloak::REALM, (AGENT, AGENT_SECRET), "alice", "alice123")
        .await
        .unwrap_err();
    assert_eq!(body["error"], "unauthorized_client", "{status} {body}");

    let realm = "hardcoded-act";
    kc.create_demo_realm(realm).await;
    let admin = kc.admin().await;
    let portal = admin.client_uuid(realm, PORTAL).await;
    admin
        .post(
            &format!("{realm}/clients/{portal}/protocol-mappers/models"),
            &json!({
                "name": "act", "protocol": "openid-connect",
                "protocolMapper": "oidc-hardcoded-claim-mapper",
                "config": {
                    "claim.name": "act", "jsonType.label": "JSON",
                    "claim.value": json!({"client_id": AGENT}).to_string(),
                    "access.token.claim": "true",
                },
            }),
        )
        .await;
    let sts = Sts::start().await;
    let config = sidecar_for_realm(&sts, &kc, realm);
    let world = World::start_with(sts, &config).await;
    let alice = kc.user_token_in(realm, "alice").await;
    assert_eq!(
        claims_of(&alice)["act"]["client_id"],
        AGENT,
        "the mapper wrote it"
    );
    refused_in_and_out(
        &world,
        &alice,
        (401, "the token's delegation chain is not its issuer's"),
        "token_act_not_issued",
    )
    .await;
}

/// A token another agent (reviewer-ops) had Keycloak exchange for summarizer-tech names
/// reviewer-ops as its actor (`azp`). Keycloak cannot nest it under summarizer-tech: an
/// exchange would name summarizer-tech alone, so the sidecar refuses to exchange it
/// (403 `chain_not_recordable`), inbound and outbound. Without delegation the app gets
/// it with reviewer-ops as the actor.
#[tokio::test]
async fn a_chain_keycloak_cannot_record_is_refused_not_shortened() {
    let kc = keycloak::shared().await;
    let realm = keycloak::REALM;
    let ops = agent_id("reviewer-ops");
    let alice = kc.user_token("alice").await;
    let via_ops = kc
        .exchange_in(realm, (&ops, "reviewer-ops-demo-secret"), &alice, AGENT)
        .await
        .unwrap();
    assert_eq!(claims_of(&via_ops)["azp"], ops.as_str());

    let sts = Sts::start().await;
    let config = keycloak_sidecar(&sts, &kc);
    let world = World::start_with(sts, &config).await;
    refused_in_and_out(
        &world,
        &via_ops,
        (403, "the token service cannot record this delegation chain"),
        "chain_not_recordable",
    )
    .await;
    drop(world);

    let sts = Sts::start().await;
    let config = ConfigEdit::of(&keycloak_sidecar(&sts, &kc))
        .set("inbound.delegation", "false")
        .set("inbound.token_custody", "false")
        .yaml();
    let world = World::start_with(sts, &config).await;
    let resp = world
        .inbound("/documents")
        .bearer_auth(&via_ops)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    let actors: Value =
        serde_json::from_str(world.app.seen()[0].header("x-actbridge-actors").unwrap()).unwrap();
    assert_eq!(actors, json!([{"client_id": ops}]));
}

/// Each way Keycloak refuses an exchange, as actbridge answers the agent: refusals of the
/// request are the caller's (403), a rejection of actbridge's own client is the
/// operator's (500), and nothing reaches the destination.
#[tokio::test]
async fn keycloaks_refusals_are_mapped_to_the_documented_statuses() {
    let kc = keycloak::shared().await;
    // A realm copy whose agent may not exchange (Standard Token Exchange off).
    let no_exchange = "no-exchange";
    kc.create_demo_realm(no_exchange).await;
    let admin = kc.admin().await;
    let id = admin.client_uuid(no_exchange, AGENT).await;
    let path = format!("{no_exchange}/clients/{id}");
    let mut client = admin.get(&path).await;
    client["attributes"]["standard.token.exchange.enabled"] = json!("false");
    admin.put_json(&path, &client).await;
    let alice = alice_delegated(&kc, keycloak::REALM).await;
    // There the agent cannot have a user's token delegated to it: it presents its own.
    let agents_own = kc.client_token_in(no_exchange, (AGENT, AGENT_SECRET)).await;

    let route = "outbound.routes[name=document-service]";
    let cases = [
        // 400 invalid_client "Audience not found".
        (
            Some((
                format!("{route}.audience"),
                "spiffe://demo.example.com/service/payroll",
            )),
            keycloak::REALM,
            (403, "access_denied"),
            "Audience not found",
        ),
        // 400 invalid_scope "Invalid scopes: payroll.write".
        (
            Some((format!("{route}.scopes"), "[payroll.write]")),
            keycloak::REALM,
            (403, "access_denied"),
            "invalid_scope",
        ),
        // 401 unauthorized_client "Invalid client or Invalid client credentials".
        (
            Some(("outbound.client.auth.secret".to_string(), "not-the-secret")),
            keycloak::REALM,
            (500, "server_error"),
            "rejected actbridge's client",
        ),
        // 400 invalid_request "Standard token exchange is not enabled for the requested
        // client": a sidecar whose client Keycloak does not let exchange.
        (
            None,
            no_exchange,
            (403, "access_denied"),
            "Standard token exchange is not enabled",
        ),
    ];
    let mut failures = Vec::new();
    // (the key changed and its value, the realm, the agent's status and `error`, what
    // the operator's log says)
    for (edit, realm, (status, error), log_says) in cases {
        let sts = Sts::start().await;
        let mut config = ConfigEdit::of(&sidecar_for_realm(&sts, &kc, realm));
        if let Some((key, value)) = &edit {
            config = config.replace(key, value);
        }
        let world = World::start_with(sts, &config.yaml()).await;
        let token = if realm == no_exchange {
            &agents_own
        } else {
            &alice
        };
        let resp = world
            .agent_call("document-service", "/documents", token)
            .await;
        let got_status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or_default();
        let log = world.actbridge.log();
        if (got_status, body["error"].as_str()) != (status, Some(error))
            || world.docs.count() != 0
            || !log.contains(log_says)
        {
            failures.push(format!(
                "{edit:?} in {realm}: {got_status} {body}, {} reached the destination, log without `{log_says}`:\n{log}",
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
    let world = world_in_realm_copy(&kc, realm).await;
    let login = async || kc.user_token_in(realm, "alice").await;
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
    let world = world_in_realm_copy(&kc, realm).await;
    let alice = alice_delegated(&kc, realm).await;
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
                "protocolMappers": [
                    audience("itself", agent),
                    audience("documents", DOCUMENT_SERVICE),
                ],
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
    let config = ConfigEdit::of(&keycloak_sidecar(&sts, &kc))
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
        .await
        .unwrap();
    // Both exchanges authenticate with the key: the inbound delegation, then the
    // outbound exchange of the token held for the app.
    let held = world.held_for("/documents", &alice).await;
    let resp = world
        .agent_call("document-service", "/documents", &held)
        .await;
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    let issued = claims_of(world.docs.seen()[0].bearer());
    assert_eq!(issued["azp"], agent, "{issued}");
    assert_eq!(issued["aud"], DOCUMENT_SERVICE, "{issued}");
    assert_eq!(issued["sub"], claims_of(&alice)["sub"]);
}

/// Keycloak hanging (its JVM stopped: connections accepted, nothing answered) is bounded
/// by `outbound.token_timeout` (1 s here): 503 `sts_unavailable` with `Retry-After`, and
/// nothing reaches the destination. Resumed, the same request goes through with no
/// restart. No other Keycloak test runs meanwhile ([`keycloak::exclusive`]).
#[tokio::test]
async fn keycloak_hanging_is_a_503_within_the_timeout_and_its_return_needs_no_restart() {
    let kc = keycloak::exclusive().await;
    let alice = alice_delegated(&kc, keycloak::REALM).await;
    let sts = Sts::start().await;
    let config = keycloak_sidecar(&sts, &kc);
    let world = World::start_with(sts, &config).await;
    let call = || world.agent_call("document-service", "/documents", &alice);
    {
        let _paused = kc.pause();
        let started = std::time::Instant::now();
        let resp = call().await;
        let waited = started.elapsed();
        assert_eq!(resp.status(), 503, "{}", world.actbridge.log());
        assert!(resp.headers().contains_key("retry-after"));
        assert!(waited < Duration::from_secs(3), "{waited:?}");
        assert!(world.actbridge.log().contains("sts_unavailable"));
        assert_eq!(world.docs.count(), 0);
    }
    let resp = call().await;
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    assert_eq!(world.docs.count(), 1);
}
