//! Secrets read from files (`secret_file`, `token_file`, `admin_password_file`) are
//! re-read when the file changes, so that a rotated Kubernetes Secret (its mount is
//! swapped in place) applies without a restart: [`watch`] looks every
//! [`REREAD_INTERVAL`] and replaces the value each [`super::Secret`] hands out.
//!
//! A file that cannot be read, or is empty (a half-written one), keeps the value in use
//! and is logged once (WARN, naming the key, never the content); a change is logged at
//! INFO. Keys and certificates (`private_key_file`, `ca_key_file`, `signing_key_file`,
//! the Redis TLS files and password) are read at start only: rotating them needs a
//! restart (docs/configuration.md).
//!
//! Polled rather than notified: Kubernetes updates a Secret's mount by swapping a
//! symbolic link, which inotify-based watchers miss or report on the wrong file.

use std::path::PathBuf;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often the files are looked at.
pub const REREAD_INTERVAL: Duration = Duration::from_secs(10);

struct Watched {
    key: String,
    path: PathBuf,
    cell: Weak<arc_swap::ArcSwap<String>>,
    failing: bool,
}

static WATCHED: Mutex<Vec<Watched>> = Mutex::new(Vec::new());

/// Reads `secret` from `path` again whenever it changes (config key `key`).
pub(crate) fn follow(key: &str, path: PathBuf, secret: &super::Secret) {
    if let Ok(mut all) = WATCHED.lock() {
        all.retain(|w| w.cell.strong_count() > 0);
        all.push(Watched {
            key: key.to_string(),
            path,
            cell: secret.cell(),
            failing: false,
        });
    }
}

/// The content of a secret file, as read at start: the trailing line break dropped.
pub(crate) fn content(bytes: Vec<u8>) -> Option<String> {
    let text = String::from_utf8(bytes).ok()?;
    Some(text.trim_end_matches(['\n', '\r']).to_string())
}

/// Looks at every followed file once; returns the keys whose value changed.
pub fn reread() -> Vec<String> {
    let Ok(mut all) = WATCHED.lock() else {
        return Vec::new();
    };
    all.retain(|w| w.cell.strong_count() > 0);
    let mut changed = Vec::new();
    for w in all.iter_mut() {
        let Some(cell) = w.cell.upgrade() else {
            continue;
        };
        let read = std::fs::read(&w.path)
            .map_err(|e| e.to_string())
            .and_then(|b| content(b).ok_or_else(|| "not UTF-8".to_string()))
            .and_then(|t| {
                if t.is_empty() {
                    Err("empty".to_string())
                } else {
                    Ok(t)
                }
            });
        match read {
            Ok(text) => {
                if w.failing {
                    tracing::info!(key = %w.key, "secret file readable again");
                    w.failing = false;
                }
                if **cell.load() != text {
                    cell.store(std::sync::Arc::new(text));
                    tracing::info!(key = %w.key, file = %w.path.display(), "secret file changed: the new value is in use");
                    changed.push(w.key.clone());
                }
            }
            Err(why) => {
                if !w.failing {
                    tracing::warn!(key = %w.key, file = %w.path.display(), %why, "secret file cannot be re-read: the value read before stays in use");
                    w.failing = true;
                }
            }
        }
    }
    changed
}

/// Re-reads the followed files every [`REREAD_INTERVAL`] until `shutdown`.
pub async fn watch(shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(REREAD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // File reads are quick but blocking: off the async workers.
        let _ = tokio::task::spawn_blocking(reread).await;
    }
}

#[cfg(test)]
mod tests {
    use super::super::Secret;
    use super::*;

    #[test]
    fn a_changed_file_changes_the_value_and_a_broken_one_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "first\n").unwrap();
        let secret = Secret::new("first");
        follow("test.secret_file", path.clone(), &secret);
        reread();
        assert_eq!(secret.expose().as_str(), "first");
        std::fs::write(&path, "second\n").unwrap();
        assert!(reread().contains(&"test.secret_file".to_string()));
        assert_eq!(secret.expose().as_str(), "second");
        // Half-written (empty), then gone: the value in use stays.
        std::fs::write(&path, "").unwrap();
        reread();
        assert_eq!(secret.expose().as_str(), "second");
        std::fs::remove_file(&path).unwrap();
        reread();
        assert_eq!(secret.expose().as_str(), "second");
        // A clone (what a client holds) sees the new value too.
        let held = secret.clone();
        std::fs::write(&path, "third").unwrap();
        reread();
        assert_eq!(held.expose().as_str(), "third");
        // Dropped secrets are forgotten.
        drop((secret, held));
        std::fs::write(&path, "fourth").unwrap();
        assert!(!reread().contains(&"test.secret_file".to_string()));
    }
}
