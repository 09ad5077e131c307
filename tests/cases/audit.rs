//! The audit log through the real Envoy: a scripted run leaves exactly the expected
//! decisions, chained and signed; `actbridge audit verify` accepts it, and finds a
//! flipped byte, a deleted line, two swapped lines and an inserted line at the right
//! record.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use serde_json::{Value, json};

use crate::support::world::{AGENT, AGENT_SECRET, DOCUMENT_SERVICE, Sts, World, sidecar_config};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `actbridge audit verify` on `files`: (exit code, stdout).
fn verify(files: &[&Path], public_key: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .args(["audit", "verify", "--public-key"])
        .arg(public_key)
        .args(files)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Writes `lines` (each without newline) to `path`.
fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test]
// Long by design: one audit log written, verified, then tampered with step by step.
async fn every_decision_is_audited_chained_and_signed_and_tampering_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let key_file = dir.path().join("audit-key.pem");
    std::fs::write(
        &key_file,
        key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    let public_file = dir.path().join("audit-key.pub.pem");
    std::fs::write(
        &public_file,
        key.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    )
    .unwrap();
    let log = dir.path().join("audit.log");

    let sts = Sts::start().await;
    let config = sidecar_config(&sts)
        + &format!(
            "audit:\n  path: {}\n  checkpoint:\n    signing_key_file: {}\n    key_id: test-key\n",
            log.display(),
            key_file.display()
        );
    let mut world = World::start_with(sts, &config).await;

    // The scripted run.
    let inbound_token = world.sts.sign(json!({
        "iss": world.sts.service.issuer(),
        "sub": "7f3e2a1c-0000-4000-8000-000000000001",
        "preferred_username": "alice",
        "aud": AGENT,
        "exp": now() + 300,
        "iat": now(),
    }));
    let r = world
        .inbound("/data?access_token=in-the-query")
        .bearer_auth(&inbound_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = world.inbound("/data").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let delegated = world.sts.alice_delegated().await;
    let r = world
        .outbound("document-service", "/documents/DOC-001")
        .bearer_auth(&delegated)
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = world.agent_call("blocked.example", "/", &delegated).await;
    assert_eq!(r.status(), 403);
    let r = world.inbound("/healthz").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(world.actbridge.terminate(), "{}", world.actbridge.log());

    // Exactly the expected records.
    let text = std::fs::read_to_string(&log).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "start",
            "decision",
            "decision",
            "decision",
            "decision",
            "decision",
            "checkpoint"
        ],
        "{text}"
    );
    let d = &records[1..6];
    for (r, (direction, decision, route)) in d.iter().zip([
        ("inbound", "allow", "inbound"),
        ("inbound", "deny", "inbound"),
        ("outbound", "allow", "document-service"),
        ("outbound", "deny", "blocked"),
        ("inbound", "allow", "bypass"),
    ]) {
        assert_eq!(r["direction"], direction, "{r}");
        assert_eq!(r["decision"], decision, "{r}");
        assert!(
            r["request_id"].as_str().is_some_and(|id| !id.is_empty()),
            "Envoy's request id is recorded: {r}"
        );
        assert_eq!(r["route"], route, "{r}");
    }
    assert_eq!(d[0]["user"], "alice");
    assert_eq!(d[0]["path"], "/data", "never the query string");
    assert!(d[0]["token"].as_str().is_some_and(|t| t.len() == 16));
    assert_eq!(d[1]["status"], 401);
    assert_eq!(d[1]["reason"], "token_missing");
    assert_eq!(d[2]["user"], "alice");
    assert_eq!(d[2]["actors"], json!([AGENT]));
    assert_eq!(d[2]["trace_id"], TRACE_ID);
    assert_eq!(d[2]["exchange"]["audience"], DOCUMENT_SERVICE);
    assert!(d[2]["exchange"]["expires_at"].as_u64().unwrap() > now());
    assert_eq!(d[3]["status"], 403);
    assert_eq!(d[3]["reason"], "route_denied");
    assert_eq!(records[6]["key_id"], "test-key");
    for secret in [
        inbound_token.as_str(),
        delegated.as_str(),
        AGENT_SECRET,
        "in-the-query",
    ] {
        assert!(
            !text.contains(secret),
            "a token or secret reached the audit log"
        );
    }

    // It verifies, signatures included.
    let (code, out) = verify(&[&log], &public_file);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok: 7 records (sequence 1 to 7)"), "{out}");
    assert!(out.contains("1 signed and verified"), "{out}");

    // Each kind of tampering is found at the right record.
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let copy = dir.path().join("tampered.log");
    let mut flipped = lines.clone();
    flipped[2] = flipped[2].replacen("\"deny\"", "\"allow\"", 1);
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "a flipped byte",
            flipped,
            "tampered.log:3: record 3 was changed",
        ),
        (
            "a deleted line",
            [&lines[..2], &lines[3..]].concat(),
            "tampered.log:3: record 3 was removed",
        ),
        (
            "two swapped lines",
            [
                &lines[..2],
                &[lines[3].clone(), lines[2].clone()],
                &lines[4..],
            ]
            .concat(),
            "tampered.log:3: records were reordered (record 4 stands where record 3 belongs)",
        ),
        (
            "an inserted line",
            [&lines[..3], &lines[2..3], &lines[3..]].concat(),
            "tampered.log:4: a record was inserted (sequence number 3 appears a second time)",
        ),
    ];
    for (what, tampered, expected) in cases {
        write_lines(&copy, &tampered);
        let (code, out) = verify(&[&copy], &public_file);
        assert_eq!(code, 1, "{what} went unnoticed: {out}");
        assert!(out.contains(expected), "{what}: {out}");
    }
    // For scripts (`-o json`): the same verdicts, one document.
    let json = |file: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
            .args(["audit", "verify", "-o", "json", "--public-key"])
            .arg(&public_file)
            .arg(file)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code().unwrap(), v)
    };
    let (code, v) = json(&log);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["verdict"], "ok");
    assert_eq!(v["records"], 7);
    assert_eq!(v["checkpoints_verified"], 1);
    let (code, v) = json(&copy);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["verdict"], "tampered");
    assert!(v["problem"].as_str().unwrap().contains("inserted"), "{v}");
    // A different key does not verify the checkpoint.
    let other = dir.path().join("other.pub.pem");
    std::fs::write(
        &other,
        ed25519_dalek::SigningKey::from_bytes(&[1u8; 32])
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    )
    .unwrap();
    let (code, out) = verify(&[&log], &other);
    assert_eq!(code, 1);
    assert!(out.contains("checkpoint 7 has a bad signature"), "{out}");

    // A cut at either end keeps a valid chain; the strict checks find it (issue 20 §6).
    let strict = |file: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
            .args([
                "audit",
                "verify",
                "--from-start",
                "--signed-end",
                "--public-key",
            ])
            .arg(&public_file)
            .arg(file)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = strict(&log);
    assert_eq!(code, 0, "the whole log, cleanly stopped: {out}");
    for (what, cut, expected) in [
        (
            "the first records cut",
            lines[2..].to_vec(),
            "does not start at record 1",
        ),
        (
            "the last records cut",
            lines[..5].to_vec(),
            "does not end with a signed checkpoint",
        ),
    ] {
        write_lines(&copy, &cut);
        let (code, out) = verify(&[&copy], &public_file);
        assert_eq!(code, 0, "{what}: the chain alone still verifies: {out}");
        assert!(
            out.contains("start:") || out.contains("end:"),
            "{what}: not said: {out}"
        );
        let (code, out) = strict(&copy);
        assert_eq!(
            code, 1,
            "{what} went unnoticed with --from-start --signed-end: {out}"
        );
        assert!(out.contains(expected), "{what}: {out}");
    }
}

#[tokio::test]
async fn a_sidecar_that_cannot_audit_does_not_start() {
    let sts = Sts::start().await;
    let config =
        sidecar_config(&sts) + "audit:\n  path: /proc/actbridge-cannot-write-here/audit.log\n";
    let mut a = crate::support::actbridge::Actbridge::spawn(&config);
    let status = a.wait();
    assert!(!status.success());
    assert!(a.log().contains("audit log"), "{}", a.log());
}

/// A tmpfs of `kib` KiB mounted on `dir`, unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, kib: u32) -> SmallDisk {
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a tmpfs (the tests run as root)");
        SmallDisk(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A full disk is an operator alert, and no request goes on unaudited (issue 20 §4):
/// once the audit writer cannot write, every request is refused with 503
/// `audit_unavailable` (`on_queue_full: refuse`), `/metrics` says
/// `actbridge_audit_writer_failed 1`, and the error is logged.
#[tokio::test]
async fn a_full_disk_refuses_every_request_and_raises_the_writer_failed_alert() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let _disk = SmallDisk::mount(&disk, 64);
    let sts = Sts::start().await;
    let config = sidecar_config(&sts)
        + &format!(
            "audit:\n  path: {}\n  flush_interval: 50ms\n",
            disk.join("audit.log").display()
        );
    let world = World::start_with(sts, &config).await;
    let token = world.sts.alice().await;
    let metrics_url = format!("http://127.0.0.1:{}/metrics", world.actbridge.admin_port);
    let failed = || async {
        let text = world
            .http
            .get(&metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines().any(|l| l == "actbridge_audit_writer_failed 1")
    };
    assert!(
        !failed().await,
        "the writer failed before the disk was full"
    );
    // Each allowed request writes a record; a long path fills 64 KiB soon.
    let path = format!("/data/{}", "x".repeat(400));
    let mut refused_at = None;
    for i in 0..2000 {
        let r = world
            .inbound(&path)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "temporarily_unavailable");
            refused_at = Some(i);
            break;
        }
        assert_eq!(r.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let refused_at = refused_at.expect("the disk never filled");
    let seen = world.app.count();
    for _ in 0..5 {
        let r = world
            .inbound("/data")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "a request went on unaudited");
    }
    assert_eq!(
        world.app.count(),
        seen,
        "the app got a request nobody could audit"
    );
    assert!(
        failed().await,
        "no alert: actbridge_audit_writer_failed is not 1"
    );
    assert!(
        world.actbridge.log().contains("audit log failed"),
        "{}",
        world.actbridge.log()
    );
    assert!(refused_at > 10, "refused from the start ({refused_at})");
}

/// A request refused before it can be read — its path has two readings — is audited
/// and counted like every other refusal, with what is known: its direction.
#[tokio::test]
async fn an_unreadable_request_is_audited_and_counted_like_every_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let sts = Sts::start().await;
    let config = sidecar_config(&sts)
        + &format!(
            "audit:\n  path: {}\n  flush_interval: 50ms\n",
            log.display()
        );
    let world = World::start_with(sts, &config).await;
    let r = world.inbound("/data;jsessionid=1").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(world.app.count(), 0, "the app was reached");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let record = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let found = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|r| r["kind"] == "decision");
        if let Some(r) = found {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "not audited: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(record["direction"], "inbound", "{record}");
    assert_eq!(record["decision"], "deny", "{record}");
    assert_eq!(record["status"], 400, "{record}");
    assert_eq!(record["reason"], "path_ambiguous", "{record}");
    let metrics = world
        .http
        .get(format!(
            "http://127.0.0.1:{}/metrics",
            world.actbridge.admin_port
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("actbridge_refusals_total{")
                && l.contains("reason=\"path_ambiguous\"")
                && l.contains("direction=\"inbound\"")),
        "{metrics}"
    );
}
