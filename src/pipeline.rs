//! The protocol-free decision core: [`RequestFacts`] in, [`Decision`] out.
//!
//! It knows tokens, routes and exchanges, and nothing of Envoy: the same core could
//! serve ext_authz or a plain proxy. Every refusal is a typed [`Refusal`], mapped to a
//! status in exactly one place ([`Refusal::denial`]).

mod agent;
mod bearer;
mod context;
mod credential;
mod decision;
mod decision_log;
mod inbound;
mod judge;
mod log_budget;
mod outbound;
mod refusal;
mod request;
mod routes;
mod rpc;
mod span;
mod trail;
mod vend;

pub use crate::state::approvals::{Hold, NoHold};
pub use decision::{Decision, Denial, Mutations, Reply};
pub use refusal::Refusal;
pub use request::{Direction, RequestError, RequestFacts};
pub use routes::WiringError;
pub use rpc::ToolsNarrowing;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tracing::{Instrument, Span};

use crate::audit::{AuditLog, DecisionRecord};
use crate::config::Config;
use crate::credentials::Credentials;
use crate::introspect::Introspector;
use crate::jwt::Verifier;
use crate::policy::PolicyEngine;
use crate::state::{Approvals, State};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::sampling::HeadSampler;
use context::Context;
use trail::Trail;

/// The decision core, shared by every ext_proc stream.
pub struct Pipeline {
    verifier: Arc<Verifier>,
    policy: Option<Arc<PolicyEngine>>,
    inbound: inbound::Inbound,
    outbound: Option<outbound::Outbound>,
    audit: Option<Arc<AuditLog>>,
    metrics: Arc<Metrics>,
    introspector: Option<Arc<Introspector>>,
    approvals: Option<Arc<Approvals>>,
    rate_limits: Option<Arc<crate::state::rate_limits::RateLimiter>>,
    identity: Option<Arc<crate::spiffe::WorkloadIdentity>>,
    /// Whether a request is traced (`telemetry` / `OTEL_TRACES_SAMPLER`), decided before
    /// its spans are made.
    sampler: HeadSampler,
    /// How many "refused" lines the log takes per second.
    log: decision_log::DecisionLog,
}

impl Pipeline {
    /// Builds the pipeline from a validated config, the loaded policy, the credential
    /// backends and the stores (no I/O). Every route's backend and policy is resolved
    /// here: a route naming a backend `credentials` lacks, or needing a policy when
    /// `policy` is `None`, is a [`WiringError`].
    pub fn new(
        cfg: &Config,
        policy: Option<Arc<PolicyEngine>>,
        credentials: Arc<Credentials>,
        state: &State,
    ) -> Result<Pipeline, WiringError> {
        let agent = cfg
            .outbound
            .as_ref()
            .map(|o| Arc::new(agent::OwnAgent::new(o)));
        let introspector = Introspector::new(cfg).map(Arc::new);
        let verifier = Arc::new(Verifier::new(cfg));
        let metrics = Arc::new(Metrics::new());
        let stores: Vec<Arc<crate::jwt::JwksStore>> = verifier.jwks_stores().cloned().collect();
        metrics.register_jwks(Box::new(move || {
            stores
                .iter()
                .map(|s| (s.issuer().to_string(), s.age()))
                .collect()
        }));
        metrics.register_cache(
            "verified_tokens",
            "jwt_verification",
            verifier.cache_stats().clone(),
        );
        if let Some(i) = &introspector {
            metrics.register_cache("introspection", "introspection", i.cache_stats().clone());
        }
        if let Some(engine) = &policy {
            metrics.register_cache("policy_decisions", "policy", engine.cache_stats().clone());
            let engine = engine.clone();
            metrics.register_policy(Box::new(move || engine.status()));
        }
        if let Some(a) = &agent {
            metrics.register_cache(
                "exchanged_tokens",
                "token_service",
                a.exchanger.cache_stats().clone(),
            );
        }
        if let Some(limits) = state.rate_limits.clone() {
            metrics.register_rate_limits(Box::new(move || limits.counts()));
        }
        for (name, backend) in credentials.named() {
            if let Some(stats) = backend.cache_stats() {
                metrics.register_cache(
                    &format!("credential:{name}"),
                    backend.kind(),
                    stats.clone(),
                );
            }
        }
        let outbound = match (&cfg.outbound, &agent) {
            (Some(o), Some(a)) => Some(outbound::Outbound::new(
                o,
                a.clone(),
                state.clone(),
                credentials,
                policy.as_ref(),
            )?),
            _ => None,
        };
        Ok(Pipeline {
            verifier,
            policy,
            inbound: inbound::Inbound::new(&cfg.inbound, agent, state.clone()),
            outbound,
            audit: None,
            metrics,
            introspector,
            approvals: state.approvals.clone(),
            rate_limits: state.rate_limits.clone(),
            identity: None,
            sampler: HeadSampler::new(&cfg.telemetry),
            log: decision_log::DecisionLog::new(cfg.telemetry.log_allowed),
        })
    }

    /// A decision of `req` starting.
    fn context<'a>(&'a self, req: &'a RequestFacts, hold: &'a dyn Hold) -> Context<'a> {
        let judging = judge::Judging {
            engine: self.policy.as_ref(),
            approvals: self.approvals.as_deref(),
            limits: self.rate_limits.as_deref(),
            hold,
        };
        Context::new(req, &self.verifier, self.introspector.as_deref(), judging)
    }

    /// Drops every cached verification, introspection answer, exchanged token and backend
    /// credential (after a revocation: what was minted for a revoked party must not be
    /// served again, even though the deny list is checked before any cache is used).
    pub fn forget_cached(&self) {
        self.verifier.forget_cached();
        if let Some(i) = &self.introspector {
            i.forget_cached();
        }
        if let Some(outbound) = &self.outbound {
            outbound.agent.exchanger.forget_cached();
            for backend in outbound.credentials.all() {
                backend.forget_cached();
            }
        }
    }

    /// The metrics every decision updates (served at the admin listener's `/metrics`).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Refuses outbound requests while `identity` holds no valid SVID: they would leave
    /// without mTLS (Envoy could not build the upstream TLS context anyway). With
    /// `outbound.tls`, the token endpoint is called with its SVID as client certificate.
    pub fn with_identity(mut self, identity: Arc<crate::spiffe::WorkloadIdentity>) -> Pipeline {
        let id = identity.clone();
        self.metrics
            .register_svid_expiry(Box::new(move || id.material().map(|m| m.expires_at)));
        if let Some(outbound) = &self.outbound {
            outbound.agent.exchanger.use_identity(identity.clone());
        }
        self.identity = Some(identity);
        self
    }

    /// Audits every decision (and every approval step) into `log`.
    pub fn with_audit(mut self, log: Arc<AuditLog>) -> Pipeline {
        if let Some(a) = &self.approvals {
            a.audit_into(log.clone());
        }
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
        self.decide_held(req, &NoHold).await
    }

    /// As [`Pipeline::decide`]; `hold` is told when the decision will wait for a person.
    pub async fn decide_held(&self, req: &RequestFacts, hold: &dyn Hold) -> Decision {
        let span = span::request(req, "headers", &self.sampler);
        // Boxed: the decision's future is several kilobytes, and wrapping it (in the
        // span, then the caller's own future) would copy it each time; one allocation
        // costs less (`make bench-tracing`).
        Box::pin(self.decide_headers(req, hold, &span))
            .instrument(span.clone())
            .await
    }

    async fn decide_headers(&self, req: &RequestFacts, hold: &dyn Hold, span: &Span) -> Decision {
        let started = Instant::now();
        let mut cx = self.context(req, hold);
        let outcome = match req.direction {
            Direction::Inbound => self.inbound.decide(&mut cx).await,
            Direction::Outbound => match &self.outbound {
                _ if self.identity.as_ref().is_some_and(|id| !id.is_ready()) => {
                    Err(Refusal::IdentityUnavailable)
                }
                // Boxed: the outbound decision's future (exchanges, credential backends'
                // calls) is many times the inbound one's, and an inbound decision's
                // future would otherwise be as large, and copied as often.
                Some(outbound) => Box::pin(outbound.decide(&mut cx)).await,
                None => Err(Refusal::OutboundDisabled),
            },
        };
        self.traced_conclusion(span, req, cx.trail, outcome, started)
    }

    /// Decides a request that [`Decision::ReadBody`] asked the body of. `body` is the
    /// whole body, or `None` when it exceeded the limit.
    pub async fn decide_body(&self, req: &RequestFacts, body: Option<&[u8]>) -> Decision {
        self.decide_body_held(req, body, &NoHold).await
    }

    /// As [`Pipeline::decide_body`]; `hold` is told when the decision will wait for a
    /// person.
    pub async fn decide_body_held(
        &self,
        req: &RequestFacts,
        body: Option<&[u8]>,
        hold: &dyn Hold,
    ) -> Decision {
        let span = span::request(req, "body", &self.sampler);
        Box::pin(self.decide_on_body(req, body, hold, &span))
            .instrument(span.clone())
            .await
    }

    async fn decide_on_body(
        &self,
        req: &RequestFacts,
        body: Option<&[u8]>,
        hold: &dyn Hold,
        span: &Span,
    ) -> Decision {
        crate::fault::point("body");
        let started = Instant::now();
        let mut cx = self.context(req, hold);
        let outcome = match (&self.outbound, req.direction) {
            (Some(outbound), Direction::Outbound) => outbound.decide_body(&mut cx, body).await,
            _ => Err(Refusal::BodyUnexpected),
        };
        self.traced_conclusion(span, req, cx.trail, outcome, started)
    }

    /// The `tools/list` result `body` (served as `content_type`) with the tools the
    /// policy would refuse removed; a refusal (502 in JSON-RPC terms) when it cannot be
    /// read or judged: the agent never sees a list nobody judged.
    pub async fn narrow_response(
        &self,
        narrowing: &ToolsNarrowing,
        content_type: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, Denial> {
        crate::fault::point("narrow");
        match narrowing.narrow(content_type, body).await {
            Ok((body, removed)) => {
                tracing::debug!(route = narrowing.route(), removed, "tools/list narrowed");
                Ok(body)
            }
            // Logged, counted and audited as every refusal is.
            Err(refusal) => {
                let fallback = refusal.denial(self.retry_after());
                let started = Instant::now();
                match self.conclude(
                    narrowing.request(),
                    narrowing.trail(),
                    Err(refusal),
                    started,
                ) {
                    Decision::Deny(denial) => Err(denial),
                    // A refusal always concludes in a denial; were it not, still refuse.
                    _ => Err(fallback),
                }
            }
        }
    }

    /// Refuses a request Envoy sent that cannot be read (no direction, a missing
    /// pseudo-header, a path or authority with two readings): logged, counted and
    /// audited like every other refusal, with what is known — its direction, if any.
    pub fn refuse_unreadable(&self, direction: Option<&str>, error: RequestError) -> Denial {
        let refusal = Refusal::from(error);
        let denial = refusal.denial(self.retry_after());
        let direction = direction
            .and_then(Direction::parse)
            .map_or("unknown", Direction::as_str);
        if let Some(left_out) = self.log.refusals.admit() {
            tracing::info!(
                left_out,
                direction,
                status = denial.status,
                reason = denial.reason,
                detail = %refusal,
                "refused an unreadable request"
            );
        }
        self.metrics.refusal(direction, denial.reason);
        self.metrics.decision(direction, "-", "deny");
        let Some(log) = &self.audit else {
            return denial;
        };
        let record = DecisionRecord {
            direction: direction.to_string(),
            decision: "deny".to_string(),
            status: Some(denial.status),
            reason: Some(denial.reason.to_string()),
            detail: Some(refusal.to_string()),
            ..DecisionRecord::default()
        };
        match log.submit(record, SystemTime::now()) {
            Ok(()) => denial,
            Err(e) => Refusal::AuditUnavailable(e).denial(self.retry_after()),
        }
    }

    /// The `Retry-After` of a 503, in seconds: `outbound.retry_after`, its default
    /// without an `outbound` section.
    fn retry_after(&self) -> Option<u64> {
        Some(
            self.outbound
                .as_ref()
                .map_or(crate::config::DEFAULT_RETRY_AFTER.as_secs(), |o| {
                    o.retry_after_secs()
                }),
        )
    }

    /// [`Pipeline::conclude`], recording what was learned and decided in the request's
    /// span.
    fn traced_conclusion(
        &self,
        span: &Span,
        req: &RequestFacts,
        trail: Trail,
        outcome: Result<Decision, Refusal>,
        started: Instant,
    ) -> Decision {
        span::record_trail(span, &trail);
        let decision = self.conclude(req, trail, outcome, started);
        span::record_decision(span, &decision);
        decision
    }

    /// Turns the outcome into the decision, logs it, counts it and audits it. A decision
    /// the audit log cannot take is refused (`audit.on_queue_full: refuse`).
    fn conclude(
        &self,
        req: &RequestFacts,
        trail: Trail,
        outcome: Result<Decision, Refusal>,
        started: Instant,
    ) -> Decision {
        let decision = match outcome {
            Ok(decision) => {
                let step = match &decision {
                    Decision::ReadBody { .. } => "reading body",
                    Decision::Respond(_) => "answered",
                    Decision::Continue(_) | Decision::Watch { .. } | Decision::Narrow { .. } => {
                        "allowed"
                    }
                    // No stage answers a denial (it returns a refusal); were one to, it
                    // is still counted and audited as a denial below.
                    Decision::Deny(_) => "refused",
                };
                self.log.allowed(req, &trail, step);
                decision
            }
            Err(refusal) => {
                let denial = refusal.denial(self.retry_after());
                self.log.refused(req, Some(&trail), &denial, &refusal);
                let denial = match &trail.rpc {
                    Some(rpc) => rpc.render(denial, &refusal),
                    None => self.inbound.challenge(req, denial),
                };
                let detail = Some(refusal.to_string());
                return self.finish(req, trail, Decision::Deny(denial), detail, started);
            }
        };
        self.finish(req, trail, decision, None, started)
    }

    /// Audits and counts a decision; the trail's strings move into the audit record.
    fn finish(
        &self,
        req: &RequestFacts,
        mut trail: Trail,
        decision: Decision,
        detail: Option<String>,
        started: Instant,
    ) -> Decision {
        let timings = std::mem::take(&mut trail.timings);
        let route = trail.route.clone();
        let decision = self.audit(req, trail, decision, detail);
        self.count(req, route.as_deref(), &timings, &decision, started);
        decision
    }

    /// Counts a final decision and its stages' times.
    fn count(
        &self,
        req: &RequestFacts,
        route: Option<&str>,
        timings: &[(crate::telemetry::metrics::Stage, std::time::Duration)],
        decision: &Decision,
        started: Instant,
    ) {
        let direction = req.direction.as_str();
        for (stage, took) in timings {
            self.metrics.stage(direction, Some(*stage), *took);
        }
        let verdict = match decision {
            Decision::ReadBody { .. } => return,
            Decision::Continue(_) | Decision::Watch { .. } | Decision::Narrow { .. } => "allow",
            Decision::Respond(_) => "answer",
            Decision::Deny(d) => {
                self.metrics.refusal(direction, d.reason);
                "deny"
            }
        };
        self.metrics
            .decision(direction, route.unwrap_or("-"), verdict);
        self.metrics.stage(direction, None, started.elapsed());
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
            Decision::Continue(_) | Decision::Watch { .. } | Decision::Narrow { .. } => {
                ("allow", None)
            }
            Decision::Respond(_) => ("answer", None),
            Decision::Deny(d) => ("deny", Some(d)),
        };
        let record = trail.into_record(DecisionRecord {
            request_id: req
                .request_id_for_records()
                .map(std::borrow::Cow::into_owned),
            trace_id: req.trace_id(),
            direction: req.direction.as_str().to_string(),
            method: req.method.clone(),
            authority: req.authority_for_records().into_owned(),
            path: req.path_for_records().into_owned(),
            decision: verdict.to_string(),
            status: denial.map(|d| d.status),
            reason: denial.map(|d| d.reason.to_string()),
            detail,
            ..DecisionRecord::default()
        });
        match log.submit(record, SystemTime::now()) {
            Ok(()) => decision,
            Err(e) => {
                let refusal = Refusal::AuditUnavailable(e);
                let denial = refusal.denial(self.retry_after());
                self.log.refused(req, None, &denial, &refusal);
                Decision::Deny(denial)
            }
        }
    }
}
