//! Inbound: verify the caller's token, judge it, optionally delegate it to this agent,
//! and hand the app the verified identity in headers whose client-sent copies are
//! removed first.

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue};

use super::agent::OwnAgent;
use super::bearer::{bearer_token, bearer_value};
use super::context::{Context, Freshness};
use super::judge::{Target, chain_of};
use super::{Decision, Denial, Mutations, Refusal, Reply, RequestFacts};
use crate::agentproto::a2a;
use crate::config::{InboundConfig, PathMatch};
use crate::jwt::{AudienceProfile, VerifiedToken};
use crate::state::{Custody, State};

pub(super) struct Inbound {
    cfg: InboundConfig,
    /// Set when `delegation` is on (validation guarantees the outbound client exists).
    delegate_to: Option<Arc<OwnAgent>>,
    state: State,
}

impl Inbound {
    pub(super) fn new(cfg: &InboundConfig, agent: Option<Arc<OwnAgent>>, state: State) -> Self {
        Inbound {
            cfg: cfg.clone(),
            delegate_to: agent.filter(|_| cfg.delegation),
            state,
        }
    }

    /// A 401 of an inbound request names the protected resource metadata, when
    /// configured (RFC 9728 §5.1), so an MCP client finds the authorization server.
    pub(super) fn challenge(&self, req: &RequestFacts, mut denial: Denial) -> Denial {
        if let (super::Direction::Inbound, 401, Some(pr), Some(w)) = (
            req.direction,
            denial.status,
            &self.cfg.protected_resource,
            denial.www_authenticate.as_mut(),
        ) {
            w.push_str(&format!(", resource_metadata=\"{}\"", pr.metadata_url));
        }
        denial
    }

    pub(super) async fn decide(&self, cx: &mut Context<'_>) -> Result<Decision, Refusal> {
        let h = &self.cfg.identity_headers;
        // Client copies of the identity headers never reach the app, bypassed or not.
        let remove = vec![
            h.subject.clone(),
            h.username.clone(),
            h.actors.clone(),
            h.grant.clone(),
        ];
        if let Some(served) = self.without_token(cx, &remove) {
            return Ok(served);
        }
        cx.trail.route("inbound");
        let token = bearer_token(cx.req)?;
        let verified = self.accept(cx, token).await?;
        let adds_agent = match &self.delegate_to {
            Some(agent) => agent.adds_itself_exchanging(&verified, true)?,
            None => false,
        };
        let chain = match &self.delegate_to {
            Some(agent) => agent.next_chain(&verified, adds_agent),
            None => chain_of(&verified),
        };
        cx.within_limits("inbound", &verified, &chain, None).await?;
        let grant = match cx.judging.engine {
            Some(engine) => {
                let target = Target {
                    route: "inbound",
                    backend: "app",
                    touches: None,
                    rpc: None,
                };
                cx.trail.judged_chain(&chain);
                Some(cx.judge(engine, &target, &verified, chain).await?.grant)
            }
            None => None,
        };
        cx.trail.grant.clone_from(&grant);
        let mut set = self.identity(&verified)?;
        if let Some(grant) = &grant {
            set.push((h.grant.clone(), header_value(&grant.join(","), "grant")?));
        }
        if let Some(t) = self.app_token(cx, token, &verified, adds_agent).await? {
            set.push((AUTHORIZATION, bearer_value(&t)?));
        }
        Ok(Decision::Continue(Mutations { set, remove }))
    }

    /// What is decided without a token: the protected resource metadata, answered here,
    /// and the bypass paths (the public Agent Card among them), let through with
    /// `remove` applied. `None`: the request needs a token.
    fn without_token(&self, cx: &mut Context<'_>, remove: &[HeaderName]) -> Option<Decision> {
        let req = cx.req;
        let path = req.path_only();
        let reading = matches!(req.method.as_str(), "GET" | "HEAD");
        if let Some(pr) = &self.cfg.protected_resource
            && reading
            && pr.paths.iter().any(|p| p == path)
        {
            // RFC 9728 §3: the metadata is public, served here from config.
            cx.trail.route("protected_resource");
            return Some(Decision::Respond(Reply {
                status: 200,
                body: serde_json::to_vec(&pr.document).unwrap_or_default(),
            }));
        }
        let agent_card = self.cfg.public_agent_card && reading && path == a2a::AGENT_CARD_PATH;
        let bypassed = |p: &PathMatch| p.matches(req.canonical_path());
        if !agent_card && !self.cfg.bypass_paths.iter().any(bypassed) {
            return None;
        }
        cx.trail.route("bypass");
        let mut remove = remove.to_vec();
        if self.state.custody.is_some() {
            // Under custody the app never holds a caller's raw token, on a path that
            // needs none least of all.
            remove.extend([AUTHORIZATION, http::header::PROXY_AUTHORIZATION]);
        }
        Some(Decision::Continue(Mutations {
            set: Vec::new(),
            remove,
        }))
    }

    /// The caller's token, verified and checked: not a placeholder, not revoked, not
    /// replayed on a single-use path or scope, and on an `introspect_paths` path active
    /// at its issuer.
    async fn accept(
        &self,
        cx: &mut Context<'_>,
        token: &str,
    ) -> Result<Arc<VerifiedToken>, Refusal> {
        if self.state.custody.is_some() && Custody::is_placeholder(token) {
            return Err(Refusal::PlaceholderMisused);
        }
        let verified = cx.verify(token, AudienceProfile::Inbound).await?;
        let own = self.delegate_to.as_ref().map(|a| a.client_id());
        self.state.revocations.check(&verified, own)?;
        let canonical = cx.req.canonical_path();
        let capability = verified
            .scopes
            .iter()
            .any(|s| self.cfg.single_use_scopes.iter().any(|g| g.matches(s)));
        if capability
            || self
                .cfg
                .single_use_paths
                .iter()
                .any(|p| p.matches(canonical))
        {
            self.state.replay.first_use(&verified).await?;
        }
        if self
            .cfg
            .introspect_paths
            .iter()
            .any(|p| p.matches(canonical))
        {
            cx.check_live(token, &verified).await?;
        }
        Ok(verified)
    }

    /// The token the app will hold, when it is not the caller's: the delegated one
    /// (`inbound.delegation`), and under custody a placeholder for it.
    async fn app_token(
        &self,
        cx: &mut Context<'_>,
        token: &str,
        verified: &Arc<VerifiedToken>,
        adds_agent: bool,
    ) -> Result<Option<String>, Refusal> {
        let mut app_token: Option<String> = None;
        let mut app_token_exp = verified.expires_at;
        if let Some(agent) = &self.delegate_to {
            // Boxed: the exchange's future (an HTTP call on a cache miss) is large, and
            // every inbound decision's future would otherwise carry its size (the
            // outbound decision is boxed whole, in `Pipeline::decide_headers`).
            let issued = Box::pin(cx.exchange(
                &agent.exchanger,
                (token, verified.expires_at),
                &agent.delegation_target,
                adds_agent,
                Freshness::Cached,
            ))
            .await?;
            app_token = Some(issued.access_token.clone());
            app_token_exp = issued.expires_at;
        }
        if let Some(custody) = &self.state.custody {
            let held = app_token.as_deref().unwrap_or(token);
            app_token = Some(
                custody
                    .placeholder_for(held, app_token_exp, verified)
                    .await?,
            );
        }
        Ok(app_token)
    }

    fn identity(&self, t: &VerifiedToken) -> Result<Vec<(http::HeaderName, HeaderValue)>, Refusal> {
        let h = &self.cfg.identity_headers;
        let mut set = Vec::with_capacity(3);
        if let Some(sub) = &t.subject {
            set.push((h.subject.clone(), header_value(sub, "sub")?));
        }
        if let Some(name) = &t.username {
            set.push((
                h.username.clone(),
                header_value(name, "preferred_username")?,
            ));
        }
        let actors =
            serde_json::to_string(&t.actors).map_err(|_| Refusal::UnforwardableClaim("act"))?;
        set.push((h.actors.clone(), header_value(&actors, "act")?));
        Ok(set)
    }
}

/// A header value from a verified claim; control characters (CR, LF, NUL, …) refuse it.
fn header_value(v: &str, claim: &'static str) -> Result<HeaderValue, Refusal> {
    HeaderValue::from_str(v).map_err(|_| Refusal::UnforwardableClaim(claim))
}
