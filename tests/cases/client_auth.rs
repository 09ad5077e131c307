//! actbridge authenticates to the token service with `private_key_jwt` (RFC 7523).

use crate::support::config_edit::ConfigEdit;
use crate::support::pem;
use crate::support::world::{AGENT, AGENT_SECRET, Sts, World, claims_of, sidecar_config};

#[tokio::test]
async fn private_key_jwt_client_authentication_works_end_to_end() {
    use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let spki: PublicKeyX509Der<'_> = kp.public_key().as_der().unwrap();
    let public_pem = pem("PUBLIC KEY", spki.as_ref());
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("client.pem");
    std::fs::write(&key_file, pem("PRIVATE KEY", pkcs8.as_ref())).unwrap();

    // The demo realm, with summarizer-tech registered by public key instead of a secret.
    let realm =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/demo/realm.yaml")).unwrap();
    let indented: String = public_pem.lines().map(|l| format!("      {l}\n")).collect();
    let realm = realm.replacen(
        &format!("    secret: {AGENT_SECRET}\n"),
        &format!("    public_key_pem: |\n{indented}"),
        1,
    );
    let sts = Sts::start_with_realm(&realm).await;
    let config = ConfigEdit::of(&sidecar_config(&sts))
        .replace(
            "outbound.client.auth",
            &format!(
                "{{method: private_key_jwt, algorithm: ES256, private_key_file: '{}'}}",
                key_file.display()
            ),
        )
        .yaml();
    let world = World::start_with(sts, &config).await;
    // alice's token as reviewer-general delegated it on to this agent, issued directly
    // (the agent's client has no secret now). The sidecar authenticates twice with its
    // key: for its actor token and for the exchange.
    let reviewer = crate::support::world::agent_id("reviewer-general");
    let token = world.sts.sign(serde_json::json!({
        "iss": world.sts.service.issuer(), "sub": "835414c6-012e-4647-8369-a9f46e3b9cad",
        "preferred_username": "alice", "aud": AGENT, "azp": reviewer, "typ": "Bearer",
        "act": {"sub": "service-account-reviewer-general", "client_id": reviewer},
        "scope": "openid documents.read", "iat": actbridge::clock::now_secs(),
        "exp": actbridge::clock::now_secs() + 300,
    }));
    let resp = world
        .agent_call("document-service", "/documents", &token)
        .await;
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    let seen = world.docs.seen();
    let delegated = seen[0].bearer();
    let act = &claims_of(delegated)["act"];
    assert_eq!(act["client_id"], AGENT);
    assert_eq!(act["act"]["client_id"], reviewer);
    let stats = world.sts.service.stats();
    assert_eq!(
        (stats.client_credentials, stats.token_exchange),
        (1, 1),
        "{stats:?}"
    );
}
