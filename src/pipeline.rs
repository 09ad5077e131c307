//! The protocol-free decision core: [`RequestFacts`] in, [`Decision`] out.
//!
//! It knows tokens, routes and exchanges, and nothing of Envoy: the same core could
//! serve ext_authz or a plain proxy. Every refusal is a typed [`Refusal`], mapped to a
//! status in exactly one place ([`Refusal::denial`]).

mod agent;
mod bearer;
mod credential;
mod custody;
mod decision;
mod inbound;
mod judge;
mod outbound;
mod refusal;
mod replay;
mod request;
mod span;
mod trail;
mod vend;

pub use decision::{Decision, Denial, Mutations, Reply};
pub use refusal::Refusal;
pub use request::{Direction, RequestError, RequestFacts};

use std::sync::Arc;
use std::time::SystemTime;

use tracing::{Instrument, Span};

use crate::audit::{AuditLog, DecisionRecord};
use crate::config::Config;
use crate::credentials::Credentials;
use crate::jwt::Verifier;
use crate::policy::PolicyEngine;
use trail::Trail;

/// The decision core, shared by every ext_proc stream.
pub struct Pipeline {
    verifier: Arc<Verifier>,
    policy: Option<Arc<PolicyEngine>>,
    inbound: inbound::InboundStage,
    outbound: Option<outbound::OutboundStage>,
    audit: Option<Arc<AuditLog>>,
}

impl Pipeline {
    /// Builds the pipeline from a validated config, the loaded policy and the credential
    /// backends (no I/O). `policy` must be `Some` when the config has a `policy` section,
    /// and `credentials` must hold every backend the config names.
    pub fn new(
        cfg: &Config,
        policy: Option<Arc<PolicyEngine>>,
        credentials: Arc<Credentials>,
    ) -> Pipeline {
        let agent = cfg
            .outbound
            .as_ref()
            .map(|o| Arc::new(agent::OwnAgent::new(o)));
        let shared = Shared {
            replay: Arc::new(replay::ReplayGuard::new(cfg.replay_cache_entries)),
            custody: cfg
                .inbound
                .custody_entries
                .map(|n| Arc::new(custody::Custody::new(n))),
        };
        Pipeline {
            verifier: Arc::new(Verifier::new(cfg)),
            policy,
            inbound: inbound::InboundStage::new(&cfg.inbound, agent.clone(), shared.clone()),
            outbound: cfg
                .outbound
                .as_ref()
                .zip(agent)
                .map(|(o, a)| outbound::OutboundStage::new(o, a, shared, credentials)),
            audit: None,
        }
    }

    /// Audits every decision into `log`.
    pub fn with_audit(mut self, log: Arc<AuditLog>) -> Pipeline {
        self.audit = Some(log);
        self
    }

    /// The token verifier (its JWKS stores need a refresh task; readiness reads it).
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// Decides one request on its headers, and logs (and audits) the decision once,
    /// in the request's span.
    pub async fn decide(&self, req: &RequestFacts) -> Decision {
        let span = span::request(req, "headers");
        self.decide_headers(req, &span)
            .instrument(span.clone())
            .await
    }

    async fn decide_headers(&self, req: &RequestFacts, span: &Span) -> Decision {
        let mut trail = Trail::default();
        let outcome = match req.direction {
            Direction::Inbound => {
                self.inbound
                    .decide(&self.verifier, self.policy.as_deref(), req, &mut trail)
                    .await
            }
            Direction::Outbound => match &self.outbound {
                Some(stage) => {
                    stage
                        .decide(&self.verifier, self.policy.as_deref(), req, &mut trail)
                        .await
                }
                None => Err(Refusal::OutboundDisabled),
            },
        };
        self.traced_conclusion(span, req, trail, outcome)
    }

    /// Decides a request that [`Decision::ReadBody`] asked the body of. `body` is the
    /// whole body, or `None` when it exceeded the limit.
    pub async fn decide_body(&self, req: &RequestFacts, body: Option<&[u8]>) -> Decision {
        let span = span::request(req, "body");
        self.decide_on_body(req, body, &span)
            .instrument(span.clone())
            .await
    }

    async fn decide_on_body(
        &self,
        req: &RequestFacts,
        body: Option<&[u8]>,
        span: &Span,
    ) -> Decision {
        let mut trail = Trail::default();
        let outcome = match (&self.outbound, req.direction) {
            (Some(stage), Direction::Outbound) => {
                stage
                    .decide_body(
                        &self.verifier,
                        self.policy.as_deref(),
                        req,
                        body,
                        &mut trail,
                    )
                    .await
            }
            _ => Err(Refusal::BodyUnexpected),
        };
        self.traced_conclusion(span, req, trail, outcome)
    }

    /// [`Pipeline::conclude`], recording what was learned and decided in the request's
    /// span.
    fn traced_conclusion(
        &self,
        span: &Span,
        req: &RequestFacts,
        trail: Trail,
        outcome: Result<Then, Refusal>,
    ) -> Decision {
        span::record_trail(span, &trail);
        let decision = self.conclude(req, trail, outcome);
        span::record_decision(span, &decision);
        decision
    }

    /// Turns the outcome into the decision, logs it, and audits it. A decision the
    /// audit log cannot take is refused (`audit.on_queue_full: refuse`).
    fn conclude(
        &self,
        req: &RequestFacts,
        trail: Trail,
        outcome: Result<Then, Refusal>,
    ) -> Decision {
        let decision = match outcome {
            Ok(then) => {
                let step = match &then {
                    Then::Forward(_) => "allowed",
                    Then::ReadBody { .. } => "reading body",
                    Then::Respond(_) => "answered",
                };
                tracing::debug!(
                    direction = req.direction.as_str(),
                    authority = %req.authority,
                    path = %req.path,
                    route = trail.route.as_deref().unwrap_or("-"),
                    subject = trail.subject.as_deref().unwrap_or("-"),
                    token = trail.fingerprint.as_deref().unwrap_or("-"),
                    grant = trail.grant.as_ref().map_or_else(|| "-".to_string(), |g| g.join(",")),
                    "{step}"
                );
                match then {
                    Then::Forward(m) => Decision::Continue(m),
                    Then::ReadBody {
                        mutations,
                        max_bytes,
                    } => Decision::ReadBody {
                        max_bytes,
                        mutations,
                    },
                    Then::Respond(reply) => Decision::Respond(reply),
                }
            }
            Err(refusal) => {
                let denial = self.refuse(req, &refusal);
                return self.audit(
                    req,
                    trail,
                    Decision::Deny(denial),
                    Some(refusal.to_string()),
                );
            }
        };
        self.audit(req, trail, decision, None)
    }

    /// Audits a final decision (a body still to be read is not one).
    fn audit(
        &self,
        req: &RequestFacts,
        trail: Trail,
        decision: Decision,
        detail: Option<String>,
    ) -> Decision {
        let Some(log) = &self.audit else {
            return decision;
        };
        let (verdict, denial) = match &decision {
            Decision::ReadBody { .. } => return decision,
            Decision::Continue(_) => ("allow", None),
            Decision::Respond(_) => ("answer", None),
            Decision::Deny(d) => ("deny", Some(d)),
        };
        let record = trail.into_record(DecisionRecord {
            request_id: req.header("x-request-id").map(str::to_string),
            trace_id: req.trace_id(),
            direction: req.direction.as_str().to_string(),
            method: req.method.clone(),
            authority: req.authority.clone(),
            path: req.path_only().to_string(),
            decision: verdict.to_string(),
            status: denial.map(|d| d.status),
            reason: denial.map(|d| d.reason.to_string()),
            detail,
            ..DecisionRecord::default()
        });
        match log.submit(record, SystemTime::now()) {
            Ok(()) => decision,
            Err(e) => Decision::Deny(self.refuse(req, &Refusal::AuditUnavailable(e))),
        }
    }

    fn refuse(&self, req: &RequestFacts, refusal: &Refusal) -> Denial {
        let retry_after = self.outbound.as_ref().map(|o| o.retry_after_secs());
        let denial = refusal.denial(retry_after);
        tracing::info!(
            direction = req.direction.as_str(),
            authority = %req.authority,
            path = %req.path,
            status = denial.status,
            reason = denial.reason,
            detail = %refusal,
            "refused"
        );
        denial
    }
}

/// State both directions use: single-use token memory and token custody (inbound hands
/// out placeholders, outbound resolves them).
#[derive(Clone)]
pub(crate) struct Shared {
    replay: Arc<replay::ReplayGuard>,
    custody: Option<Arc<custody::Custody>>,
}

/// What happens to a request a stage let through.
pub(crate) enum Then {
    /// Forwarded with these mutations.
    Forward(Mutations),
    /// Decided on its body (at most `max_bytes`), these mutations applying meanwhile.
    ReadBody {
        /// Applied while the body is read.
        mutations: Mutations,
        /// Largest body accepted.
        max_bytes: usize,
    },
    /// Answered here.
    Respond(Reply),
}
