//! The writer and the verifier together: chains across restarts, rotation and a crash
//! mid-write; the queue policy; checkpoints.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::verify::{ProblemKind, verify};
use super::*;
use crate::config::{AuditConfig, CheckpointConfig, QueueFullPolicy};

fn config(dir: &Path) -> AuditConfig {
    AuditConfig {
        path: dir.join("audit.log"),
        max_file_bytes: 64 << 20,
        retain_files: 10,
        queue_capacity: 100,
        on_queue_full: QueueFullPolicy::Refuse,
        flush_interval: Duration::from_millis(50),
        checkpoint: None,
    }
}

fn key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[42u8; 32])
}

fn record(user: &str) -> DecisionRecord {
    DecisionRecord {
        direction: "inbound".into(),
        method: "GET".into(),
        authority: "app".into(),
        path: "/data".into(),
        user: Some(user.into()),
        decision: "allow".into(),
        ..DecisionRecord::default()
    }
}

async fn write(cfg: &AuditConfig, users: &[&str]) {
    let log = AuditLog::open(cfg).unwrap();
    for u in users {
        log.submit(record(u), SystemTime::now()).unwrap();
    }
    log.shutdown().await;
}

/// Every audit file of `cfg`, in chain order.
fn files(cfg: &AuditConfig) -> Vec<PathBuf> {
    let dir = cfg.path.parent().unwrap();
    let mut rotated: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("audit.log."))
        .collect();
    rotated.sort();
    rotated.push(cfg.path.clone());
    rotated
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn the_chain_continues_across_restarts_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    write(&cfg, &["alice", "bob"]).await;
    write(&cfg, &["carol"]).await;
    let all = lines(&cfg.path);
    let kinds: Vec<&str> = all.iter().map(|v| v["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["start", "decision", "decision", "start", "decision"]
    );
    let seqs: Vec<u64> = all.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(all[0]["prev"], chain::GENESIS);
    assert_eq!(all[4]["user"], "carol");
    let report = verify(&files(&cfg), None).unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(report.records, 5);
}

#[tokio::test]
async fn rotation_keeps_one_chain_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuditConfig {
        max_file_bytes: 4096,
        ..config(dir.path())
    };
    let users: Vec<String> = (0..60).map(|i| format!("user{i}")).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    write(&cfg, &refs).await;
    let all = files(&cfg);
    assert!(all.len() >= 3, "rotated into several files: {all:?}");
    for f in &all[..all.len() - 1] {
        let len = std::fs::metadata(f).unwrap().len();
        assert!((4096..4096 + 1024).contains(&len), "{f:?}: {len} bytes");
    }
    let report = verify(&all, None).unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(report.records, 61);
    // The active file alone verifies too: its first record anchors the chain.
    assert_eq!(verify(&all[all.len() - 1..], None).unwrap().problem, None);
    // Leaving out a file in the middle is a removal.
    let gap: Vec<PathBuf> = vec![all[0].clone(), all[2].clone()];
    let problem = verify(&gap, None).unwrap().problem.unwrap();
    assert!(
        matches!(problem.kind, ProblemKind::Removed { .. }),
        "{problem}"
    );
    // After a restart the chain continues from the rotated file's end.
    write(&cfg, &["late"]).await;
    assert_eq!(verify(&files(&cfg), None).unwrap().problem, None);
}

#[tokio::test]
async fn rotated_files_beyond_retain_files_are_deleted_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuditConfig {
        max_file_bytes: 4096,
        retain_files: 2,
        queue_capacity: 1000,
        ..config(dir.path())
    };
    let users: Vec<String> = (0..200).map(|i| format!("user{i}")).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    write(&cfg, &refs).await;
    let all = files(&cfg);
    // Two rotated files and the active one, whatever was written: the disk use is bounded.
    assert_eq!(all.len(), 3, "{all:?}");
    // What is kept still verifies as one chain (it starts mid-chain, at the oldest kept).
    let report = verify(&all, None).unwrap();
    assert_eq!(report.problem, None);
    assert!(
        report.records < 200,
        "the oldest records went with their files"
    );
}

#[tokio::test]
async fn a_partial_last_line_is_cut_at_start_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    write(&cfg, &["alice"]).await;
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&cfg.path)
        .unwrap();
    f.write_all(b"{\"seq\":3,\"time\":\"2026-").unwrap();
    drop(f);
    write(&cfg, &["bob"]).await;
    let all = lines(&cfg.path);
    assert_eq!(all[2]["kind"], "start");
    assert_eq!(all[2]["recovered_bytes"], 22);
    assert_eq!(verify(&files(&cfg), None).unwrap().problem, None);
}

#[tokio::test]
async fn a_log_whose_last_record_is_garbage_is_not_continued() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    std::fs::write(&cfg.path, "not an audit record\n").unwrap();
    let err = AuditLog::open(&cfg).err().expect("refused");
    assert!(err.to_string().contains("cannot be continued"), "{err}");
}

#[tokio::test]
async fn checkpoints_are_signed_and_a_consistent_rewrite_is_caught_by_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuditConfig {
        checkpoint: Some(CheckpointConfig {
            key: key(),
            key_id: Some("test".into()),
            every_records: 2,
            interval: Duration::from_secs(60),
        }),
        ..config(dir.path())
    };
    write(&cfg, &["alice", "bob", "carol"]).await;
    let all = lines(&cfg.path);
    let kinds: Vec<&str> = all.iter().map(|v| v["kind"].as_str().unwrap()).collect();
    // start counts toward the first checkpoint; a last one is signed at shutdown.
    assert_eq!(
        kinds,
        [
            "start",
            "decision",
            "checkpoint",
            "decision",
            "decision",
            "checkpoint"
        ]
    );
    let public = key().verifying_key();
    let report = verify(&files(&cfg), Some(&public)).unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(report.checkpoints_verified, 2);
    assert_eq!(report.unsigned_tail, 0);
    let other = ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]).verifying_key();
    let problem = verify(&files(&cfg), Some(&other)).unwrap().problem.unwrap();
    assert_eq!(problem.kind, ProblemKind::BadSignature { seq: 3 });

    // Rewrite bob's record and re-seal everything after it: the chain alone is fooled,
    // the next checkpoint's signature is not.
    let text = std::fs::read_to_string(&cfg.path).unwrap();
    let mut prev = String::new();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v.as_object_mut().unwrap().remove("hash");
        if i == 3 {
            v["user"] = "mallory".into();
        }
        if i > 3 {
            v["prev"] = prev.clone().into();
        }
        let (sealed, hash) = chain::seal(&serde_json::to_vec(&v).unwrap());
        if i >= 3 {
            out.push_str(std::str::from_utf8(&sealed).unwrap());
        } else {
            out.push_str(line);
            prev = chain::claimed_hash(line).unwrap().to_string();
            out.push('\n');
            continue;
        }
        out.push('\n');
        prev = hash;
    }
    std::fs::write(&cfg.path, out).unwrap();
    assert_eq!(verify(&files(&cfg), None).unwrap().problem, None);
    let problem = verify(&files(&cfg), Some(&public))
        .unwrap()
        .problem
        .unwrap();
    assert_eq!(problem.kind, ProblemKind::BadSignature { seq: 6 });
}

#[tokio::test]
async fn a_record_that_cannot_be_queued_refuses_or_is_dropped_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let refuse = config(dir.path());
    let log = AuditLog::open(&refuse).unwrap();
    log.shutdown().await;
    assert_eq!(
        log.submit(record("alice"), SystemTime::now()),
        Err(AuditRefused::Unavailable)
    );
    let dir = tempfile::tempdir().unwrap();
    let drop = AuditConfig {
        on_queue_full: QueueFullPolicy::Drop,
        ..config(dir.path())
    };
    let log = AuditLog::open(&drop).unwrap();
    log.shutdown().await;
    assert_eq!(log.submit(record("alice"), SystemTime::now()), Ok(()));
    assert_eq!(log.stats().dropped, 1);
}

#[tokio::test]
async fn a_log_that_cannot_be_written_stops_the_start() {
    let cfg = AuditConfig {
        path: PathBuf::from("/proc/actbridge-cannot-write-here/audit.log"),
        ..config(Path::new("/tmp"))
    };
    assert!(matches!(AuditLog::open(&cfg), Err(AuditError::Io { .. })));
}
