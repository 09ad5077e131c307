//! The one log line per decision: every refusal (within a budget), and a share of the
//! allowed decisions (`telemetry.log_allowed`, within its own budget). Each carries
//! what an operator greps for: request id, direction, route, user, agent (the newest of
//! the chain the decision judged), authority and path (no query). Never a token, header
//! value or query string; the token is named by its fingerprint.
//!
//! Every decision reaches the metrics and the audit log whatever is logged here.

use super::decision::Denial;
use super::log_budget::LogBudget;
use super::refusal::Refusal;
use super::request::RequestFacts;
use super::trail::Trail;

/// Refusal lines written per second, at most.
const REFUSALS_PER_SECOND: u32 = 20;
/// Allowed lines written per second, at most.
const ALLOWED_PER_SECOND: u32 = 100;

pub(super) struct DecisionLog {
    /// Also spent by refusals of requests that could not be read.
    pub(super) refusals: LogBudget,
    allowed: LogBudget,
    allowed_share: f64,
}

impl DecisionLog {
    /// `allowed_share`: the share of allowed decisions logged (0.0 to 1.0).
    pub(super) fn new(allowed_share: f64) -> Self {
        DecisionLog {
            refusals: LogBudget::new(REFUSALS_PER_SECOND),
            allowed: LogBudget::new(ALLOWED_PER_SECOND),
            allowed_share,
        }
    }

    /// An allowed (or answered) decision: at `info` when drawn and within the budget,
    /// else at `debug`.
    pub(super) fn allowed(&self, req: &RequestFacts, trail: &Trail, step: &str) {
        let drawn = self.allowed_share >= 1.0
            || (self.allowed_share > 0.0 && rand::random::<f64>() < self.allowed_share);
        let admitted = if drawn { self.allowed.admit() } else { None };
        macro_rules! line {
            ($level:ident, $left_out:expr) => {
                tracing::$level!(
                    left_out = $left_out,
                    request_id = %req.request_id_for_records().unwrap_or("-".into()),
                    direction = req.direction.as_str(),
                    route = trail.route.as_deref().unwrap_or("-"),
                    user = user(trail),
                    agent = agent(trail),
                    authority = %req.authority_for_records(),
                    path = %req.path_for_records(),
                    grant = trail.grant.as_ref().map_or_else(|| "-".to_string(), |g| g.join(",")),
                    token = trail.fingerprint.as_deref().unwrap_or("-"),
                    "{step}"
                )
            };
        }
        match admitted {
            Some(left_out) => line!(info, left_out),
            None => line!(debug, 0),
        }
    }

    /// A refusal: at `warn` when the caller cannot cure it (5xx: a peer down, a
    /// misconfiguration), else at `info`; over the budget it is only counted, and the
    /// next line says how many were left out. `trail` is `None` when what the decision
    /// learned has already gone into the audit record (the audit log refused it).
    pub(super) fn refused(
        &self,
        req: &RequestFacts,
        trail: Option<&Trail>,
        denial: &Denial,
        refusal: &Refusal,
    ) {
        let none = Trail::default();
        let trail = trail.unwrap_or(&none);
        let Some(left_out) = self.refusals.admit() else {
            return;
        };
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    left_out,
                    request_id = %req.request_id_for_records().unwrap_or("-".into()),
                    direction = req.direction.as_str(),
                    route = trail.route.as_deref().unwrap_or("-"),
                    user = user(trail),
                    agent = agent(trail),
                    authority = %req.authority_for_records(),
                    path = %req.path_for_records(),
                    status = denial.status,
                    reason = denial.reason,
                    detail = %refusal,
                    "refused"
                )
            };
        }
        if denial.status >= 500 {
            line!(warn);
        } else {
            line!(info);
        }
    }
}

/// The user the decision is about (`preferred_username`, else `sub`), `-` before a
/// token was verified.
fn user(trail: &Trail) -> &str {
    trail
        .user
        .as_deref()
        .or(trail.subject.as_deref())
        .unwrap_or("-")
}

/// The agent that acts: the newest of the chain, `-` when there is none.
fn agent(trail: &Trail) -> &str {
    trail.actors.first().map_or("-", String::as_str)
}
