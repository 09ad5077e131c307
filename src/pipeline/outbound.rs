//! Outbound: match the destination to a route, then exchange the agent's token for one
//! meant for that destination, replace it with a backend's credential, answer a vending
//! request, pass the request through, or refuse it.
//!
//! On `exchange`, `credential` and `vend` routes the token must be a delegation (carry
//! `act`) unless the route allows direct use; the policy judges the chain the
//! destination will receive, and only then is the token service or the backend called.

use std::borrow::Cow;
use std::sync::Arc;

use http::{HeaderName, header::AUTHORIZATION};

use super::agent::OwnAgent;
use super::bearer::{bearer_token, bearer_value};
use super::custody::Custody;
use super::judge::{Judging, Target, judge};
use super::span;
use super::trail::Trail;
use super::{Mutations, Refusal, RequestFacts, Shared, Then, credential, rpc, vend};
use crate::audit::ExchangeFact;
use crate::config::{
    ExchangeTarget, OutboundConfig, RouteAction, RouteConfig, RouteProtocol, TokenRules,
};
use crate::credentials::Credentials;
use crate::jwt::{AudienceProfile, VerifiedToken, Verifier};
use crate::telemetry::metrics::Stage;

pub(super) struct OutboundStage {
    cfg: OutboundConfig,
    pub(super) agent: Arc<OwnAgent>,
    shared: Shared,
    pub(super) credentials: Arc<Credentials>,
}

/// The agent's token, accepted for a route: the token itself (a custody placeholder
/// resolved) and its verified claims.
pub(super) struct Accepted<'r> {
    pub token: Cow<'r, str>,
    pub verified: Arc<VerifiedToken>,
}

impl OutboundStage {
    pub fn new(
        cfg: &OutboundConfig,
        agent: Arc<OwnAgent>,
        shared: Shared,
        credentials: Arc<Credentials>,
    ) -> Self {
        OutboundStage {
            cfg: cfg.clone(),
            agent,
            shared,
            credentials,
        }
    }

    pub fn retry_after_secs(&self) -> u64 {
        self.cfg.retry_after.as_secs().max(1)
    }

    /// The route for `authority`: the first whose host glob matches, else the default.
    fn route(&self, authority: &str) -> (&str, &RouteAction) {
        match self
            .cfg
            .routes
            .iter()
            .find(|r: &&RouteConfig| r.host.matches(authority))
        {
            Some(r) => (r.name.as_str(), &r.action),
            None => ("default", &self.cfg.default_action),
        }
    }

    pub async fn decide(
        &self,
        verifier: &Verifier,
        policy: &Judging<'_>,
        req: &RequestFacts,
        trail: &mut Trail,
    ) -> Result<Then, Refusal> {
        let (name, action) = self.route(&req.authority);
        trail.route(name);
        match action {
            RouteAction::Deny => Err(Refusal::RouteDenied(name.to_string())),
            RouteAction::Passthrough {
                forward_authorization,
            } => self.passthrough(req, *forward_authorization),
            RouteAction::Exchange {
                target,
                rules,
                protocol,
            } => match rpc::on_headers(req, protocol, trail)? {
                Some(read_body) => Ok(read_body),
                None => {
                    self.exchange(verifier, policy, req, (name, target, *rules), trail)
                        .await
                }
            },
            RouteAction::Credential {
                credential, rules, ..
            } => {
                credential::on_headers(
                    self,
                    verifier,
                    policy,
                    req,
                    name,
                    (credential, *rules),
                    trail,
                )
                .await
            }
            RouteAction::Vend { .. } => vend::on_headers(req),
        }
    }

    /// The body phase: a `vend` route, or a `credential` route whose backend asked for
    /// the body. `body` is `None` when it was over the limit.
    pub async fn decide_body(
        &self,
        verifier: &Verifier,
        policy: &Judging<'_>,
        req: &RequestFacts,
        body: Option<&[u8]>,
        trail: &mut Trail,
    ) -> Result<Then, Refusal> {
        let (name, action) = self.route(&req.authority);
        trail.route(name);
        match action {
            RouteAction::Exchange {
                target,
                rules,
                protocol,
            } if *protocol != RouteProtocol::Http => {
                let route = rpc::Route {
                    name,
                    target,
                    rules: *rules,
                    protocol,
                };
                rpc::on_body(self, verifier, policy, req, body, &route, trail).await
            }
            RouteAction::Vend { services, rules } => {
                let ask = vend::parse_body(body)?;
                let accepted = self.accept(verifier, req, name, *rules, trail).await?;
                vend::answer(self, policy, req, (name, services), &ask, accepted, trail).await
            }
            RouteAction::Credential {
                credential, rules, ..
            } => {
                let body = body.ok_or(Refusal::BodyTooLarge)?;
                let backend = credential::backend(self, credential)?;
                let accepted = self.accept(verifier, req, name, *rules, trail).await?;
                let equipping = credential::Equipping {
                    name: credential,
                    backend,
                    accepted,
                    body: Some(body),
                };
                credential::equip(self, policy, req, name, equipping, trail).await
            }
            _ => Err(Refusal::BodyUnexpected),
        }
    }

    fn passthrough(
        &self,
        req: &RequestFacts,
        forward_authorization: bool,
    ) -> Result<Then, Refusal> {
        if forward_authorization && self.shared.custody.is_some() {
            // A placeholder must not leave the pod, even though it is useless outside
            // it: it is refused, so the agent's bug is seen. Every `authorization` value
            // is checked, well-formed or not.
            if req.header_values("authorization").any(Custody::appears_in) {
                return Err(Refusal::PlaceholderMisused);
            }
        }
        Ok(Then::Forward(Mutations {
            set: Vec::new(),
            remove: if forward_authorization {
                Vec::new()
            } else {
                vec![AUTHORIZATION]
            },
        }))
    }

    /// Verifies the agent's token against the route's rules: a custody placeholder is
    /// resolved, a single-use token remembered, a token without `act` refused unless
    /// the route allows direct use, and last, when the route asks, the token checked live
    /// at its issuer.
    pub(super) async fn accept<'r>(
        &self,
        verifier: &Verifier,
        req: &'r RequestFacts,
        route: &str,
        rules: TokenRules,
        trail: &mut Trail,
    ) -> Result<Accepted<'r>, Refusal> {
        let presented = bearer_token(req)?;
        let token = match &self.shared.custody {
            Some(custody) if Custody::is_placeholder(presented) => {
                Cow::Owned(custody.resolve(presented)?)
            }
            _ => Cow::Borrowed(presented),
        };
        let verified = trail
            .timed(
                Stage::Verify,
                span::stage(
                    span::verify("outbound"),
                    verifier.verify(&token, AudienceProfile::Outbound),
                ),
            )
            .await?;
        trail.verified(&verified);
        self.shared
            .revocations
            .check(&verified, Some(self.agent.client_id()))?;
        if rules.single_use {
            self.shared.replay.first_use(&verified)?;
        }
        if verified.actors.is_empty() && !rules.allow_direct_use {
            return Err(Refusal::DelegationRequired(route.to_string()));
        }
        if rules.introspect {
            self.shared.check_live(&token, &verified, trail).await?;
        }
        Ok(Accepted { token, verified })
    }

    async fn exchange(
        &self,
        verifier: &Verifier,
        policy: &Judging<'_>,
        req: &RequestFacts,
        (route, target, rules): (&str, &ExchangeTarget, TokenRules),
        trail: &mut Trail,
    ) -> Result<Then, Refusal> {
        let Accepted { token, verified } = self.accept(verifier, req, route, rules, trail).await?;
        let adds_itself = self.agent.adds_itself(&verified, false);
        let grant = match policy.engine {
            Some(engine) => {
                let target = Target {
                    route,
                    backend: "token_exchange",
                    touches: None,
                    rpc: None,
                };
                let chain = self.agent.next_chain(&verified, adds_itself);
                trail.judged_chain(&chain);
                let granted = trail
                    .timed(
                        Stage::Policy,
                        judge(policy, engine, req, &target, &verified, chain),
                    )
                    .await?;
                Some(granted.grant)
            }
            None => None,
        };
        trail.grant = grant;
        let accepted = Accepted { token, verified };
        let mutations = self
            .issue(&accepted, target, adds_itself, false, trail)
            .await?;
        Ok(Then::Forward(mutations))
    }

    /// Exchanges the accepted token for `target` and returns the mutations that put the
    /// issued token in `authorization`. `single_use`: a fresh token for one call, never
    /// taken from nor put into the cache.
    pub(super) async fn issue(
        &self,
        accepted: &Accepted<'_>,
        target: &ExchangeTarget,
        adds_itself: bool,
        single_use: bool,
        trail: &mut Trail,
    ) -> Result<Mutations, Refusal> {
        let exchanger = &self.agent.exchanger;
        let (token, exp) = (accepted.token.as_ref(), accepted.verified.expires_at);
        let exchange = span::stage(span::exchange(&target.audience), async {
            if single_use {
                exchanger
                    .exchange_fresh(token, exp, target, adds_itself)
                    .await
            } else {
                exchanger.exchange(token, exp, target, adds_itself).await
            }
        });
        let issued = trail.timed(Stage::Exchange, exchange).await?;
        trail.exchange = Some(ExchangeFact {
            audience: target.audience.clone(),
            expires_at: issued.expires_at,
        });
        Ok(Mutations {
            set: vec![(AUTHORIZATION, bearer_value(&issued.access_token)?)],
            remove: vec![HeaderName::from_static("proxy-authorization")],
        })
    }
}
