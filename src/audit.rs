//! The tamper-evident audit log: one JSON line per decision, hash-chained, with optional
//! Ed25519-signed checkpoints, rotated by size, verified by `actbridge audit verify`.
//!
//! - [`record`]: what a record says ([`DecisionRecord`]).
//! - [`chain`]: sealing and linking records.
//! - [`checkpoint`]: signed checkpoints.
//! - `writer`: the thread that owns the file (numbering, fsync, rotation, recovery).
//! - [`verify`]: checking a log.
//!
//! Writing is off the request path: [`AuditLog::submit`] puts the record on a bounded
//! queue and returns. When the queue is full (or the writer has failed), the configured
//! policy applies: refuse the request (the default) or drop the record and count it.

pub mod chain;
pub mod checkpoint;
pub mod record;
pub mod verify;
mod writer;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

pub use checkpoint::key_id_of;
pub use record::{
    AdminRecord, ApprovalRecord, CredentialFact, DecisionRecord, Event, ExchangeFact,
};

use crate::config::{AuditConfig, QueueFullPolicy};
use writer::{Msg, Writer};

/// Why the audit log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file or its directory could not be opened or written.
    #[error("audit log {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The last record on disk cannot be read, so the chain cannot be continued.
    #[error(
        "audit log {path}: its last record is not a sealed audit record; the chain cannot be continued (move the file aside to start a new chain, and keep it as evidence)"
    )]
    Tail {
        /// The file.
        path: String,
    },
}

/// Why a record was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuditRefused {
    /// The queue is full, or the writer has stopped or failed.
    #[error("the audit log cannot take the record (queue full or writer failed)")]
    Unavailable,
}

/// Counters the writer and the submitters share.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Records on the queue.
    queued: AtomicUsize,
    /// Records written.
    written: AtomicU64,
    /// Records dropped (`on_queue_full: drop`).
    dropped: AtomicU64,
    /// Set when the writer stopped on an I/O error.
    failed: AtomicBool,
}

/// A snapshot of the audit log's counters (for metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditStats {
    /// Records waiting on the queue.
    pub queue_depth: usize,
    /// Records written since start.
    pub written: u64,
    /// Records dropped since start.
    pub dropped: u64,
    /// Whether the writer has failed.
    pub failed: bool,
}

/// The running audit log.
pub struct AuditLog {
    tx: SyncSender<Msg>,
    counters: Arc<Counters>,
    policy: QueueFullPolicy,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl AuditLog {
    /// Opens the log (continuing the chain on disk) and starts the writer thread.
    pub fn open(cfg: &AuditConfig) -> Result<AuditLog, AuditError> {
        let writer = Writer::open(cfg)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(cfg.queue_capacity);
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(rx, c))
            .map_err(|e| AuditError::Io {
                path: cfg.path.display().to_string(),
                source: e,
            })?;
        tracing::info!(path = %cfg.path.display(), "audit log open");
        Ok(AuditLog {
            tx,
            counters,
            policy: cfg.on_queue_full,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `record` (decided at `time`). `Err` means the request must be refused:
    /// the queue is full or the writer failed, and the policy is `refuse`. With `drop`
    /// the record is counted as dropped and `Ok` returned.
    pub fn submit(&self, record: DecisionRecord, time: SystemTime) -> Result<(), AuditRefused> {
        self.submit_event(Event::Decision(Box::new(record)), time)
    }

    /// Queues an operator's action, under the same policy as decisions.
    pub fn submit_admin(&self, record: AdminRecord) -> Result<(), AuditRefused> {
        self.submit_event(Event::Admin(record), SystemTime::now())
    }

    /// Queues a step of a human approval, under the same policy as decisions.
    pub fn submit_approval(&self, record: ApprovalRecord) -> Result<(), AuditRefused> {
        self.submit_event(Event::Approval(record), SystemTime::now())
    }

    fn submit_event(&self, event: Event, time: SystemTime) -> Result<(), AuditRefused> {
        let accepted = !self.counters.failed.load(Ordering::SeqCst) && {
            self.counters.queued.fetch_add(1, Ordering::SeqCst);
            match self.tx.try_send(Msg::Record(Box::new(event), time)) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.counters.queued.fetch_sub(1, Ordering::SeqCst);
                    false
                }
            }
        };
        if accepted {
            return Ok(());
        }
        match self.policy {
            QueueFullPolicy::Refuse => Err(AuditRefused::Unavailable),
            QueueFullPolicy::Drop => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// The counters now.
    pub fn stats(&self) -> AuditStats {
        AuditStats {
            queue_depth: self.counters.queued.load(Ordering::SeqCst),
            written: self.counters.written.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::SeqCst),
        }
    }

    /// Writes what is queued, signs a last checkpoint, fsyncs and stops the writer.
    /// Records submitted afterwards are refused (or dropped).
    pub async fn shutdown(&self) {
        let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) else {
            return;
        };
        let tx = self.tx.clone();
        let joined = tokio::task::spawn_blocking(move || {
            // Blocks while the queue is full: the writer is draining it.
            let _ = tx.send(Msg::Stop);
            thread.join()
        })
        .await;
        if !matches!(joined, Ok(Ok(()))) {
            tracing::error!("the audit writer did not stop cleanly");
        }
    }
}

#[cfg(test)]
mod tests;
