//! Outbound: match the destination to a route, then exchange the agent's token for one
//! meant for that destination, pass the request through, or refuse it.
//!
//! On an `exchange` route the token must be a delegation (carry `act`) unless the route
//! allows direct use; the policy judges the chain the destination will receive, and only
//! then is the token service called.

use http::{HeaderName, header::AUTHORIZATION};

use std::sync::Arc;

use super::agent::OwnAgent;
use super::bearer::{bearer_token, bearer_value};
use super::custody::Custody;
use super::judge::{Target, judge};
use super::{Allowed, Mutations, Refusal, RequestFacts, Shared};
use crate::config::{ExchangeTarget, OutboundConfig, RouteAction, RouteConfig};
use crate::jwt::{AudienceProfile, Verifier};
use crate::policy::PolicyEngine;

pub(super) struct OutboundStage {
    cfg: OutboundConfig,
    agent: Arc<OwnAgent>,
    shared: Shared,
}

impl OutboundStage {
    pub fn new(cfg: &OutboundConfig, agent: Arc<OwnAgent>, shared: Shared) -> Self {
        OutboundStage {
            cfg: cfg.clone(),
            agent,
            shared,
        }
    }

    pub fn retry_after_secs(&self) -> u64 {
        self.cfg.retry_after.as_secs().max(1)
    }

    /// The first route whose host glob matches the authority.
    fn route(&self, authority: &str) -> Option<&RouteConfig> {
        self.cfg.routes.iter().find(|r| r.host.matches(authority))
    }

    pub async fn decide(
        &self,
        verifier: &Verifier,
        policy: Option<&PolicyEngine>,
        req: &RequestFacts,
    ) -> Result<Allowed, Refusal> {
        let (name, action) = match self.route(&req.authority) {
            Some(r) => (r.name.as_str(), &r.action),
            None => ("default", &self.cfg.default_action),
        };
        match action {
            RouteAction::Deny => Err(Refusal::RouteDenied(name.to_string())),
            RouteAction::Passthrough {
                forward_authorization,
            } => {
                if *forward_authorization && self.shared.custody.is_some() {
                    // A placeholder must not leave the pod, even though it is useless
                    // outside it: it is refused, so the agent's bug is seen. Every
                    // `authorization` value is checked, well-formed or not.
                    if req.header_values("authorization").any(Custody::appears_in) {
                        return Err(Refusal::PlaceholderMisused);
                    }
                }
                Ok(Allowed {
                    mutations: Mutations {
                        set: Vec::new(),
                        remove: if *forward_authorization {
                            Vec::new()
                        } else {
                            vec![AUTHORIZATION]
                        },
                    },
                    route: name.to_string(),
                    subject: None,
                    fingerprint: None,
                    grant: None,
                })
            }
            RouteAction::Exchange {
                target,
                allow_direct_use,
                single_use,
            } => {
                let rules = RouteRules {
                    allow_direct_use: *allow_direct_use,
                    single_use: *single_use,
                };
                self.exchange(verifier, policy, req, name, target, rules)
                    .await
            }
        }
    }

    async fn exchange(
        &self,
        verifier: &Verifier,
        policy: Option<&PolicyEngine>,
        req: &RequestFacts,
        route: &str,
        target: &ExchangeTarget,
        rules: RouteRules,
    ) -> Result<Allowed, Refusal> {
        let presented = bearer_token(req)?;
        let resolved = match &self.shared.custody {
            Some(custody) if Custody::is_placeholder(presented) => {
                Some(custody.resolve(presented)?)
            }
            _ => None,
        };
        let token = resolved.as_deref().unwrap_or(presented);
        let verified = verifier.verify(token, AudienceProfile::Outbound).await?;
        if rules.single_use {
            self.shared.replay.first_use(&verified)?;
        }
        if verified.actors.is_empty() && !rules.allow_direct_use {
            return Err(Refusal::DelegationRequired(route.to_string()));
        }
        let adds_itself = self.agent.adds_itself(&verified, false);
        let grant = match policy {
            Some(engine) => {
                let target = Target {
                    route,
                    backend: "token_exchange",
                };
                let chain = self.agent.next_chain(&verified, adds_itself);
                Some(judge(engine, req, &target, &verified, chain).await?)
            }
            None => None,
        };
        let issued = self
            .agent
            .exchanger
            .exchange(token, verified.expires_at, target, adds_itself)
            .await?;
        Ok(Allowed {
            mutations: Mutations {
                set: vec![(AUTHORIZATION, bearer_value(&issued.access_token)?)],
                remove: vec![HeaderName::from_static("proxy-authorization")],
            },
            route: route.to_string(),
            subject: verified.subject.clone(),
            fingerprint: Some(verified.fingerprint.clone()),
            grant,
        })
    }
}

/// An exchange route's rules about the token it accepts.
#[derive(Clone, Copy)]
struct RouteRules {
    allow_direct_use: bool,
    single_use: bool,
}
