//! Pending approvals in the Redis every replica shares (`state.redis`), so that a person
//! may approve through any replica's admin API while another replica holds the request:
//!
//! - `<prefix>approval:<id>`: what the approver is shown (JSON), kept a little longer
//!   than the approval timeout; its presence means "still pending";
//! - `<prefix>approvals`: the ids by time asked, for listing;
//! - `<prefix>approval:<id>:decision`: `approved <by>` or `denied <by>`, written by the
//!   replica that took the decision, in the same script that removed the pending entry,
//!   then announced on the events channel (`approval:<id>`) to wake the holder; the
//!   holder also looks every second, so a lost announcement only delays it.
//!
//! Deciding and timing out are one script each, so of a decision and a timeout that
//! race exactly one wins, and the holder and the approver agree on which.

use std::time::Duration;

use super::PendingApproval;
use crate::state::redis::{SharedRedis, SharedStateError};

/// The prefix of the event announcing a decision (`approval:<id>`).
pub(crate) const DECIDED: &str = "approval:";

/// Takes a pending approval and records the decision; 0 when nothing was pending.
const DECIDE: &str = r"
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3])
redis.call('PUBLISH', KEYS[4], ARGV[4])
return 1
";

/// Ends a wait: the pending approval removed (nil: timed out), or, when a decision
/// took it first, that decision.
const END_WAIT: &str = r"
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return false
end
return redis.call('GET', KEYS[3])
";

/// A decision as the holder reads it: Ok(approver) or Err(denier).
pub(super) type Answer = Result<String, String>;

/// The approvals' keys in the shared Redis.
pub(super) struct SharedPending<'a>(pub(super) &'a SharedRedis);

impl SharedPending<'_> {
    fn pending_key(&self, id: &str) -> String {
        self.0.key(&format!("approval:{id}"))
    }

    fn decision_key(&self, id: &str) -> String {
        self.0.key(&format!("approval:{id}:decision"))
    }

    fn index_key(&self) -> String {
        self.0.key("approvals")
    }

    /// Records `info` as pending for `wait` (plus a margin).
    pub(super) async fn hold(
        &self,
        info: &PendingApproval,
        wait: Duration,
    ) -> Result<(), SharedStateError> {
        let json = serde_json::to_string(info)
            .map_err(|e| SharedStateError::Unavailable(e.to_string()))?;
        let keep_ms = keep(wait).as_millis() as u64;
        self.0
            .query_pipe::<()>(
                redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(self.pending_key(&info.id))
                    .arg(json)
                    .arg("PX")
                    .arg(keep_ms)
                    .ignore()
                    .zadd(self.index_key(), &info.id, info.asked_at)
                    .ignore(),
            )
            .await
    }

    /// The pending approval `id`, if it still is.
    pub(super) async fn get(&self, id: &str) -> Result<Option<PendingApproval>, SharedStateError> {
        let json: Option<String> = self
            .0
            .query(redis::cmd("GET").arg(self.pending_key(id)))
            .await?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Every pending approval, oldest first (ids whose entry expired are dropped from the
    /// index on the way).
    pub(super) async fn list(&self) -> Result<Vec<PendingApproval>, SharedStateError> {
        let ids: Vec<String> = self
            .0
            .query(redis::cmd("ZRANGE").arg(self.index_key()).arg(0).arg(-1))
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.pending_key(id)).collect();
        let found: Vec<Option<String>> = self.0.query(redis::cmd("MGET").arg(&keys)).await?;
        let mut all = Vec::new();
        let mut gone = Vec::new();
        for (id, json) in ids.into_iter().zip(found) {
            match json.and_then(|j| serde_json::from_str::<PendingApproval>(&j).ok()) {
                Some(info) => all.push(info),
                None => gone.push(id),
            }
        }
        if !gone.is_empty() {
            // Best effort: a later listing drops them again.
            let _ = self
                .0
                .query::<i64>(redis::cmd("ZREM").arg(self.index_key()).arg(&gone))
                .await;
        }
        Ok(all)
    }

    /// Takes the decision on `id` (`approved` or `denied`, by `by`) and announces it;
    /// false when it was no longer pending.
    pub(super) async fn decide(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        wait: Duration,
    ) -> Result<bool, SharedStateError> {
        let step = if approve { "approved" } else { "denied" };
        let taken: i64 = self
            .0
            .run_script(
                redis::Script::new(DECIDE)
                    .key(self.pending_key(id))
                    .key(self.index_key())
                    .key(self.decision_key(id))
                    .key(self.0.events_channel())
                    .arg(id)
                    .arg(format!("{step} {by}"))
                    .arg(keep(wait).as_secs())
                    .arg(format!("{DECIDED}{id}")),
            )
            .await?;
        Ok(taken == 1)
    }

    /// The decision on `id`, if one was taken.
    pub(super) async fn decision(&self, id: &str) -> Result<Option<Answer>, SharedStateError> {
        let got: Option<String> = self
            .0
            .query(redis::cmd("GET").arg(self.decision_key(id)))
            .await?;
        Ok(got.map(|d| parse(&d)))
    }

    /// Ends the wait for `id` (its time is up, or its caller left): `None` when it was
    /// still pending (now removed: nobody can approve it any more), else the decision
    /// that came first.
    pub(super) async fn end_wait(&self, id: &str) -> Result<Option<Answer>, SharedStateError> {
        let got: Option<String> = self
            .0
            .run_script(
                redis::Script::new(END_WAIT)
                    .key(self.pending_key(id))
                    .key(self.index_key())
                    .key(self.decision_key(id))
                    .arg(id),
            )
            .await?;
        Ok(got.map(|d| parse(&d)))
    }
}

/// How long a pending entry and a decision are kept: the wait, and a margin for the
/// holder to read the decision.
fn keep(wait: Duration) -> Duration {
    wait + Duration::from_secs(30)
}

fn parse(decision: &str) -> Answer {
    match decision.split_once(' ') {
        Some(("approved", by)) => Ok(by.to_string()),
        Some((_, by)) => Err(by.to_string()),
        None => Err(decision.to_string()),
    }
}
