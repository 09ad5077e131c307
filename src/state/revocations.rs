//! The deny list: users, agents, token ids and "everything issued before" a time,
//! checked on every request right after the token is verified. Changed through the admin
//! API; kept in a file (written atomically before the change takes effect) so a restart
//! keeps it.
//!
//! With `state.redis` the list is the one in Redis ([`shared`]): a change posted to any
//! replica is written there first, then announced, and every replica reads the list
//! again — within a second while pub/sub works, within `state.redis.sync_interval`
//! otherwise. The per-request check never waits for Redis: it reads the last list
//! synced, whose age [`DenyList::staleness`] reports (and `/metrics` as
//! `actbridge_revocations_sync_age_seconds`). The file is then this replica's copy of
//! the shared list, so a replica that starts while Redis is down enforces the last list
//! it saw.
//!
//! ```text
//! {"revocations":[
//!   {"kind":"agent","value":"spiffe://demo.example.com/agent/summarizer-tech",
//!    "reason":"compromised","by":"bob","at":1796208000}]}
//! ```

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::clock::now_secs;
use crate::jwt::VerifiedToken;
use crate::state::redis::{SharedRedis, SharedStateError};

mod shared;
pub(crate) use shared::CHANGED;
use shared::SharedEntries;

/// What a revocation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationKind {
    /// A user: `preferred_username` or `sub`.
    User,
    /// An agent anywhere in the chain (or this sidecar's own): its client id (SPIFFE ID)
    /// or `sub`.
    Agent,
    /// One token: its `jti`.
    Token,
    /// Every token issued before this time (Unix seconds, as a decimal string); tokens
    /// without `iat` are refused too.
    IssuedBefore,
}

/// One entry of the deny list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// What is revoked.
    pub kind: RevocationKind,
    /// Whom or what.
    pub value: String,
    /// Why (free text, for the operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The admin who revoked it (their token's `preferred_username`, else `sub`).
    #[serde(default)]
    pub by: String,
    /// When (Unix seconds).
    #[serde(default)]
    pub at: u64,
}

/// Why a request is refused by the deny list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Revoked {
    /// The user, the token or its issue time is revoked.
    #[error("the token is revoked ({0})")]
    Token(&'static str),
    /// An agent of the chain is revoked.
    #[error("agent `{0}` is revoked")]
    Agent(String),
}

/// Why the deny list could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// The file could not be read or written.
    #[error("revocation file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a deny list.
    #[error("revocation file {path}: not a deny list: {detail}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The entry itself is unusable.
    #[error("{0}")]
    Invalid(&'static str),
    /// The shared list (Redis) could not be changed: the change is not made.
    #[error("{0}")]
    Unavailable(SharedStateError),
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    revocations: Vec<Revocation>,
}

/// The entries, indexed for the per-request check.
#[derive(Debug, Default)]
struct Snapshot {
    all: Vec<Revocation>,
    users: HashSet<String>,
    agents: HashSet<String>,
    tokens: HashSet<String>,
    issued_before: Option<u64>,
}

impl Snapshot {
    fn of(all: Vec<Revocation>) -> Snapshot {
        let mut s = Snapshot::default();
        for r in &all {
            match r.kind {
                RevocationKind::User => {
                    s.users.insert(r.value.clone());
                }
                RevocationKind::Agent => {
                    s.agents.insert(r.value.clone());
                }
                RevocationKind::Token => {
                    s.tokens.insert(r.value.clone());
                }
                RevocationKind::IssuedBefore => {
                    let t = r.value.parse::<u64>().unwrap_or(u64::MAX);
                    s.issued_before = Some(s.issued_before.map_or(t, |b| b.max(t)));
                }
            }
        }
        s.all = all;
        s
    }
}

/// The deny list shared by every request and the admin API.
pub struct DenyList {
    current: ArcSwap<Snapshot>,
    file: Option<PathBuf>,
    /// Serialises changes (each is written to the file before it takes effect).
    writing: Mutex<()>,
    /// The list every replica shares, when `state.redis` is set.
    shared: Option<Shared>,
}

/// The shared list's connection and how fresh this replica's copy is.
struct Shared {
    redis: Arc<SharedRedis>,
    /// Serialises syncs and changes, so an older read never replaces a newer one.
    syncing: tokio::sync::Mutex<()>,
    /// When the copy was last read from Redis; until the first read, when this list was
    /// made.
    synced_at: Mutex<Instant>,
}

impl DenyList {
    /// The list kept in `file` (read now; missing = empty), or in memory only.
    pub fn load(file: Option<&Path>) -> Result<DenyList, RevocationError> {
        Ok(DenyList {
            current: ArcSwap::from_pointee(Snapshot::of(read_file(file)?)),
            file: file.map(Path::to_path_buf),
            writing: Mutex::new(()),
            shared: None,
        })
    }

    /// The list every replica shares through `redis`, `file` (if any) this replica's
    /// copy of it: read now, and enforced until the first sync.
    pub fn shared(
        file: Option<&Path>,
        redis: Arc<SharedRedis>,
    ) -> Result<DenyList, RevocationError> {
        Ok(DenyList {
            shared: Some(Shared {
                redis,
                syncing: tokio::sync::Mutex::new(()),
                synced_at: Mutex::new(Instant::now()),
            }),
            ..DenyList::load(file)?
        })
    }

    /// Refuses `t` if its user, its `jti`, its issue time or an agent of its chain (or
    /// `own_agent`, the agent this sidecar would add) is revoked.
    pub fn check(&self, t: &VerifiedToken, own_agent: Option<&str>) -> Result<(), Revoked> {
        let s = self.current.load();
        if s.all.is_empty() {
            return Ok(());
        }
        let named =
            |v: &Option<String>, set: &HashSet<String>| v.as_ref().is_some_and(|x| set.contains(x));
        if named(&t.username, &s.users) || named(&t.subject, &s.users) {
            return Err(Revoked::Token("user"));
        }
        if named(&t.token_id, &s.tokens) {
            return Err(Revoked::Token("token"));
        }
        if let Some(before) = s.issued_before
            && t.issued_at.is_none_or(|iat| iat < before)
        {
            return Err(Revoked::Token("issued before the revocation time"));
        }
        for a in &t.actors {
            for id in [&a.client_id, &a.sub].into_iter().flatten() {
                if s.agents.contains(id) {
                    return Err(Revoked::Agent(id.clone()));
                }
            }
        }
        if let Some(own) = own_agent.filter(|o| s.agents.contains(*o)) {
            return Err(Revoked::Agent(own.to_string()));
        }
        Ok(())
    }

    /// Every entry.
    pub fn list(&self) -> Vec<Revocation> {
        self.current.load().all.clone()
    }

    /// Whether the list is the one the replicas share.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// How long ago this replica's copy of the shared list was last read (since start
    /// when it never was); `None` for a list of this process only.
    pub fn staleness(&self) -> Option<Duration> {
        let s = self.shared.as_ref()?;
        Some(
            s.synced_at
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed(),
        )
    }

    /// Adds `r` (stamped with now); an entry with the same kind and value is replaced.
    /// The file — or, shared, Redis — is written first: a change that cannot be kept is
    /// not made.
    pub async fn add(&self, mut r: Revocation) -> Result<(), RevocationError> {
        r.validate()?;
        r.at = now_secs();
        let Some(shared) = &self.shared else {
            return self.change(|all| replace_entry(all, r));
        };
        let _serial = shared.syncing.lock().await;
        SharedEntries(&shared.redis)
            .put(&r)
            .await
            .map_err(RevocationError::Unavailable)?;
        self.reread_or_apply(shared, |all| replace_entry(all, r))
            .await;
        Ok(())
    }

    /// Removes the entry of `kind` and `value`; false when there was none.
    pub async fn remove(&self, kind: RevocationKind, value: &str) -> Result<bool, RevocationError> {
        let without = |all: &mut Vec<Revocation>| {
            let before = all.len();
            all.retain(|e| !(e.kind == kind && e.value == value));
            all.len() != before
        };
        let Some(shared) = &self.shared else {
            let mut found = false;
            self.change(|all| found = without(all))?;
            return Ok(found);
        };
        let _serial = shared.syncing.lock().await;
        let found = SharedEntries(&shared.redis)
            .delete(kind, value)
            .await
            .map_err(RevocationError::Unavailable)?;
        self.reread_or_apply(shared, |all| {
            without(all);
        })
        .await;
        Ok(found)
    }

    /// Reads the shared list again (nothing to do for a list of this process only);
    /// true when this replica's copy changed. On failure the copy in use stays, and
    /// [`DenyList::staleness`] keeps growing.
    pub async fn sync(&self) -> Result<bool, SharedStateError> {
        let Some(shared) = &self.shared else {
            return Ok(false);
        };
        let _serial = shared.syncing.lock().await;
        self.reread(shared).await
    }

    /// After a change written to Redis: the list read again, or — Redis gone since —
    /// `edit` applied to this replica's copy, so the replica that took the change
    /// enforces it at once.
    async fn reread_or_apply(&self, shared: &Shared, edit: impl FnOnce(&mut Vec<Revocation>)) {
        if let Err(e) = self.reread(shared).await {
            tracing::warn!(error = %e, "the shared deny list was changed but not read back: applied here");
            let mut all = self.current.load().all.clone();
            edit(&mut all);
            self.keep_copy(all);
        }
    }

    /// Reads the shared list into this replica's copy (seeding an empty Redis from the
    /// copy first); true when the copy changed. Called with `shared.syncing` held.
    async fn reread(&self, shared: &Shared) -> Result<bool, SharedStateError> {
        let entries = SharedEntries(&shared.redis);
        let (mut version, mut all) = entries.fetch().await?;
        if version.is_none() {
            let local = self.list();
            if !local.is_empty() {
                tracing::warn!(
                    entries = local.len(),
                    "the shared deny list was never written (a new or emptied Redis): filling it from this replica's copy"
                );
                entries.seed(&local).await?;
                (version, all) = entries.fetch().await?;
            }
        }
        tracing::debug!(?version, entries = all.len(), "deny list synced");
        let changed = self.keep_copy(all);
        *shared.synced_at.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        Ok(changed)
    }

    /// Makes `all` this replica's copy of the shared list, written to the file when it
    /// changed (a file that cannot be written is logged: Redis holds the list); true
    /// when it changed.
    fn keep_copy(&self, all: Vec<Revocation>) -> bool {
        let _guard = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        if self.current.load().all == all {
            return false;
        }
        if let Some(path) = &self.file
            && let Err(e) = write_atomically(
                path,
                &FileFormat {
                    revocations: all.clone(),
                },
            )
        {
            tracing::error!(file = %path.display(), error = %e, "this replica's copy of the deny list could not be written");
        }
        self.current.store(Arc::new(Snapshot::of(all)));
        true
    }

    fn change(&self, edit: impl FnOnce(&mut Vec<Revocation>)) -> Result<(), RevocationError> {
        let _guard = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = self.current.load().all.clone();
        edit(&mut all);
        if let Some(path) = &self.file {
            write_atomically(
                path,
                &FileFormat {
                    revocations: all.clone(),
                },
            )
            .map_err(|e| RevocationError::Io {
                path: path.display().to_string(),
                source: e,
            })?;
        }
        self.current.store(Arc::new(Snapshot::of(all)));
        Ok(())
    }
}

/// `all` with `r` in place of any entry of the same kind and value.
fn replace_entry(all: &mut Vec<Revocation>, r: Revocation) {
    all.retain(|e| !(e.kind == r.kind && e.value == r.value));
    all.push(r);
}

/// The entries of `file` (missing: none).
fn read_file(file: Option<&Path>) -> Result<Vec<Revocation>, RevocationError> {
    let Some(path) = file else {
        return Ok(Vec::new());
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(RevocationError::Io {
                path: path.display().to_string(),
                source: e,
            });
        }
    };
    let format = |detail: String| RevocationError::Format {
        path: path.display().to_string(),
        detail,
    };
    let parsed: FileFormat = serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;
    for r in &parsed.revocations {
        validate(r).map_err(|e| format(e.to_string()))?;
    }
    Ok(parsed.revocations)
}

/// How far ahead of now a new `issued_before` may lie (another clock's drift). A later
/// time would refuse tokens not yet issued — most likely milliseconds typed for seconds,
/// which would refuse every token for millennia.
const MAX_ISSUED_BEFORE_AHEAD_SECS: u64 = 300;

impl Revocation {
    /// Whether the entry can be added now: a printable value, a bounded reason, and for
    /// `issued_before` a time in Unix seconds no later than 5 minutes from now. (Entries
    /// read back from the file are not held to the time bound: they were added before.)
    pub fn validate(&self) -> Result<(), RevocationError> {
        validate(self)?;
        let latest = now_secs().saturating_add(MAX_ISSUED_BEFORE_AHEAD_SECS);
        if self.kind == RevocationKind::IssuedBefore
            && self.value.parse::<u64>().is_ok_and(|t| t > latest)
        {
            return Err(RevocationError::Invalid(
                "issued_before must not be later than now (Unix seconds, not milliseconds)",
            ));
        }
        Ok(())
    }
}

fn validate(r: &Revocation) -> Result<(), RevocationError> {
    if r.value.is_empty() || r.value.len() > 1024 || r.value.chars().any(char::is_control) {
        return Err(RevocationError::Invalid(
            "value must be 1 to 1024 printable characters",
        ));
    }
    if r.kind == RevocationKind::IssuedBefore && r.value.parse::<u64>().is_err() {
        return Err(RevocationError::Invalid(
            "issued_before takes a time in Unix seconds",
        ));
    }
    if r.reason.as_ref().is_some_and(|x| x.len() > 1024) {
        return Err(RevocationError::Invalid("reason is longer than 1024 bytes"));
    }
    Ok(())
}

/// Writes `list` to a temporary file next to `path`, fsyncs it and renames it over
/// `path`, so a crash leaves the old list or the new one, never half of one.
fn write_atomically(path: &Path, list: &FileFormat) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, list).map_err(std::io::Error::other)?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::Actor;

    fn token() -> VerifiedToken {
        VerifiedToken {
            issuer: "iss".into(),
            subject: Some("sub-1".into()),
            username: Some("alice".into()),
            audiences: vec![],
            authorized_party: None,
            scopes: vec![],
            groups: vec![],
            roles: vec![],
            expires_at: now_secs() + 300,
            issued_at: Some(1000),
            token_id: Some("jti-1".into()),
            actors: vec![Actor {
                sub: None,
                client_id: Some("spiffe://d/agent/a".into()),
            }],
            actors_nest: true,
            fingerprint: "f".into(),
        }
    }

    fn revoke(kind: RevocationKind, value: &str) -> Revocation {
        Revocation {
            kind,
            value: value.into(),
            reason: None,
            by: "bob".into(),
            at: 0,
        }
    }

    #[tokio::test]
    async fn each_kind_refuses_what_it_names_and_nothing_else() {
        let list = DenyList::load(None).unwrap();
        let t = token();
        assert_eq!(list.check(&t, Some("spiffe://d/agent/own")), Ok(()));
        for (kind, value, own) in [
            (RevocationKind::User, "alice", None),
            (RevocationKind::User, "sub-1", None),
            (RevocationKind::Token, "jti-1", None),
            (RevocationKind::IssuedBefore, "1001", None),
            (RevocationKind::Agent, "spiffe://d/agent/a", None),
            (
                RevocationKind::Agent,
                "spiffe://d/agent/own",
                Some("spiffe://d/agent/own"),
            ),
        ] {
            list.add(revoke(kind, value)).await.unwrap();
            assert!(list.check(&t, own).is_err(), "{kind:?} {value}");
            assert!(list.remove(kind, value).await.unwrap());
            assert_eq!(list.check(&t, own), Ok(()));
        }
        list.add(revoke(RevocationKind::IssuedBefore, "999"))
            .await
            .unwrap();
        assert_eq!(list.check(&t, None), Ok(()), "issued after the time");
        assert!(matches!(
            list.add(revoke(RevocationKind::IssuedBefore, "soon")).await,
            Err(RevocationError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn the_list_survives_a_restart_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revocations.json");
        let list = DenyList::load(Some(&path)).unwrap();
        list.add(revoke(RevocationKind::Agent, "spiffe://d/agent/a"))
            .await
            .unwrap();
        let again = DenyList::load(Some(&path)).unwrap();
        assert_eq!(again.list().len(), 1);
        assert!(again.check(&token(), None).is_err());
        std::fs::write(&path, "{\"revocations\": 3}").unwrap();
        assert!(matches!(
            DenyList::load(Some(&path)),
            Err(RevocationError::Format { .. })
        ));
    }

    #[tokio::test]
    async fn a_new_issued_before_later_than_now_is_refused_but_the_file_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revocations.json");
        let list = DenyList::load(Some(&path)).unwrap();
        let now = now_secs();
        for late in [
            (now * 1000).to_string(),
            u64::MAX.to_string(),
            (now + 3600).to_string(),
        ] {
            assert!(
                matches!(
                    list.add(revoke(RevocationKind::IssuedBefore, &late)).await,
                    Err(RevocationError::Invalid(_))
                ),
                "{late}"
            );
        }
        assert!(list.list().is_empty());
        list.add(revoke(RevocationKind::IssuedBefore, &now.to_string()))
            .await
            .unwrap();
        // A file holding a later time (another clock, an older version) still loads.
        let far = format!(
            r#"{{"revocations":[{{"kind":"issued_before","value":"{}","by":"bob","at":1}}]}}"#,
            u64::MAX
        );
        std::fs::write(&path, far).unwrap();
        let again = DenyList::load(Some(&path)).unwrap();
        assert!(again.check(&token(), None).is_err());
    }
}
