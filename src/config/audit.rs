//! The `audit` section: where the tamper-evident audit log is written and how, as written
//! ([`RawAudit`]) and validated ([`AuditConfig`]).
//!
//! ```text
//! audit:
//!   path: /var/log/actbridge/audit.log
//!   on_queue_full: refuse
//!   checkpoint:
//!     signing_key_file: /run/secrets/actbridge/audit-ed25519.pem
//! ```

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ed25519_dalek::pkcs8::DecodePrivateKey;
use serde::Deserialize;

use super::ConfigError;

/// `audit`: one JSON line per decision, hash-chained, optionally with signed checkpoints.
/// Without this section nothing is audited (decisions are still logged).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// The active audit file. Rotated files sit next to it as `PATH.<last record's
    /// sequence number, 20 digits>`; the oldest beyond `retain_files` are deleted. A
    /// relative path is taken from the config file's directory. Required.
    pub path: String,
    /// Rotated files kept next to the active one; at each rotation the oldest beyond this
    /// many are deleted (ship them elsewhere first if you keep more). Default `10`; at
    /// least 1. With `max_file_bytes`, this bounds the log's disk use.
    #[serde(default)]
    pub retain_files: Option<usize>,
    /// Rotate the active file once it holds this many bytes. Default `67108864` (64 MiB);
    /// at least 4096.
    #[serde(default)]
    pub max_file_bytes: Option<u64>,
    /// Records waiting to be written, at most. Default `10000`.
    #[serde(default)]
    pub queue_capacity: Option<usize>,
    /// What happens when the queue is full (the disk is slower than the requests):
    /// `refuse` (default: the request is refused with 503 `audit_unavailable`, so nothing
    /// happens that is not audited) or `drop` (the request goes on, its record is lost and
    /// counted).
    #[serde(default)]
    pub on_queue_full: Option<QueueFullPolicy>,
    /// How often written records are flushed and fsynced. A crash loses at most the
    /// records of this interval (and those still queued). Default `1s`; at most `60s`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub flush_interval: Option<Duration>,
    /// Signed checkpoints. Without it the chain shows reordering, removal and changes in
    /// the middle of the log, but not a log rewritten from some record on.
    #[serde(default)]
    pub checkpoint: Option<RawCheckpoint>,
}

/// `audit.checkpoint`: a checkpoint record signed with Ed25519 over the chain so far.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCheckpoint {
    /// PKCS#8 PEM file of the Ed25519 private key (`openssl genpkey -algorithm ed25519`),
    /// read at start (a relative path from the working directory, like every key file).
    /// Required.
    pub signing_key_file: String,
    /// A name for the key, written into each checkpoint. Default: the first 16 hex digits
    /// of the SHA-256 of the public key.
    #[serde(default)]
    pub key_id: Option<String>,
    /// A checkpoint after this many records. Default `1000`.
    #[serde(default)]
    pub every_records: Option<u64>,
    /// And at least this often while records are written. Default `60s`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
}

/// When the audit queue is full (`audit.on_queue_full`: `refuse` or `drop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueFullPolicy {
    #[default]
    /// Refuse the request (fail closed).
    Refuse,
    /// Let the request go on; drop its record and count it.
    Drop,
}

/// The validated `audit` section.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The active file.
    pub path: PathBuf,
    /// Rotation size.
    pub max_file_bytes: u64,
    /// Rotated files kept.
    pub retain_files: usize,
    /// Queue capacity.
    pub queue_capacity: usize,
    /// When the queue is full.
    pub on_queue_full: QueueFullPolicy,
    /// Flush and fsync period.
    pub flush_interval: Duration,
    /// Signed checkpoints, if configured.
    pub checkpoint: Option<CheckpointConfig>,
}

/// The validated `audit.checkpoint`.
#[derive(Clone)]
pub struct CheckpointConfig {
    /// The signing key.
    pub key: ed25519_dalek::SigningKey,
    /// Its name in the records (`None`: derived from the public key by the audit log).
    pub key_id: Option<String>,
    /// Records between checkpoints.
    pub every_records: u64,
    /// Longest time between checkpoints while records are written.
    pub interval: Duration,
}

impl fmt::Debug for CheckpointConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointConfig")
            .field("key", &"<redacted>")
            .field("key_id", &self.key_id)
            .field("every_records", &self.every_records)
            .field("interval", &self.interval)
            .finish()
    }
}

pub(super) fn validate_audit(
    a: &RawAudit,
    env: &super::sources::Sources<'_>,
) -> Result<AuditConfig, ConfigError> {
    if a.path.is_empty() {
        return Err(ConfigError::invalid("audit.path", "must not be empty"));
    }
    let retain_files = a.retain_files.unwrap_or(10);
    if retain_files == 0 {
        return Err(ConfigError::invalid(
            "audit.retain_files",
            "must be at least 1 (the rotated file the chain continues from)",
        ));
    }
    let max_file_bytes = a.max_file_bytes.unwrap_or(64 << 20);
    if max_file_bytes < 4096 {
        return Err(ConfigError::invalid(
            "audit.max_file_bytes",
            "must be at least 4096",
        ));
    }
    let queue_capacity = a.queue_capacity.unwrap_or(10_000);
    if queue_capacity == 0 {
        return Err(ConfigError::invalid(
            "audit.queue_capacity",
            "must be at least 1",
        ));
    }
    let on_queue_full = a.on_queue_full.unwrap_or_default();
    let flush_interval = a.flush_interval.unwrap_or(Duration::from_secs(1));
    if flush_interval.is_zero() || flush_interval > Duration::from_secs(60) {
        return Err(ConfigError::invalid(
            "audit.flush_interval",
            "must be more than 0 and at most 60s",
        ));
    }
    let checkpoint = a
        .checkpoint
        .as_ref()
        .map(|c| validate_checkpoint(c, env))
        .transpose()?;
    Ok(AuditConfig {
        retain_files,
        path: PathBuf::from(&a.path),
        max_file_bytes,
        queue_capacity,
        on_queue_full,
        flush_interval,
        checkpoint,
    })
}

fn validate_checkpoint(
    c: &RawCheckpoint,
    env: &super::sources::Sources<'_>,
) -> Result<CheckpointConfig, ConfigError> {
    const KEY: &str = "audit.checkpoint.signing_key_file";
    let not_a_key = || {
        ConfigError::invalid(
            KEY,
            format_args!(
                "`{}` is not a PKCS#8 PEM Ed25519 private key",
                c.signing_key_file
            ),
        )
    };
    let key = match env.secret_file(KEY, &c.signing_key_file)? {
        Some(pem) => {
            let pem = String::from_utf8(pem).map_err(|_| not_a_key())?;
            ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).map_err(|_| not_a_key())?
        }
        // Offline: a key made for the check, never used.
        None => ed25519_dalek::SigningKey::from_bytes(&rand::random()),
    };
    let key_id = match &c.key_id {
        Some(id) if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) => {
            return Err(ConfigError::invalid(
                "audit.checkpoint.key_id",
                "must be 1 to 128 printable characters",
            ));
        }
        id => id.clone(),
    };
    let every_records = c.every_records.unwrap_or(1000);
    if every_records == 0 {
        return Err(ConfigError::invalid(
            "audit.checkpoint.every_records",
            "must be at least 1",
        ));
    }
    let interval = c.interval.unwrap_or(Duration::from_secs(60));
    if interval.is_zero() {
        return Err(ConfigError::invalid(
            "audit.checkpoint.interval",
            "must be more than 0",
        ));
    }
    Ok(CheckpointConfig {
        key,
        key_id,
        every_records,
        interval,
    })
}
