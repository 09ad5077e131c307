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

/// A client secret read from a file follows the file: a Kubernetes Secret rotated in
/// place (here: the wrong secret replaced by the right one) is used on the next token
/// request, without a restart.
#[tokio::test]
async fn a_rotated_client_secret_file_is_used_without_a_restart() {
    let sts = Sts::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client-secret");
    std::fs::write(&file, "not-the-secret\n").unwrap();
    let config = sidecar_config(&sts).replace(
        &format!("secret: {}", AGENT_SECRET),
        &format!("secret_file: {}", file.display()),
    );
    assert!(config.contains("secret_file:"), "{config}");
    let world = World::start_with(sts, &config).await;
    let token = world.sts.alice_delegated().await;
    // The token service refuses actbridge's own client: a server error, nothing sent.
    // (500 `client_rejected`: actbridge's own misconfiguration, docs/security.md.)
    assert_eq!(status(&world, &token).await, 500);
    assert_eq!(world.docs.count(), 0);
    // The mounted file changes, as kubelet writes a rotated Secret: swapped in whole.
    let next = dir.path().join("client-secret.new");
    std::fs::write(&next, format!("{}\n", AGENT_SECRET)).unwrap();
    std::fs::rename(&next, &file).unwrap();
    let started = std::time::Instant::now();
    let mut served = false;
    while started.elapsed() < std::time::Duration::from_secs(25) {
        if status(&world, &token).await == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(
        served,
        "the new secret was not used: {}",
        world.actbridge.log()
    );
    let log = world.actbridge.log();
    assert!(
        log.contains("secret file changed") && log.contains("outbound.client.auth.secret_file"),
        "{log}"
    );
    assert!(!log.contains(AGENT_SECRET), "the secret was logged");
}

/// The status of an agent's call to the document service with `token`.
async fn status(world: &World, token: &str) -> u16 {
    world
        .agent_call("document-service", "/documents/DOC-001", token)
        .await
        .status()
        .as_u16()
}
