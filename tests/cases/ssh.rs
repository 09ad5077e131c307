//! The `ssh_cert` credential backend through the real Envoy and a real sshd: the agent
//! sends its public key to `POST /credentials` and receives a short-lived user
//! certificate whose principals are the grant's.

use std::path::Path;
use std::process::Command;

use crate::support::sshd::{Sshd, keygen};
use crate::support::world::{
    Sts, VEND_HOST, World, assert_credential_name, credential_sidecar_config,
};

fn ssh_sidecar_config(sts: &Sts, sshd: &Sshd) -> String {
    let routes = format!(
        "    - {{name: credentials, host: \"{VEND_HOST}\", action: vend, services: {{ssh: ssh, ssh-short: ssh-short, ssh-here: ssh-here, ssh-elsewhere: ssh-elsewhere}}}}\n"
    );
    let principals = "{engineering: [engineering], finance: [finance], admin: [admin], hr: [hr]}";
    let ca = sshd.ca_key_file.display();
    let credentials = format!(
        "  - {{name: ssh, ssh_cert: {{ca_key_file: {ca}, principals: {principals}}}}}\n\
         \x20 - {{name: ssh-short, ssh_cert: {{ca_key_file: {ca}, principals: {principals}, validity: 2s}}}}\n\
         \x20 - {{name: ssh-here, ssh_cert: {{ca_key_file: {ca}, principals: {principals}, source_addresses: [127.0.0.0/8, \"::1\"]}}}}\n\
         \x20 - {{name: ssh-elsewhere, ssh_cert: {{ca_key_file: {ca}, principals: {principals}, source_addresses: [192.0.2.0/24]}}}}\n"
    );
    credential_sidecar_config(sts, "summarizer-tech", &routes, &credentials)
}

async fn vend(world: &World, token: &str, body: serde_json::Value) -> reqwest::Response {
    world.vend(Some(token), &body.to_string()).await
}

/// Vends a certificate for the key at `key` through `service`, writes it next to the key
/// (`KEY-cert.pub`), and returns the answer.
async fn certify(world: &World, token: &str, service: &str, key: &Path) -> serde_json::Value {
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let r = vend(
        world,
        token,
        serde_json::json!({"target_service": service, "action": "login", "public_key": public}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    std::fs::write(cert_path(key), v["certificate"].as_str().unwrap()).unwrap();
    v
}

/// `ssh-keygen -L` of the certificate next to `key`.
fn certificate_listing(key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(cert_path(key))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cert_path(key: &Path) -> std::path::PathBuf {
    key.with_file_name(format!(
        "{}-cert.pub",
        key.file_name().unwrap().to_string_lossy()
    ))
}

/// A real sshd, summarizer-tech's sidecar vending its certificates, and an agent key
/// pair (in the returned directory).
async fn ssh_world() -> (Sshd, World, tempfile::TempDir, std::path::PathBuf) {
    let sshd = Sshd::start().await;
    let sts = Sts::start().await;
    let config = ssh_sidecar_config(&sts, &sshd);
    let world = World::start_with(sts, &config).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("agent");
    keygen(&key);
    (sshd, world, dir, key)
}

/// alice via summarizer-tech gets a certificate for engineering and finance: it logs in
/// where the account accepts `finance`, is refused where it accepts only `hr`, and
/// carries no forwarding extension. carol via summarizer-tech gets nothing.
#[tokio::test]
async fn an_ssh_certificate_carries_the_grants_principals_and_sshd_enforces_them() {
    let (sshd, world, _dir, key) = ssh_world().await;
    let alice = world.token_for("alice").await;
    let v = certify(&world, &alice, "ssh", &key).await;
    assert_eq!(
        v["principals"],
        serde_json::json!(["engineering", "finance"])
    );
    assert_credential_name(v["key_id"].as_str().unwrap(), "alice-via-summarizer-tech");

    sshd.set_principals(&["finance"]);
    let (ok, stderr) = sshd.login(&key, &cert_path(&key));
    assert!(ok, "login refused: {stderr}\n{}", sshd.log());
    sshd.set_principals(&["hr"]);
    let (ok, _) = sshd.login(&key, &cert_path(&key));
    assert!(!ok, "a certificate without the hr principal logged in");

    let listing = certificate_listing(&key);
    assert!(listing.contains("permit-pty"), "{listing}");
    for forwarding in [
        "permit-port-forwarding",
        "permit-agent-forwarding",
        "permit-X11-forwarding",
    ] {
        assert!(!listing.contains(forwarding), "{listing}");
    }

    let carol = world.token_for("carol").await;
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let r = vend(
        &world,
        &carol,
        serde_json::json!({"target_service": "ssh", "action": "login", "public_key": public}),
    )
    .await;
    assert_eq!(r.status(), 403);
    for body in [
        serde_json::json!({"target_service": "ssh", "action": "login"}),
        serde_json::json!({"target_service": "ssh", "action": "login", "public_key": "ssh-ed25519 AAAA"}),
        serde_json::json!({"target_service": "ssh", "action": "read", "public_key": public}),
    ] {
        assert_eq!(
            vend(&world, &alice, body.clone()).await.status(),
            400,
            "{body}"
        );
    }
}

/// A certificate past its validity is refused by sshd.
#[tokio::test]
async fn an_expired_ssh_certificate_is_refused() {
    let (sshd, world, _dir, key) = ssh_world().await;
    let bob = world.token_for("bob").await;
    certify(&world, &bob, "ssh-short", &key).await;
    sshd.set_principals(&["finance"]);
    let (ok, stderr) = sshd.login(&key, &cert_path(&key));
    assert!(ok, "fresh certificate refused: {stderr}\n{}", sshd.log());
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (ok, _) = sshd.login(&key, &cert_path(&key));
    assert!(!ok, "an expired certificate logged in");
}

/// A certificate with `source_addresses` carries them as its `source-address` critical
/// option: sshd accepts it from loopback when loopback is listed, and refuses it (valid
/// signature, right principal) when only another network is.
#[tokio::test]
async fn a_certificate_logs_in_only_from_its_source_addresses() {
    let (sshd, world, _dir, key) = ssh_world().await;
    let alice = world.token_for("alice").await;
    sshd.set_principals(&["finance"]);
    certify(&world, &alice, "ssh-here", &key).await;
    let listing = certificate_listing(&key);
    assert!(
        listing.contains("source-address 127.0.0.0/8,::1/128"),
        "{listing}"
    );
    let (ok, stderr) = sshd.login(&key, &cert_path(&key));
    assert!(
        ok,
        "refused from a listed address: {stderr}\n{}",
        sshd.log()
    );

    certify(&world, &alice, "ssh-elsewhere", &key).await;
    let (ok, _) = sshd.login(&key, &cert_path(&key));
    assert!(
        !ok,
        "a certificate for 192.0.2.0/24 logged in from loopback"
    );
}
