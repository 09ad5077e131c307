//! Inbound: verify the caller's token, judge it, optionally delegate it to this agent,
//! and hand the app the verified identity in headers whose client-sent copies are
//! removed first.

use std::sync::Arc;

use http::HeaderValue;
use http::header::AUTHORIZATION;

use super::agent::OwnAgent;
use super::bearer::{bearer_token, bearer_value};
use super::custody::Custody;
use super::judge::{Judging, Target, chain_of, judge};
use super::span;
use super::trail::Trail;
use super::{Denial, Mutations, Refusal, Reply, RequestFacts, Shared, Then};
use crate::agentproto::a2a;
use crate::audit::ExchangeFact;
use crate::config::{InboundConfig, PathMatch};
use crate::jwt::{AudienceProfile, VerifiedToken, Verifier};
use crate::telemetry::metrics::Stage;

pub(super) struct InboundStage {
    cfg: InboundConfig,
    /// Set when `delegation` is on (validation guarantees the outbound client exists).
    delegate_to: Option<Arc<OwnAgent>>,
    shared: Shared,
}

impl InboundStage {
    pub fn new(cfg: &InboundConfig, agent: Option<Arc<OwnAgent>>, shared: Shared) -> Self {
        InboundStage {
            cfg: cfg.clone(),
            delegate_to: agent.filter(|_| cfg.delegation),
            shared,
        }
    }

    /// A 401 of an inbound request names the protected resource metadata, when
    /// configured (RFC 9728 §5.1), so an MCP client finds the authorization server.
    pub fn challenge(&self, req: &RequestFacts, mut denial: Denial) -> Denial {
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

    pub async fn decide(
        &self,
        verifier: &Verifier,
        policy: &Judging<'_>,
        req: &RequestFacts,
        trail: &mut Trail,
    ) -> Result<Then, Refusal> {
        let h = &self.cfg.identity_headers;
        // Client copies of the identity headers never reach the app, bypassed or not.
        let remove = vec![
            h.subject.clone(),
            h.username.clone(),
            h.actors.clone(),
            h.grant.clone(),
        ];
        let path = req.path_only();
        let canonical = req.canonical_path();
        let reading = matches!(req.method.as_str(), "GET" | "HEAD");
        if let Some(pr) = &self.cfg.protected_resource
            && reading
            && pr.paths.iter().any(|p| p == path)
        {
            // RFC 9728 §3: the metadata is public, served here from config.
            trail.route("protected_resource");
            return Ok(Then::Respond(Reply {
                status: 200,
                body: serde_json::to_vec(&pr.document).unwrap_or_default(),
            }));
        }
        let agent_card = self.cfg.public_agent_card && reading && path == a2a::AGENT_CARD_PATH;
        if agent_card
            || self
                .cfg
                .bypass_paths
                .iter()
                .any(|p: &PathMatch| p.matches(canonical))
        {
            trail.route("bypass");
            let mut remove = remove;
            if self.shared.custody.is_some() {
                // Under custody the app never holds a caller's raw token, on a path
                // that needs none least of all.
                remove.extend([AUTHORIZATION, http::header::PROXY_AUTHORIZATION]);
            }
            return Ok(Then::Forward(Mutations {
                set: Vec::new(),
                remove,
            }));
        }
        trail.route("inbound");
        let token = bearer_token(req)?;
        if self.shared.custody.is_some() && Custody::is_placeholder(token) {
            return Err(Refusal::PlaceholderMisused);
        }
        let verified = trail
            .timed(
                Stage::Verify,
                span::stage(
                    span::verify("inbound"),
                    verifier.verify(token, AudienceProfile::Inbound),
                ),
            )
            .await?;
        trail.verified(&verified);
        let own = self.delegate_to.as_ref().map(|a| a.client_id());
        self.shared.revocations.check(&verified, own)?;
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
            self.shared.replay.first_use(&verified)?;
        }
        if self
            .cfg
            .introspect_paths
            .iter()
            .any(|p| p.matches(canonical))
        {
            self.shared.check_live(token, &verified, trail).await?;
        }
        let adds_agent = self
            .delegate_to
            .as_ref()
            .is_some_and(|a| a.adds_itself(&verified, true));
        let grant = match policy.engine {
            Some(engine) => {
                let target = Target {
                    route: "inbound",
                    backend: "app",
                    touches: None,
                    rpc: None,
                };
                let chain = match &self.delegate_to {
                    Some(agent) => agent.next_chain(&verified, adds_agent),
                    None => chain_of(&verified),
                };
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
        trail.grant.clone_from(&grant);
        let mut set = self.identity(&verified)?;
        if let Some(grant) = &grant {
            set.push((h.grant.clone(), header_value(&grant.join(","), "grant")?));
        }
        // The token the app will hold, when it is not the caller's: the delegated one,
        // and under custody a placeholder for it.
        let mut app_token: Option<String> = None;
        let mut app_token_exp = verified.expires_at;
        if let Some(agent) = &self.delegate_to {
            let exchange = span::stage(
                span::exchange(&agent.delegation_target.audience),
                agent.exchanger.exchange(
                    token,
                    verified.expires_at,
                    &agent.delegation_target,
                    adds_agent,
                ),
            );
            // Boxed: the exchange's future (an HTTP call on a cache miss) is large, and
            // every inbound decision's future would otherwise carry its size.
            let issued = trail.timed(Stage::Exchange, Box::pin(exchange)).await?;
            app_token = Some(issued.access_token.clone());
            app_token_exp = issued.expires_at;
            trail.exchange = Some(ExchangeFact {
                audience: agent.delegation_target.audience.clone(),
                expires_at: issued.expires_at,
            });
        }
        if let Some(custody) = &self.shared.custody {
            let held = app_token.as_deref().unwrap_or(token);
            app_token = Some(custody.placeholder_for(held, app_token_exp, &verified));
        }
        if let Some(t) = &app_token {
            set.push((AUTHORIZATION, bearer_value(t)?));
        }
        Ok(Then::Forward(Mutations { set, remove }))
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
