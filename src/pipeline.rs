//! The protocol-free decision core: [`RequestFacts`] in, [`Decision`] out.
//!
//! It knows tokens, routes and exchanges, and nothing of Envoy: the same core could
//! serve ext_authz or a plain proxy. Every refusal is a typed [`Refusal`], mapped to a
//! status in exactly one place ([`Refusal::denial`]).

mod agent;
mod bearer;
mod custody;
mod decision;
mod inbound;
mod judge;
mod outbound;
mod refusal;
mod replay;
mod request;

pub use decision::{Decision, Denial, Mutations};
pub use refusal::Refusal;
pub use request::{Direction, RequestError, RequestFacts};

use std::sync::Arc;

use crate::config::Config;
use crate::jwt::Verifier;
use crate::policy::PolicyEngine;

/// The decision core, shared by every ext_proc stream.
pub struct Pipeline {
    verifier: Arc<Verifier>,
    policy: Option<Arc<PolicyEngine>>,
    inbound: inbound::InboundStage,
    outbound: Option<outbound::OutboundStage>,
}

impl Pipeline {
    /// Builds the pipeline from a validated config and the loaded policy (no I/O).
    /// `policy` must be `Some` when the config has a `policy` section.
    pub fn new(cfg: &Config, policy: Option<Arc<PolicyEngine>>) -> Pipeline {
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
                .map(|(o, a)| outbound::OutboundStage::new(o, a, shared)),
        }
    }

    /// The token verifier (its JWKS stores need a refresh task; readiness reads it).
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// Decides one request, and logs the decision once.
    pub async fn decide(&self, req: &RequestFacts) -> Decision {
        let outcome = match req.direction {
            Direction::Inbound => {
                self.inbound
                    .decide(&self.verifier, self.policy.as_deref(), req)
                    .await
            }
            Direction::Outbound => match &self.outbound {
                Some(stage) => {
                    stage
                        .decide(&self.verifier, self.policy.as_deref(), req)
                        .await
                }
                None => Err(Refusal::OutboundDisabled),
            },
        };
        match outcome {
            Ok(allowed) => {
                tracing::debug!(
                    direction = req.direction.as_str(),
                    authority = %req.authority,
                    path = %req.path,
                    route = %allowed.route,
                    subject = allowed.subject.as_deref().unwrap_or("-"),
                    token = allowed.fingerprint.as_deref().unwrap_or("-"),
                    grant = allowed.grant.as_ref().map_or_else(|| "-".to_string(), |g| g.join(",")),
                    "allowed"
                );
                Decision::Continue(allowed.mutations)
            }
            Err(refusal) => Decision::Deny(self.refuse(req, &refusal)),
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

/// What a stage returns when it lets a request through.
pub(crate) struct Allowed {
    mutations: Mutations,
    /// The route (or `inbound` / `bypass`) that let the request through, for the log.
    route: String,
    subject: Option<String>,
    fingerprint: Option<String>,
    /// The policy's grant, when a policy judged the request.
    grant: Option<Vec<String>>,
}
