//! Client authentication with a SPIFFE JWT-SVID (no client secret anywhere): actbridge
//! fetches a JWT-SVID from the tests' Workload API (audience = the token service's
//! issuer) and sends it as the RFC 7523 client assertion; the embedded token service
//! accepts it for a client registered with `jwt_svid: true` when the signature checks
//! against the trust domain's JWT bundle (a JWKS file here), and refuses forged,
//! misaddressed and expired ones with `invalid_client`.

use std::path::Path;
use std::time::Duration;

use crate::support::config_edit::ConfigEdit;
use crate::support::workload_api::{TestJwtKey, WorkloadApi};
use crate::support::world::{
    AGENT, AGENT_SECRET, DOCUMENT_SERVICE, Sts, World, claims_of, sidecar_config,
};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The demo realm with summarizer-tech's client registered for JWT-SVIDs, its secret
/// removed.
fn with_jwt_svid_client(realm: &str) -> ConfigEdit {
    const CLIENT: &str = "clients[client_id=spiffe://demo.example.com/agent/summarizer-tech]";
    ConfigEdit::of(realm)
        .remove(&format!("{CLIENT}.secret"))
        .set(&format!("{CLIENT}.jwt_svid"), "true")
}

/// The demo realm with summarizer-tech registered for JWT-SVIDs (its secret removed) and
/// the trust domain's JWT bundle at `bundle`.
fn realm_with_jwt_svid(bundle: &Path) -> String {
    let demo =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/realm.yaml"))
            .unwrap();
    with_jwt_svid_client(&demo)
        .set(
            "spiffe",
            &format!(
                "{{trust_domain: demo.example.com, jwt_bundle: '{}'}}",
                bundle.display()
            ),
        )
        .yaml()
}

/// The token service with that realm; the bundle holds `key`.
async fn sts_trusting(key: &TestJwtKey, dir: &Path) -> Sts {
    let bundle = dir.join("jwt-bundle.json");
    std::fs::write(&bundle, key.jwks()).unwrap();
    Sts::start_with_realm(&realm_with_jwt_svid(&bundle)).await
}

/// One token request authenticated by `assertion` as summarizer-tech.
async fn token_request(
    sts: &Sts,
    assertion: &str,
    grant: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut form = vec![
        ("client_id", AGENT),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(grant);
    let resp = reqwest::Client::new()
        .post(sts.service.token_endpoint())
        .form(&form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

const CLIENT_CREDENTIALS: &[(&str, &str)] = &[("grant_type", "client_credentials")];

/// alice's token delegated to summarizer-tech, the agent authenticating with JWT-SVIDs
/// from `key` (as its Workload API would hand them out).
async fn alice_delegated(sts: &Sts, key: &TestJwtKey) -> String {
    let issuer = sts.service.issuer();
    let svid = || key.svid(AGENT, &[&issuer], 60);
    let own = sts.alice().await;
    let (s, actor) = token_request(sts, &svid(), CLIENT_CREDENTIALS).await;
    assert_eq!(s, 200, "{actor}");
    let (s, delegated) = token_request(
        sts,
        &svid(),
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", &own),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("actor_token", actor["access_token"].as_str().unwrap()),
            (
                "actor_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("audience", AGENT),
        ],
    )
    .await;
    assert_eq!(s, 200, "{delegated}");
    delegated["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn actbridge_authenticates_to_the_token_service_with_a_jwt_svid() {
    let mut api =
        WorkloadApi::start(AGENT, Duration::from_secs(120), Duration::from_secs(120)).await;
    let dir = tempfile::tempdir().unwrap();
    let sts = sts_trusting(&api.jwt_key, dir.path()).await;
    let config = ConfigEdit::of(&sidecar_config(&sts))
        .replace("outbound.client.auth", "{method: jwt_svid}")
        .set("spiffe", &format!("{{endpoint: '{}'}}", api.endpoint()))
        .yaml();
    let token = alice_delegated(&sts, &api.jwt_key).await;
    let world = World::start_with(sts, &config).await;

    let r = world
        .agent_call("document-service", "/documents/DOC-001", &token)
        .await;
    assert_eq!(r.status(), 200, "{}", world.actbridge.log());
    let seen = world.docs.seen();
    let claims = claims_of(seen[0].bearer());
    assert_eq!(claims["aud"], DOCUMENT_SERVICE);
    assert_eq!(claims["act"]["client_id"], AGENT);
    assert!(
        api.jwt_issued() >= 1,
        "the assertion came from the Workload API"
    );
    // The JWT-SVID (every one starts with this key's header) never reaches the log.
    let svid_header = api.jwt_key.svid(AGENT, &["x"], 1);
    let svid_header = svid_header.split('.').next().unwrap();
    assert!(!world.actbridge.log().contains(svid_header));

    // The Workload API away: no assertion, so no exchange — refused as an outage (503,
    // Retry-After), nothing sent on.
    api.stop();
    let fresh = alice_delegated(&world.sts, &api.jwt_key).await;
    let r = world
        .agent_call("document-service", "/documents/DOC-002", &fresh)
        .await;
    assert_eq!(r.status(), 503, "{}", world.actbridge.log());
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(world.docs.count(), 1);
    assert!(
        world
            .actbridge
            .log()
            .contains("no JWT-SVID from the SPIFFE Workload API"),
        "the operator is told why:\n{}",
        world.actbridge.log()
    );
}

#[tokio::test]
async fn the_token_service_refuses_forged_misaddressed_and_expired_jwt_svids() {
    let key = TestJwtKey::new("test-jwt-key-1");
    let dir = tempfile::tempdir().unwrap();
    let sts = sts_trusting(&key, dir.path()).await;
    let issuer = sts.service.issuer();
    let endpoint = sts.service.token_endpoint();

    // Accepted: audience = the issuer, or the token endpoint.
    for aud in [&issuer, &endpoint] {
        let (s, body) = token_request(&sts, &key.svid(AGENT, &[aud], 60), CLIENT_CREDENTIALS).await;
        assert_eq!(s, 200, "{aud}: {body}");
        assert_eq!(
            claims_of(body["access_token"].as_str().unwrap())["azp"],
            AGENT
        );
    }

    let refused = |(s, body): (u16, serde_json::Value), what: &str| {
        assert!(s == 400 || s == 401, "{what}: {s} {body}");
        assert_eq!(body["error"], "invalid_client", "{what}: {body}");
    };
    // Signed by another key under the same kid.
    let forger = TestJwtKey::new("test-jwt-key-1");
    refused(
        token_request(
            &sts,
            &forger.svid(AGENT, &[&issuer], 60),
            CLIENT_CREDENTIALS,
        )
        .await,
        "forged",
    );
    // A kid the bundle does not hold.
    let stranger = TestJwtKey::new("other-key");
    refused(
        token_request(
            &sts,
            &stranger.svid(AGENT, &[&issuer], 60),
            CLIENT_CREDENTIALS,
        )
        .await,
        "unknown kid",
    );
    // For another audience.
    refused(
        token_request(
            &sts,
            &key.svid(AGENT, &["https://elsewhere.example/realms/x"], 60),
            CLIENT_CREDENTIALS,
        )
        .await,
        "wrong audience",
    );
    // Expired.
    refused(
        token_request(&sts, &key.svid(AGENT, &[&issuer], -10), CLIENT_CREDENTIALS).await,
        "expired",
    );
    // The SPIFFE ID of another workload, unregistered.
    let nobody = "spiffe://demo.example.com/agent/nobody";
    let resp = reqwest::Client::new()
        .post(&endpoint)
        .form(&[
            ("client_id", nobody),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &key.svid(nobody, &[&issuer], 60)),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    refused(
        (resp.status().as_u16(), resp.json().await.unwrap()),
        "unregistered",
    );
    // A jwt_svid client cannot fall back to a secret.
    let resp = reqwest::Client::new()
        .post(&endpoint)
        .form(&[
            ("client_id", AGENT),
            ("client_secret", AGENT_SECRET),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    refused(
        (resp.status().as_u16(), resp.json().await.unwrap()),
        "secret",
    );
}

#[test]
fn jwt_svid_configuration_errors_name_the_key() {
    // actbridge: jwt_svid without the spiffe section.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("actbridge.yaml");
    std::fs::write(
        &config,
        "listen: {ext_proc: 'tcp://127.0.0.1:9001'}\n\
         issuers: [{issuer: 'http://127.0.0.1:1/realms/demo', audiences: [a]}]\n\
         outbound:\n  token_endpoint: http://127.0.0.1:1/realms/demo/protocol/openid-connect/token\n  \
         client: {client_id: 'spiffe://demo.example.com/agent/a', auth: {method: jwt_svid}}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .arg("check-config")
        .arg(&config)
        .env_remove("SPIFFE_ENDPOINT_SOCKET")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("outbound.client.auth.method"), "{stderr}");
    assert!(stderr.contains("spiffe"), "{stderr}");

    // The token service: a jwt_svid client without the realm's spiffe section, and one
    // whose id is outside the trust domain.
    let demo =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/realm.yaml"))
            .unwrap();
    let demo = with_jwt_svid_client(&demo).yaml();
    let err = actbridge_sts::Realm::from_yaml_str(&demo)
        .unwrap_err()
        .to_string();
    assert!(err.contains("jwt_svid"), "{err}");
    let bundle = dir.path().join("b.json");
    std::fs::write(&bundle, TestJwtKey::new("k").jwks()).unwrap();
    let other_domain = demo
        + &format!(
            "spiffe:\n  trust_domain: other.example.com\n  jwt_bundle: {}\n",
            bundle.display()
        );
    let err = actbridge_sts::Realm::from_yaml_str(&other_domain)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("client_id") && err.contains("spiffe://other.example.com/"),
        "{err}"
    );
}

#[tokio::test]
async fn the_token_service_can_take_the_jwt_bundle_from_the_workload_api() {
    // The token service next to a SPIRE agent: `jwt_bundle` names the Workload API, whose
    // FetchJWTBundles (read through the spiffe crate) gives the trust domain's keys.
    let api = WorkloadApi::start(AGENT, Duration::from_secs(60), Duration::from_secs(60)).await;
    let demo =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/realm.yaml"))
            .unwrap();
    let demo = with_jwt_svid_client(&demo).yaml();
    let realm = demo
        + &format!(
            "spiffe:\n  trust_domain: demo.example.com\n  jwt_bundle: {}\n",
            api.endpoint()
        );
    let sts = Sts::start_with_realm(&realm).await;
    let issuer = sts.service.issuer();
    let (s, body) = token_request(
        &sts,
        &api.jwt_key.svid(AGENT, &[&issuer], 60),
        CLIENT_CREDENTIALS,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let forger = TestJwtKey::new(&api.jwt_key.kid);
    let (s, body) = token_request(
        &sts,
        &forger.svid(AGENT, &[&issuer], 60),
        CLIENT_CREDENTIALS,
    )
    .await;
    assert_eq!(body["error"], "invalid_client", "{s} {body}");
}
