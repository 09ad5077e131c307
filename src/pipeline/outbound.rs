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
use super::context::{Context, Freshness};
use super::judge::Target;
use super::routes::{Action, Route, WiringError};
use super::trail::Trail;
use super::{Decision, Mutations, Refusal, RequestFacts, credential, rpc, vend};
use crate::authority::{Authority, AuthorityError};
use crate::config::{ExchangeTarget, OutboundConfig, RouteProtocol, TokenRules};
use crate::credentials::Credentials;
use crate::envoy_routes::{DEFAULT_ROUTE, FORWARD_PROXY_CLUSTER};
use crate::jwt::{AudienceProfile, VerifiedToken};
use crate::policy::PolicyEngine;
use crate::state::{Custody, State};

pub(super) struct Outbound {
    routes: Vec<Route>,
    default_action: Action,
    retry_after: std::time::Duration,
    pub(super) agent: Arc<OwnAgent>,
    state: State,
    pub(super) credentials: Arc<Credentials>,
}

/// The agent's token, accepted for a route: the token itself (a custody placeholder
/// resolved) and its verified claims.
pub(super) struct Accepted<'r> {
    pub token: Cow<'r, str>,
    pub verified: Arc<VerifiedToken>,
}

impl Outbound {
    /// The outbound rules for `cfg`'s routes, each backend and policy a route needs
    /// resolved.
    pub(super) fn new(
        cfg: &OutboundConfig,
        agent: Arc<OwnAgent>,
        state: State,
        credentials: Arc<Credentials>,
        policy: Option<&Arc<PolicyEngine>>,
    ) -> Result<Self, WiringError> {
        let (routes, default_action) = super::routes::resolve(cfg, &credentials, policy)?;
        Ok(Outbound {
            routes,
            default_action,
            retry_after: cfg.retry_after,
            agent,
            state,
            credentials,
        })
    }

    pub(super) fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs().max(1)
    }

    /// The route of `req`: its authority read once (an ambiguous one, or a second `host`
    /// header, is refused), the first route whose host matches, else the default. Then
    /// the proxy's choice must be that route, and — when the request goes on — its
    /// cluster the route's: a credential leaves only where it was minted for.
    fn route(&self, req: &RequestFacts, trail: &mut Trail) -> Result<(&str, &Action), Refusal> {
        if req.header_values("host").next().is_some() {
            return Err(Refusal::Authority(AuthorityError::List));
        }
        let authority = Authority::parse(&req.authority)?;
        let (name, action, cluster) =
            match self.routes.iter().find(|r| r.host.matches(&authority.host)) {
                Some(r) => (r.name.as_str(), &r.action, r.cluster.as_deref()),
                None => (DEFAULT_ROUTE, &self.default_action, None),
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
            Action::Deny | Action::Vend { .. } => None,
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

    pub(super) async fn decide(&self, cx: &mut Context<'_>) -> Result<Decision, Refusal> {
        let (name, action) = self.route(cx.req, &mut cx.trail)?;
        match action {
            Action::Deny => Err(Refusal::RouteDenied(name.to_string())),
            Action::Passthrough {
                forward_authorization,
            } => self.passthrough(cx, *forward_authorization),
            Action::Exchange {
                target,
                rules,
                protocol,
            } => match rpc::on_headers(cx.req, protocol, &mut cx.trail)? {
                Some(read_body) => Ok(read_body),
                None => self.exchange(cx, name, target, *rules).await,
            },
            Action::Credential {
                credential,
                policy,
                rules,
            } => {
                let route = credential::Route {
                    name,
                    credential,
                    policy,
                    rules: *rules,
                };
                credential::on_headers(self, cx, &route).await
            }
            Action::Vend { .. } => vend::on_headers(cx.req),
        }
    }

    /// The body phase: a `vend` route, or a `credential` route whose backend asked for
    /// the body. `body` is `None` when it was over the limit.
    pub(super) async fn decide_body(
        &self,
        cx: &mut Context<'_>,
        body: Option<&[u8]>,
    ) -> Result<Decision, Refusal> {
        let (name, action) = self.route(cx.req, &mut cx.trail)?;
        match action {
            Action::Exchange {
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
                rpc::on_body(self, cx, body, &route).await
            }
            Action::Vend {
                services,
                policy,
                rules,
            } => {
                let ask = vend::parse_body(body)?;
                let accepted = self.accept(cx, name, *rules).await?;
                vend::answer(self, cx, (name, services, policy), &ask, accepted).await
            }
            Action::Credential {
                credential,
                policy,
                rules,
            } => {
                let body = body.ok_or(Refusal::BodyTooLarge)?;
                let route = credential::Route {
                    name,
                    credential,
                    policy,
                    rules: *rules,
                };
                let accepted = self.accept(cx, name, *rules).await?;
                credential::equip(self, cx, &route, accepted, Some(body)).await
            }
            Action::Exchange { .. } | Action::Passthrough { .. } | Action::Deny => {
                Err(Refusal::BodyUnexpected)
            }
        }
    }

    fn passthrough(
        &self,
        cx: &Context<'_>,
        forward_authorization: bool,
    ) -> Result<Decision, Refusal> {
        let req = cx.req;
        if forward_authorization {
            // A placeholder must not leave the pod, even though it is useless outside
            // it: it is refused, so the agent's bug is seen. Every `authorization` value
            // is checked, well-formed or not.
            let values = || req.header_values("authorization");
            if self.state.custody.is_some() && values().any(Custody::appears_in) {
                return Err(Refusal::PlaceholderMisused);
            }
            // Nor does a user's token: whatever the scheme, any word of any
            // `authorization` value that is a token of a trusted issuer is refused.
            let holds_user_token = |v: &[u8]| {
                String::from_utf8_lossy(v)
                    .split([' ', ',', '\t'])
                    .any(|w| cx.names_trusted_issuer(w))
            };
            if values().any(holds_user_token) {
                return Err(Refusal::UserTokenWouldLeave);
            }
        }
        Ok(Decision::Continue(Mutations {
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
        cx: &mut Context<'r>,
        route: &str,
        rules: TokenRules,
    ) -> Result<Accepted<'r>, Refusal> {
        let presented = bearer_token(cx.req)?;
        let token = match &self.state.custody {
            Some(custody) if Custody::is_placeholder(presented) => {
                let resolved = custody.resolve(presented).await?;
                // The caller's token the placeholder came from is checked against the
                // deny list too: revoking it (its `jti`, user, agents, issue time)
                // reaches the placeholder, though the held token is another (exchanged).
                self.state
                    .revocations
                    .check(&resolved.origin, Some(self.agent.client_id()))?;
                Cow::Owned(resolved.token)
            }
            _ => Cow::Borrowed(presented),
        };
        let verified = cx.verify(&token, AudienceProfile::Outbound).await?;
        self.state
            .revocations
            .check(&verified, Some(self.agent.client_id()))?;
        if rules.single_use {
            self.state.replay.first_use(&verified).await?;
        }
        if verified.actors.is_empty() && !rules.allow_direct_use {
            return Err(Refusal::DelegationRequired(route.to_string()));
        }
        if rules.introspect {
            cx.check_live(&token, &verified).await?;
        }
        Ok(Accepted { token, verified })
    }

    async fn exchange(
        &self,
        cx: &mut Context<'_>,
        route: &str,
        target: &ExchangeTarget,
        rules: TokenRules,
    ) -> Result<Decision, Refusal> {
        let accepted = self.accept(cx, route, rules).await?;
        let verified = &accepted.verified;
        let adds_itself = self.agent.adds_itself_exchanging(verified, false)?;
        let chain = self.agent.next_chain(verified, adds_itself);
        cx.within_limits(route, verified, &chain, None).await?;
        let grant = match cx.judging.engine {
            Some(engine) => {
                let target = Target {
                    route,
                    backend: "token_exchange",
                    touches: None,
                    rpc: None,
                };
                cx.trail.judged_chain(&chain);
                Some(cx.judge(engine, &target, verified, chain).await?.grant)
            }
            None => None,
        };
        cx.trail.grant = grant;
        let mutations = self
            .issue(cx, &accepted, target, adds_itself, Freshness::Cached)
            .await?;
        Ok(Decision::Continue(mutations))
    }

    /// Exchanges the accepted token for `target` and returns the mutations that put the
    /// issued token in `authorization`.
    pub(super) async fn issue(
        &self,
        cx: &mut Context<'_>,
        accepted: &Accepted<'_>,
        target: &ExchangeTarget,
        adds_itself: bool,
        freshness: Freshness,
    ) -> Result<Mutations, Refusal> {
        let subject = (accepted.token.as_ref(), accepted.verified.expires_at);
        let issued = cx
            .exchange(
                &self.agent.exchanger,
                subject,
                target,
                adds_itself,
                freshness,
            )
            .await?;
        Ok(Mutations {
            set: vec![(AUTHORIZATION, bearer_value(&issued.access_token)?)],
            remove: vec![HeaderName::from_static("proxy-authorization")],
        })
    }
}
