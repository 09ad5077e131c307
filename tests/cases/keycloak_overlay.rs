//! The keycloak overlay's artefacts against the real Keycloak: its realm
//! (manifests/overlays/keycloak/realm.json) imported as it ships, summarizer-tech
//! registered by deploy/keycloak/register-agent.sh (twice: it is idempotent), and the
//! overlay's own actbridge.yaml, pointed at them, through the real Envoy.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::config_edit::ConfigEdit;
use crate::support::keycloak::{self, ADMIN, ADMIN_PASSWORD, Keycloak};
use crate::support::world::{AGENT, DOCUMENT_SERVICE, PORTAL, Sts, World, claims_of, policies_dir};

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn shipped_realm() -> Value {
    let text = std::fs::read_to_string(repo("manifests/overlays/keycloak/realm.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Runs register-agent.sh for summarizer-tech in `realm`, its secret written to
/// `secret_file`; the script's stderr, or the test fails with it.
fn register_summarizer_tech(kc: &Keycloak, realm: &str, secret_file: &Path) -> String {
    let out = Command::new(repo("deploy/keycloak/register-agent.sh"))
        .args(["--url", &kc.url, "--realm", realm, "--agent", AGENT])
        .args(["--audience", DOCUMENT_SERVICE, "--scope", "documents.read"])
        .args(["--front-end", PORTAL, "--secret-file"])
        .arg(secret_file)
        .env("KEYCLOAK_ADMIN_USER", ADMIN)
        .env("KEYCLOAK_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "register-agent.sh failed:\n{stderr}");
    assert!(!stderr.contains(ADMIN_PASSWORD), "the password was printed");
    stderr
}

/// The overlay's actbridge.yaml on this machine: loopback listeners for the harness,
/// Keycloak's realm, the secret the script wrote, the repository's policies.
fn overlay_config(kc: &Keycloak, realm: &str, secret_file: &Path) -> String {
    let shipped =
        std::fs::read_to_string(repo("manifests/overlays/keycloak/actbridge.yaml")).unwrap();
    ConfigEdit::of(&shipped)
        .replace("listen.ext_proc", "tcp://127.0.0.1:{EXT_PROC}")
        .replace("listen.admin", "127.0.0.1:{ADMIN}")
        .replace("issuers[0].issuer", &kc.issuer_of(realm))
        .replace("outbound.token_endpoint", &kc.token_endpoint_of(realm))
        .replace(
            "outbound.client.auth.secret_file",
            &secret_file.display().to_string(),
        )
        .replace("policy.dir", &policies_dir().display().to_string())
        .yaml()
}

/// The shipped realm holds the demo world of demo/realm.yaml: the same users (ids,
/// groups, passwords), the front end with its secret, the document service, and neither
/// agents (the script registers them) nor `clientScopes` (which would replace Keycloak's
/// built-in ones: tokens without `sub`).
#[test]
fn the_overlay_realm_holds_the_demo_world() {
    let realm = shipped_realm();
    let demo = actbridge_sts::Realm::from_yaml_file(&repo("demo/realm.yaml")).unwrap();
    let demo = demo.keycloak_representation();
    let users = |r: &Value| -> Vec<(String, String, String, String)> {
        let mut u: Vec<_> = r["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                let mut groups: Vec<String> = serde_json::from_value(u["groups"].clone()).unwrap();
                groups.sort();
                (
                    u["username"].as_str().unwrap().to_string(),
                    u["id"].as_str().unwrap().to_string(),
                    groups.join(","),
                    u["credentials"][0]["value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        u.sort();
        u
    };
    assert_eq!(users(&realm), users(&demo));
    let clients: Vec<&str> = realm["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clientId"].as_str().unwrap())
        .collect();
    assert_eq!(clients.len(), 2, "{clients:?}");
    assert!(clients.contains(&PORTAL) && clients.contains(&DOCUMENT_SERVICE));
    let portal = realm["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clientId"] == PORTAL)
        .unwrap();
    assert_eq!(portal["secret"], crate::support::world::PORTAL_SECRET);
    assert!(realm.get("clientScopes").is_none());
    assert!(realm.get("defaultDefaultClientScopes").is_none());
}

#[tokio::test]
async fn the_overlay_realm_and_the_registration_script_serve_the_overlays_sidecar() {
    let kc = keycloak::shared().await;
    let realm = shipped_realm();
    let name = realm["realm"].as_str().unwrap().to_string();
    kc.admin().await.post("", &realm).await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("client-secret");
    register_summarizer_tech(&kc, &name, &secret_file);
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&secret_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Again: the same client, the same secret.
    register_summarizer_tech(&kc, &name, &secret_file);
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), secret);
    let admin = kc.admin().await;
    let clients = admin
        .get(&format!("{name}/clients?clientId={}", urlencode(AGENT)))
        .await;
    assert_eq!(clients.as_array().unwrap().len(), 1);
    assert_eq!(clients[0]["directAccessGrantsEnabled"], false);
    assert_eq!(clients[0]["standardFlowEnabled"], false);
    let audience_mappers = clients[0]["protocolMappers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["protocolMapper"] == "oidc-audience-mapper")
        .count();
    assert_eq!(
        audience_mappers, 2,
        "itself and the document service, once each"
    );

    let sts = Sts::start().await;
    let config = overlay_config(&kc, &name, &secret_file);
    let world = World::start_with(sts, &config).await;
    let alice = kc.user_token_in(&name, "alice").await;
    let held = world.held_for("/summaries", &alice).await;
    assert!(held.starts_with("actbridge~"), "{held}");
    let resp = world
        .agent_call("document-service", "/documents/DOC-001", &held)
        .await;
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    let issued = claims_of(world.docs.seen()[0].bearer());
    assert_eq!(issued["sub"], claims_of(&alice)["sub"], "{issued}");
    assert_eq!(issued["aud"], DOCUMENT_SERVICE, "{issued}");
    assert_eq!(issued["azp"], AGENT, "{issued}");
    assert!(
        issued["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "documents.read"),
        "{issued}"
    );
    let mut groups: Vec<&str> = issued["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    groups.sort_unstable();
    assert_eq!(groups, ["engineering", "finance"], "{issued}");

    // carol (hr) through summarizer-tech (engineering, finance): an empty grant, refused
    // before Keycloak is asked to delegate.
    let carol = kc.user_token_in(&name, "carol").await;
    let resp = world
        .inbound("/summaries")
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "{}", world.actbridge.log());
    assert_eq!(world.app.count(), 1);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
