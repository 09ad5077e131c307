//! Human approval: when the policy answers `approval_required`, the request is held — the
//! ext_proc stream waits, Envoy told to wait longer ([`Hold`]) — while the admin API
//! lists it and a person approves or denies it. A timeout denies. Pending approvals are
//! bounded; every step (asked, approved, denied, timed out) is audited, the approver
//! named.
//!
//! With `state.redis` the pending approvals are also in Redis ([`shared`]): every
//! replica's admin API lists them all and may decide any, and the replica holding the
//! request learns the decision (announced, and looked up every second). Redis not
//! answering refuses the request (503 `approval_state_unavailable`, fail closed) and the
//! decision (503); the bound on pending approvals stays per replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, oneshot};

use crate::audit::{ApprovalRecord, AuditLog};
use crate::clock::now_secs;
use crate::state::redis::{SharedRedis, SharedStateError};

mod shared;
pub(crate) use shared::DECIDED;
use shared::{Answer, SharedPending};

/// The protocol layer's side of a hold: told how long the decision may now take, so
/// the proxy waits instead of timing the request out (Envoy: `override_message_timeout`).
pub trait Hold: Send + Sync {
    /// The decision may take up to `for_` from now.
    fn hold(&self, for_: Duration);
}

/// No protocol to tell (tests, other callers).
pub struct NoHold;

impl Hold for NoHold {
    fn hold(&self, _: Duration) {}
}

/// A request waiting for a person, as the admin API lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingApproval {
    /// Its id (for `approve` / `deny`).
    pub id: String,
    /// Who: the user (`preferred_username`, else `sub`).
    pub user: String,
    /// Which agents act for them, newest first.
    pub actors: Vec<String>,
    /// What: direction, route, method, host and path (no query).
    pub direction: String,
    /// The route.
    pub route: String,
    /// The method.
    pub method: String,
    /// The host.
    pub authority: String,
    /// The path, without its query string.
    pub path: String,
    /// The query string, as sent (at most 1 KiB shown, its length marked when cut).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// On an agent-protocol route, the call: `tools/call read_document`, `message/send`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// A `tools/call`'s arguments, as the server would receive them — values under
    /// credential-like names (`password`, `token`, `secret`, …) redacted, and at most
    /// 4 KiB shown (a longer document is replaced by its first part and length).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<serde_json::Value>,
    /// SHA-256 (hex) of what is shown above (who, what, where, query, call, arguments):
    /// an approval names it, and applies only to exactly that content.
    pub digest: String,
    /// Why: the policy's reason.
    pub reason: String,
    /// Asked at (Unix seconds).
    pub asked_at: u64,
    /// Denied automatically at (Unix seconds).
    pub expires_at: u64,
}

/// The most of a query string an approver is shown.
const SHOWN_QUERY_MAX: usize = 1024;
/// The most of a call's arguments (serialized) an approver is shown.
const SHOWN_ARGUMENTS_MAX: usize = 4096;
/// Argument names whose values are never shown (compared ignoring case, as parts).
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "api_key",
    "apikey",
    "credential",
    "private_key",
    "cookie",
];

impl PendingApproval {
    /// The query string of `path_and_query`, as an approver is shown it.
    pub fn shown_query(path_and_query: &str) -> Option<String> {
        let (_, query) = path_and_query.split_once('?')?;
        Some(crate::text::bounded(query, SHOWN_QUERY_MAX).into_owned())
    }

    /// `arguments` as an approver is shown them: credential-like values redacted, at most
    /// [`SHOWN_ARGUMENTS_MAX`] bytes.
    pub fn shown_arguments(arguments: &serde_json::Value) -> serde_json::Value {
        let redacted = redact(arguments);
        let text = redacted.to_string();
        if text.len() <= SHOWN_ARGUMENTS_MAX {
            return redacted;
        }
        serde_json::Value::String(crate::text::bounded(&text, SHOWN_ARGUMENTS_MAX).into_owned())
    }

    /// The digest of what an approver is shown.
    fn content_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let content = serde_json::json!({
            "user": self.user, "actors": self.actors, "direction": self.direction,
            "route": self.route, "method": self.method, "authority": self.authority,
            "path": self.path, "query": self.query, "call": self.call,
            "arguments": self.arguments,
        });
        hex::encode(Sha256::digest(content.to_string().as_bytes()))
    }
}

fn redact(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    let secret = SECRET_NAMES.iter().any(|s| lower.contains(s));
                    let shown = if secret {
                        Value::String("[redacted]".into())
                    } else {
                        redact(v)
                    };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// How a pending approval ended, when not approved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalRefused {
    /// A person denied it.
    #[error("approval {id} denied by {by}")]
    Denied {
        /// The approval.
        id: String,
        /// Who denied it.
        by: String,
    },
    /// Nobody decided in time.
    #[error("approval {0} timed out")]
    TimedOut(String),
    /// Too many requests are already waiting.
    #[error("too many pending approvals")]
    Full,
    /// The step could not be audited.
    #[error("the approval could not be audited")]
    Unaudited,
    /// The sidecar is shutting down: nobody will decide.
    #[error("the sidecar is shutting down")]
    ShuttingDown,
    /// The shared approvals (Redis) did not answer: nobody else could see the request.
    #[error("{0}")]
    Unavailable(SharedStateError),
}

/// Why a decision on a pending approval was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// No such pending approval (decided, timed out, or never asked).
    #[error("no such pending approval")]
    NotFound,
    /// The decision could not be audited, so it was not taken.
    #[error("the decision could not be audited")]
    Unaudited,
    /// An approval that names no digest: what was approved would be unknown.
    #[error("an approval names the digest of what it approves")]
    DigestRequired,
    /// The digest is not the held request's: the approver saw something else.
    #[error("the digest is not the held request's")]
    DigestMismatch,
    /// The shared approvals (Redis) did not answer: nothing was decided.
    #[error("the shared approvals are unavailable")]
    Unavailable,
}

struct Waiting {
    info: PendingApproval,
    answer: oneshot::Sender<Answer>,
    /// Woken when another replica announces a decision on it.
    decided_elsewhere: Arc<Notify>,
}

/// The pending approvals.
pub struct Approvals {
    pending: Mutex<HashMap<String, Waiting>>,
    timeout: Duration,
    max_pending: usize,
    audit: Mutex<Option<Arc<AuditLog>>>,
    /// Set at shutdown: nothing more is held, and what waits is refused.
    closing: std::sync::atomic::AtomicBool,
    /// The approvals every replica shares, when `state.redis` is set.
    shared: Option<Arc<SharedRedis>>,
}

/// How often a holder looks for a decision taken by another replica, besides being
/// woken by its announcement.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Removes the pending entry when the waiting request goes away (the caller hung up).
struct Forget<'a> {
    approvals: &'a Approvals,
    id: String,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if self.approvals.lock().remove(&self.id).is_some() {
            self.approvals.release_shared(vec![self.id.clone()]);
        }
    }
}

impl Approvals {
    /// Approvals waiting at most `timeout`, at most `max_pending` at a time.
    pub fn new(timeout: Duration, max_pending: usize) -> Approvals {
        Approvals {
            pending: Mutex::new(HashMap::new()),
            timeout,
            max_pending,
            audit: Mutex::new(None),
            closing: std::sync::atomic::AtomicBool::new(false),
            shared: None,
        }
    }

    /// [`Approvals::new`], pending approvals shared with every replica through `redis`.
    pub fn shared(timeout: Duration, max_pending: usize, redis: Arc<SharedRedis>) -> Approvals {
        Approvals {
            shared: Some(redis),
            ..Approvals::new(timeout, max_pending)
        }
    }

    /// Removes `ids` from the shared approvals in the background (best effort: they
    /// expire anyway), so nobody approves a request no longer held.
    fn release_shared(&self, ids: Vec<String>) {
        let (Some(redis), Ok(rt)) = (self.shared.clone(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        rt.spawn(async move {
            for id in ids {
                let _ = SharedPending(&redis).end_wait(&id).await;
            }
        });
    }

    /// Another replica announced a decision on `id`: its holder (if here) looks it up.
    pub fn decided_elsewhere(&self, id: &str) {
        if let Some(w) = self.lock().get(id) {
            w.decided_elsewhere.notify_one();
        }
    }

    /// At shutdown: every held request is refused now (503), and none is held after —
    /// a request never waits past the drain for a person who can no longer answer.
    pub fn shut_down(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::Release);
        let held = std::mem::take(&mut *self.lock());
        if !held.is_empty() {
            tracing::warn!(
                held = held.len(),
                "shutting down: refusing the requests held for approval"
            );
        }
        self.release_shared(held.keys().cloned().collect());
        // Dropping each answer's sender wakes its request, which sees `closing`.
        drop(held);
    }

    fn is_closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Audits every step into `log`.
    pub fn audit_into(&self, log: Arc<AuditLog>) {
        *self.audit.lock().unwrap_or_else(|p| p.into_inner()) = Some(log);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long a request may wait.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Holds the request described by `info` (its `id`, `asked_at` and `expires_at` are
    /// filled here) until a person decides or the timeout passes. Ok = approved, by whom.
    pub async fn ask(
        &self,
        mut info: PendingApproval,
        hold: &dyn Hold,
    ) -> Result<String, ApprovalRefused> {
        let (tx, rx) = oneshot::channel();
        info.id = uuid::Uuid::new_v4().to_string();
        info.digest = info.content_digest();
        info.asked_at = now_secs();
        info.expires_at = info.asked_at + self.timeout.as_secs();
        self.may_hold(self.lock().len())?;
        if let Some(redis) = &self.shared {
            SharedPending(redis)
                .hold(&info, self.timeout)
                .await
                .map_err(ApprovalRefused::Unavailable)?;
        }
        let decided_elsewhere = Arc::new(Notify::new());
        {
            let mut pending = self.lock();
            let refused = self.may_hold(pending.len()).err().or_else(|| {
                (!self.record(&info, "asked", None)).then_some(ApprovalRefused::Unaudited)
            });
            if let Some(refused) = refused {
                drop(pending);
                self.release_shared(vec![info.id.clone()]);
                return Err(refused);
            }
            pending.insert(
                info.id.clone(),
                Waiting {
                    info: info.clone(),
                    answer: tx,
                    decided_elsewhere: decided_elsewhere.clone(),
                },
            );
        }
        let _forget = Forget {
            approvals: self,
            id: info.id.clone(),
        };
        tracing::info!(id = %info.id, user = %info.user, route = %info.route, "holding a request for approval");
        // A margin past our own timeout, so that we, not the proxy, end the wait.
        hold.hold(self.timeout + Duration::from_secs(2));
        let answer =
            match tokio::time::timeout(self.timeout, self.answer(&info.id, rx, &decided_elsewhere))
                .await
            {
                Ok(Some(answer)) => Some(answer),
                Ok(None) if self.is_closing() => {
                    self.record(&info, "shut_down", None);
                    return Err(ApprovalRefused::ShuttingDown);
                }
                Ok(None) | Err(_) => self.end_wait(&info.id).await,
            };
        match answer {
            Some(Ok(by)) => Ok(by),
            Some(Err(by)) => Err(ApprovalRefused::Denied {
                id: info.id.clone(),
                by,
            }),
            None => {
                self.record(&info, "timed_out", None);
                Err(ApprovalRefused::TimedOut(info.id.clone()))
            }
        }
    }

    /// Refuses to hold one more request beside the `held` ones: shutting down, or the
    /// bound reached.
    fn may_hold(&self, held: usize) -> Result<(), ApprovalRefused> {
        if self.is_closing() {
            return Err(ApprovalRefused::ShuttingDown);
        }
        if held >= self.max_pending {
            return Err(ApprovalRefused::Full);
        }
        Ok(())
    }

    /// The decision on `id`: from this replica's admin API (`rx`), or, shared, from
    /// another replica's — looked up when announced and every [`LOOK_EVERY`]. `None`
    /// when this replica dropped the request (shutting down).
    async fn answer(
        &self,
        id: &str,
        mut rx: oneshot::Receiver<Answer>,
        decided_elsewhere: &Notify,
    ) -> Option<Answer> {
        let Some(redis) = &self.shared else {
            return rx.await.ok();
        };
        loop {
            tokio::select! {
                here = &mut rx => return here.ok(),
                () = decided_elsewhere.notified() => {}
                () = tokio::time::sleep(LOOK_EVERY) => {}
            }
            if let Ok(Some(answer)) = SharedPending(redis).decision(id).await {
                self.lock().remove(id);
                return Some(answer);
            }
        }
    }

    /// The wait for `id` is over: it is no longer pending, here or shared. `None` when
    /// nobody decided (timed out); a decision another replica took at the last moment
    /// stands. Redis not answering is a timeout (fail closed).
    async fn end_wait(&self, id: &str) -> Option<Answer> {
        self.lock().remove(id);
        let redis = self.shared.as_ref()?;
        match SharedPending(redis).end_wait(id).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(id, error = %e, "the shared approval could not be closed: timed out");
                None
            }
        }
    }

    /// Everything waiting, oldest first — shared, at every replica.
    pub async fn list(&self) -> Result<Vec<PendingApproval>, SharedStateError> {
        if let Some(redis) = &self.shared {
            return SharedPending(redis).list().await;
        }
        let mut all: Vec<PendingApproval> = self.lock().values().map(|w| w.info.clone()).collect();
        all.sort_by(|a, b| a.asked_at.cmp(&b.asked_at).then(a.id.cmp(&b.id)));
        Ok(all)
    }

    /// `by` approves (`approve`) or denies the pending approval `id`. An approval names
    /// the `digest` of what it approves, and applies only when it is the held request's.
    /// The step is audited first; one that cannot be audited is not taken.
    pub async fn decide(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        digest: Option<&str>,
    ) -> Result<(), DecideError> {
        let Some(redis) = &self.shared else {
            return self.decide_here(id, approve, by, digest);
        };
        let shared = SharedPending(redis);
        let info = shared
            .get(id)
            .await
            .map_err(|_| DecideError::Unavailable)?
            .ok_or(DecideError::NotFound)?;
        self.may_decide(&info, approve, by, digest)?;
        if !shared
            .decide(id, approve, by, self.timeout)
            .await
            .map_err(|_| DecideError::Unavailable)?
        {
            return Err(DecideError::NotFound);
        }
        self.decided_elsewhere(id);
        Ok(())
    }

    /// [`Approvals::decide`] on this replica's own pending approvals.
    fn decide_here(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        digest: Option<&str>,
    ) -> Result<(), DecideError> {
        let mut pending = self.lock();
        let waiting = pending.get(id).ok_or(DecideError::NotFound)?;
        self.may_decide(&waiting.info, approve, by, digest)?;
        let waiting = pending.remove(id).ok_or(DecideError::NotFound)?;
        let answer = if approve {
            Ok(by.to_string())
        } else {
            Err(by.to_string())
        };
        waiting
            .answer
            .send(answer)
            .map_err(|_| DecideError::NotFound)
    }

    /// Checks an approval's digest against the held request's, then audits the step.
    fn may_decide(
        &self,
        held: &PendingApproval,
        approve: bool,
        by: &str,
        digest: Option<&str>,
    ) -> Result<(), DecideError> {
        if approve {
            let named = digest.ok_or(DecideError::DigestRequired)?;
            if !bool::from(subtle::ConstantTimeEq::ct_eq(
                named.as_bytes(),
                held.digest.as_bytes(),
            )) {
                return Err(DecideError::DigestMismatch);
            }
        }
        let step = if approve { "approved" } else { "denied" };
        if !self.record(held, step, Some(by)) {
            return Err(DecideError::Unaudited);
        }
        Ok(())
    }

    /// Audits one step; false when the audit log refused it.
    fn record(&self, info: &PendingApproval, step: &str, by: Option<&str>) -> bool {
        let log = self.audit.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(log) = log else {
            return true;
        };
        log.submit_approval(ApprovalRecord {
            id: info.id.clone(),
            step: step.to_string(),
            by: by.map(str::to_string),
            user: info.user.clone(),
            actors: info.actors.clone(),
            route: info.route.clone(),
            method: info.method.clone(),
            authority: info.authority.clone(),
            path: info.path.clone(),
            reason: info.reason.clone(),
        })
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_approver_sees_the_query_and_the_arguments_with_secrets_redacted_and_bounded() {
        use super::PendingApproval;
        assert_eq!(
            PendingApproval::shown_query("/send?to=exfil@attacker.example").as_deref(),
            Some("to=exfil@attacker.example")
        );
        assert_eq!(PendingApproval::shown_query("/send"), None);
        let shown = PendingApproval::shown_arguments(&serde_json::json!({
            "to": "exfil@attacker.example", "API_KEY": "k", "auth": {"password": "p"},
            "items": [{"session_token": "t", "n": 1}],
        }));
        assert_eq!(shown["to"], "exfil@attacker.example");
        assert_eq!(shown["API_KEY"], "[redacted]");
        assert_eq!(shown["auth"]["password"], "[redacted]");
        assert_eq!(shown["items"][0]["session_token"], "[redacted]");
        assert_eq!(shown["items"][0]["n"], 1);
        let big =
            PendingApproval::shown_arguments(&serde_json::json!({"text": "a".repeat(10_000)}));
        let text = big.as_str().unwrap();
        assert!(
            text.len() < 4200 && text.contains("bytes]"),
            "{}",
            text.len()
        );
    }

    use super::*;

    fn info() -> PendingApproval {
        PendingApproval {
            id: String::new(),
            user: "alice".into(),
            actors: vec!["spiffe://d/agent/a".into()],
            direction: "outbound".into(),
            route: "r".into(),
            method: "DELETE".into(),
            authority: "h".into(),
            path: "/x".into(),
            query: None,
            call: None,
            arguments: None,
            digest: String::new(),
            reason: "deletes need a person".into(),
            asked_at: 0,
            expires_at: 0,
        }
    }

    #[tokio::test]
    async fn approve_deny_timeout_and_the_bound() {
        let a = Arc::new(Approvals::new(Duration::from_millis(300), 1));
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move { a.ask(info(), &NoHold).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let listed = a.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].user, "alice");
        // The bound: a second request waits for nobody.
        assert_eq!(a.ask(info(), &NoHold).await, Err(ApprovalRefused::Full));
        assert_eq!(
            a.decide(&listed[0].id, true, "bob", None).await,
            Err(DecideError::DigestRequired)
        );
        assert_eq!(
            a.decide(&listed[0].id, true, "bob", Some("0000")).await,
            Err(DecideError::DigestMismatch)
        );
        a.decide(&listed[0].id, true, "bob", Some(&listed[0].digest))
            .await
            .unwrap();
        assert_eq!(waiter.await.unwrap(), Ok("bob".to_string()));
        assert_eq!(
            a.decide(&listed[0].id, true, "bob", Some(&listed[0].digest))
                .await,
            Err(DecideError::NotFound)
        );

        let waiter = {
            let a = a.clone();
            tokio::spawn(async move { a.ask(info(), &NoHold).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let id = a.list().await.unwrap()[0].id.clone();
        a.decide(&id, false, "bob", None).await.unwrap();
        assert!(matches!(
            waiter.await.unwrap(),
            Err(ApprovalRefused::Denied { .. })
        ));

        let timed_out = a.ask(info(), &NoHold).await;
        assert!(matches!(timed_out, Err(ApprovalRefused::TimedOut(_))));
        assert!(
            a.list().await.unwrap().is_empty(),
            "a timed-out approval is no longer pending"
        );
    }

    #[tokio::test]
    async fn a_caller_that_hangs_up_leaves_nothing_pending() {
        let a = Approvals::new(Duration::from_secs(30), 10);
        let _ = tokio::time::timeout(Duration::from_millis(50), a.ask(info(), &NoHold)).await;
        assert!(a.list().await.unwrap().is_empty());
    }
}
