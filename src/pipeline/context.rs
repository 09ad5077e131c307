//! One decision in progress: the request, what decides it, and what has been learned so
//! far (the [`Trail`]). Its methods are the stages every route shares — verify, check
//! live, judge, exchange — each timed and traced once, by [`Trail::step`].

use std::sync::Arc;

use super::judge::{Granted, Judging, Target, judge};
use super::trail::Trail;
use super::{Refusal, RequestFacts, span};
use crate::audit::ExchangeFact;
use crate::config::ExchangeTarget;
use crate::exchange::{Exchanger, IssuedToken};
use crate::introspect::{IntrospectError, Introspector};
use crate::jwt::{AudienceProfile, VerifiedToken, Verifier};
use crate::policy::{ActorInput, PolicyEngine};
use crate::state::rate_limits::Caller;
use crate::telemetry::metrics::Stage;

/// One decision in progress.
pub(super) struct Context<'a> {
    /// The request decided.
    pub req: &'a RequestFacts,
    verifier: &'a Verifier,
    introspector: Option<&'a Introspector>,
    /// The policy, the approvals and the protocol's hold.
    pub judging: Judging<'a>,
    /// What has been learned, for the log, the span, the metrics and the audit record.
    pub trail: Trail,
}

/// How an exchange is made: from the cache (and into it), or fresh for one call.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Freshness {
    /// Taken from the exchanged-token cache when there, put into it when not.
    Cached,
    /// A token for one call: never taken from nor put into the cache.
    SingleUse,
}

impl<'a> Context<'a> {
    pub(super) fn new(
        req: &'a RequestFacts,
        verifier: &'a Verifier,
        introspector: Option<&'a Introspector>,
        judging: Judging<'a>,
    ) -> Context<'a> {
        Context {
            req,
            verifier,
            introspector,
            judging,
            trail: Trail::default(),
        }
    }

    /// The `verify` stage: `token` checked for `profile`, what it says noted.
    pub(super) async fn verify(
        &mut self,
        token: &str,
        profile: AudienceProfile,
    ) -> Result<Arc<VerifiedToken>, Refusal> {
        let span = span::verify(match profile {
            AudienceProfile::Inbound => "inbound",
            AudienceProfile::Outbound => "outbound",
            AudienceProfile::Admin => "admin",
        });
        let verifying = self.verifier.verify(token, profile);
        let verified = self.trail.step(Stage::Verify, span, verifying).await?;
        self.trail.verified(&verified);
        Ok(verified)
    }

    /// Whether `word` is a token of an issuer this sidecar trusts (it must not leave).
    pub(super) fn names_trusted_issuer(&self, word: &str) -> bool {
        self.verifier.names_trusted_issuer(word)
    }

    /// The `introspect` stage: `token` (verified as `verified`) refused unless its
    /// issuer says it is active.
    pub(super) async fn check_live(
        &mut self,
        token: &str,
        verified: &VerifiedToken,
    ) -> Result<(), Refusal> {
        let Some(introspector) = self.introspector else {
            return Err(Refusal::Introspection(IntrospectError::NotConfigured));
        };
        let span = span::introspect(&verified.issuer);
        let checking = introspector.check(token, verified);
        self.trail.step(Stage::Introspect, span, checking).await?;
        Ok(())
    }

    /// The rate limits (`rate_limits`): the request by `verified`'s user, for `chain`
    /// (newest first), to `route` — calling `tool` on an MCP route — counted, and
    /// refused when a limit is used up. Checked before the policy is asked, so a caller
    /// over its limit costs no decision.
    pub(super) async fn within_limits(
        &mut self,
        route: &str,
        verified: &VerifiedToken,
        chain: &[ActorInput],
        tool: Option<&str>,
    ) -> Result<(), Refusal> {
        let Some(limits) = self.judging.limits else {
            return Ok(());
        };
        let agent = chain.first().map(ActorInput::id);
        let caller = Caller {
            route,
            user: verified.username.as_deref().or(verified.subject.as_deref()),
            agent: agent.as_deref(),
            tool,
        };
        Ok(limits.check(&caller).await?)
    }

    /// The `policy` stage: `engine` (and a person, when it asks) judges the request to
    /// `target` for `chain`, the chain the destination will see, newest first.
    pub(super) async fn judge(
        &mut self,
        engine: &PolicyEngine,
        target: &Target<'_>,
        verified: &VerifiedToken,
        chain: Vec<ActorInput>,
    ) -> Result<Granted, Refusal> {
        // Its spans (`policy`, and `approval` beside it) are made inside.
        let judging = judge(&self.judging, engine, self.req, target, verified, chain);
        self.trail.timed(Stage::Policy, judging).await
    }

    /// The `exchange` stage: `token` (expiring at `expires_at`) exchanged by `exchanger`
    /// for `target`, the fact noted.
    pub(super) async fn exchange(
        &mut self,
        exchanger: &Exchanger,
        (token, expires_at): (&str, u64),
        target: &ExchangeTarget,
        adds_itself: bool,
        freshness: Freshness,
    ) -> Result<Arc<IssuedToken>, Refusal> {
        let span = span::exchange(&target.audience);
        let exchanging = async move {
            match freshness {
                Freshness::Cached => {
                    exchanger
                        .exchange(token, expires_at, target, adds_itself)
                        .await
                }
                Freshness::SingleUse => {
                    exchanger
                        .exchange_fresh(token, expires_at, target, adds_itself)
                        .await
                }
            }
        };
        let issued = self.trail.step(Stage::Exchange, span, exchanging).await?;
        self.trail.exchange = Some(ExchangeFact {
            audience: target.audience.clone(),
            expires_at: issued.expires_at,
        });
        Ok(issued)
    }
}
