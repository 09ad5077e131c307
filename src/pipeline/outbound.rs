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
use crate::authority::{Authority, AuthorityError};
use crate::config::{
    ExchangeTarget, OutboundConfig, RouteAction, RouteConfig, RouteProtocol, TokenRules,
};
use crate::credentials::Credentials;
use crate::envoy_routes::{DEFAULT_ROUTE, FORWARD_PROXY_CLUSTER};
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

    /// The route of `req`: its authority read once (an ambiguous one, or a second `host`
    /// header, is refused), the first route whose host matches, else the default. Then
    /// the proxy's choice must be that route, and — when the request goes on — its
    /// cluster the route's: a credential leaves only where it was minted for.
    fn route(
        &self,
        req: &RequestFacts,
        trail: &mut Trail,
    ) -> Result<(&str, &RouteAction), Refusal> {
        if req.header_values("host").next().is_some() {
            return Err(Refusal::Authority(AuthorityError::List));
        }
        let authority = Authority::parse(&req.authority)?;
        let (name, action, cluster) = match self
            .cfg
            .routes
            .iter()
            .find(|r: &&RouteConfig| r.host.matches(&authority.host))
        {
            Some(r) => (r.name.as_str(), &r.action, r.cluster.as_deref()),
            None => (DEFAULT_ROUTE, &self.cfg.default_action, None),
        };
        trail.route(name);
        let chosen = req
            .proxy_route
            .as_deref()
            .ok_or(Refusal::ProxyRouteUnknown)?;
        if chosen != name {
            return Err(Refusal::RouteMismatch {
                judged: name.to_string(),
                chosen: chosen.to_string(),
            });
        }
        let leaves_by = match action {
            RouteAction::Deny | RouteAction::Vend { .. } => None,
            _ => Some(cluster.unwrap_or(FORWARD_PROXY_CLUSTER)),
        };
        if let Some(expected) = leaves_by
            && req.proxy_cluster.as_deref() != Some(expected)
        {
            return Err(Refusal::RouteMismatch {
                judged: format!("{name} (cluster {expected})"),
                chosen: format!(
                    "{chosen} (cluster {})",
                    req.proxy_cluster.as_deref().unwrap_or("none")
                ),
            });
        }
        Ok((name, action))
    }

    pub async fn decide(
        &self,
        verifier: &Verifier,
        policy: &Judging<'_>,
        req: &RequestFacts,
        trail: &mut Trail,
    ) -> Result<Then, Refusal> {
        let (name, action) = self.route(req, trail)?;
        match action {
            RouteAction::Deny => Err(Refusal::RouteDenied(name.to_string())),
            RouteAction::Passthrough {
                forward_authorization,
            } => self.passthrough(verifier, req, *forward_authorization),
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
        let (name, action) = self.route(req, trail)?;
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
        verifier: &Verifier,
        req: &RequestFacts,
        forward_authorization: bool,
    ) -> Result<Then, Refusal> {
        if forward_authorization {
            // A placeholder must not leave the pod, even though it is useless outside
            // it: it is refused, so the agent's bug is seen. Every `authorization` value
            // is checked, well-formed or not.
            let values = || req.header_values("authorization");
            if self.shared.custody.is_some() && values().any(Custody::appears_in) {
                return Err(Refusal::PlaceholderMisused);
            }
            // Nor does a user's token: whatever the scheme, any word of any
            // `authorization` value that is a token of a trusted issuer is refused.
            let holds_user_token = |v: &[u8]| {
                String::from_utf8_lossy(v)
                    .split([' ', ',', '\t'])
                    .any(|w| verifier.names_trusted_issuer(w))
            };
            if values().any(holds_user_token) {
                return Err(Refusal::UserTokenWouldLeave);
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
                let resolved = custody.resolve(presented)?;
                // The caller's token the placeholder came from is checked against the
                // deny list too: revoking it (its `jti`, user, agents, issue time)
                // reaches the placeholder, though the held token is another (exchanged).
                self.shared
                    .revocations
                    .check(&resolved.origin, Some(self.agent.client_id()))?;
                Cow::Owned(resolved.token)
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
