//! The deny list in the Redis every replica shares (`state.redis`): a hash of entries
//! (`<prefix>revocations`, field `<kind>:<value>`, value the entry as JSON) and a
//! version counter (`<prefix>revocations:version`) bumped with every change in the same
//! `MULTI`. A change is announced on the events channel (`revocations`); each replica
//! then reads the whole hash again (see [`crate::state::fleet`]), and also every
//! `state.redis.sync_interval`, so an announcement lost while a replica reconnected is
//! made up for.
//!
//! The first replica to find no version counter (a new Redis, or one restarted without
//! persistence) writes its own list (its revocation file) into the hash, entry by entry
//! without overwriting: a Redis that lost its data is refilled from the replicas'
//! files rather than un-revoking everything.

use std::collections::HashMap;

use super::{Revocation, RevocationKind};
use crate::state::redis::{SharedRedis, SharedStateError};

/// The event announcing a change of the deny list.
pub(crate) const CHANGED: &str = "revocations";

/// The deny list's keys in the shared Redis.
pub(super) struct SharedEntries<'a>(pub(super) &'a SharedRedis);

impl SharedEntries<'_> {
    fn entries_key(&self) -> String {
        self.0.key("revocations")
    }

    fn version_key(&self) -> String {
        self.0.key("revocations:version")
    }

    /// The version and every entry, read in one `MULTI`; the version is `None` when the
    /// list was never written. An entry that does not parse is skipped (and logged):
    /// it cannot be enforced, and it must not stop the others from being.
    pub(super) async fn fetch(&self) -> Result<(Option<u64>, Vec<Revocation>), SharedStateError> {
        let (version, raw): (Option<u64>, HashMap<String, String>) = self
            .0
            .query_pipe(
                redis::pipe()
                    .atomic()
                    .get(self.version_key())
                    .hgetall(self.entries_key()),
            )
            .await?;
        let mut all: Vec<Revocation> = raw
            .into_iter()
            .filter_map(
                |(field, json)| match serde_json::from_str::<Revocation>(&json) {
                    Ok(r) if super::validate(&r).is_ok() => Some(r),
                    _ => {
                        tracing::error!(
                            field,
                            "a shared revocation entry is not an entry: skipped"
                        );
                        None
                    }
                },
            )
            .collect();
        all.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| field(a).cmp(&field(b))));
        Ok((version, all))
    }

    /// Writes `r` (replacing the entry of its kind and value) and announces it.
    pub(super) async fn put(&self, r: &Revocation) -> Result<(), SharedStateError> {
        let json =
            serde_json::to_string(r).map_err(|e| SharedStateError::Unavailable(e.to_string()))?;
        self.0
            .query_pipe::<()>(
                redis::pipe()
                    .atomic()
                    .hset(self.entries_key(), field(r), json)
                    .ignore()
                    .incr(self.version_key(), 1)
                    .ignore(),
            )
            .await?;
        self.announce().await;
        Ok(())
    }

    /// Removes the entry of `kind` and `value` and announces it; false when there was
    /// none.
    pub(super) async fn delete(
        &self,
        kind: RevocationKind,
        value: &str,
    ) -> Result<bool, SharedStateError> {
        let (removed,): (u64,) = self
            .0
            .query_pipe(
                redis::pipe()
                    .atomic()
                    .hdel(self.entries_key(), field_of(kind, value))
                    .incr(self.version_key(), 1)
                    .ignore(),
            )
            .await?;
        self.announce().await;
        Ok(removed > 0)
    }

    /// Writes each of `local` that the shared list lacks (never overwriting one), and
    /// creates the version counter.
    pub(super) async fn seed(&self, local: &[Revocation]) -> Result<(), SharedStateError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for r in local {
            let json = serde_json::to_string(r)
                .map_err(|e| SharedStateError::Unavailable(e.to_string()))?;
            pipe.hset_nx(self.entries_key(), field(r), json).ignore();
        }
        pipe.incr(self.version_key(), 1).ignore();
        self.0.query_pipe::<()>(&pipe).await?;
        self.announce().await;
        Ok(())
    }

    /// Tells the other replicas; a lost announcement is made up for by their periodic
    /// sync, so a failure here is only logged.
    async fn announce(&self) {
        if let Err(e) = self.0.publish(CHANGED).await {
            tracing::warn!(error = %e, "a revocation change was kept but not announced: replicas see it at their next sync");
        }
    }
}

fn field(r: &Revocation) -> String {
    field_of(r.kind, &r.value)
}

fn field_of(kind: RevocationKind, value: &str) -> String {
    let kind = match kind {
        RevocationKind::User => "user",
        RevocationKind::Agent => "agent",
        RevocationKind::Token => "token",
        RevocationKind::IssuedBefore => "issued_before",
    };
    format!("{kind}:{value}")
}
