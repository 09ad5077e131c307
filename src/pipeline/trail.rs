//! What the core learns about a request while deciding it — the route, the verified
//! user and chain, the grant, the exchange or credential made — for the decision's log
//! line and its audit record. Filled as the stages go, so a refusal is recorded with
//! everything known up to it.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::audit::{CredentialFact, DecisionRecord, ExchangeFact};
use crate::jwt::VerifiedToken;
use crate::policy::ActorInput;
use crate::telemetry::metrics::Stage;

/// The facts of one decision so far.
#[derive(Debug, Default)]
pub(crate) struct Trail {
    pub route: Option<String>,
    pub user: Option<String>,
    pub subject: Option<String>,
    /// The chain the decision is about, newest first (client id, else `sub`).
    pub actors: Vec<String>,
    pub grant: Option<Vec<String>>,
    pub fingerprint: Option<String>,
    pub exchange: Option<ExchangeFact>,
    pub credential: Option<CredentialFact>,
    /// On an agent-protocol route: the protocol, the id to answer with and the calls.
    pub rpc: Option<super::rpc::RpcTrail>,
    /// How long each stage took.
    pub timings: Vec<(Stage, Duration)>,
}

impl Trail {
    /// The route (or `inbound` / `bypass`) deciding the request.
    pub(super) fn route(&mut self, name: &str) {
        self.route = Some(name.to_string());
    }

    /// The presented token verified: who it is for and the chain it carries.
    pub(super) fn verified(&mut self, t: &VerifiedToken) {
        self.user = t.username.clone();
        self.subject = t.subject.clone();
        self.fingerprint = Some(t.fingerprint.clone());
        self.actors = t
            .actors
            .iter()
            .map(|a| {
                a.client_id
                    .clone()
                    .or_else(|| a.sub.clone())
                    .unwrap_or_default()
            })
            .collect();
    }

    /// The chain the policy judged (the one the next hop will see).
    pub(super) fn judged_chain(&mut self, chain: &[ActorInput]) {
        self.actors = chain
            .iter()
            .map(|a| {
                a.client_id
                    .clone()
                    .or_else(|| a.sub.clone())
                    .unwrap_or_default()
            })
            .collect();
    }

    /// Runs `work` as `stage`: timed, inside `span`, the span marked as an error when the
    /// stage fails. Every stage whose span is made by its caller goes through here once;
    /// `policy`, whose spans are made inside, through [`Trail::timed`].
    pub(super) async fn step<T, E>(
        &mut self,
        stage: Stage,
        span: tracing::Span,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        use tracing::Instrument;
        let started = Instant::now();
        let result = work.instrument(span.clone()).await;
        self.timings.push((stage, started.elapsed()));
        super::span::mark_failed(&span, result.is_err());
        result
    }

    /// Runs `work` as `stage`, timing it (its spans are made inside).
    pub(super) async fn timed<T>(&mut self, stage: Stage, work: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = work.await;
        self.timings.push((stage, started.elapsed()));
        out
    }

    /// The audit record's identity part, moved out of the trail (it is the last use);
    /// the caller adds the request and the outcome.
    pub(super) fn into_record(self, record: DecisionRecord) -> DecisionRecord {
        DecisionRecord {
            route: self.route,
            user: self.user,
            subject: self.subject,
            actors: self.actors,
            grant: self.grant,
            token: self.fingerprint,
            exchange: self.exchange,
            credential: self.credential,
            calls: self.rpc.map(|r| r.calls).unwrap_or_default(),
            ..record
        }
    }
}
