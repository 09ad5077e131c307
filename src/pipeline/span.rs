//! The spans of one decision (docs/observability.md): `actbridge.request` per ext_proc
//! decision — its parent the request's W3C `traceparent` — and one child span per stage:
//! `verify`, `policy`, `exchange`, `credential`. (A wait for a person's approval, when
//! a policy asks for one, belongs in an `approval` stage span around that wait, beside
//! `policy` in `judge.rs`.)
//!
//! Attributes say what the audit record says, less the token fingerprint: direction,
//! method, authority, the path without its query, route, user, the agent chain, grant,
//! decision and reason. Never a token, placeholder, secret, credential, header value or
//! query string.
//!
//! With an exporter, whether a request is traced is decided before its request span is
//! made (`telemetry::sampling`): an untraced request gets no span, and its stages none
//! either (a stage span is made only inside a request span). Without an exporter the
//! spans are at DEBUG level: at the default log level they are never created (one
//! relaxed atomic load per macro), and recording into them returns at once.

use std::future::Future;

use tracing::Span;
use tracing::field::Empty;

use super::decision::Decision;
use super::request::RequestFacts;
use super::trail::Trail;
use crate::telemetry::propagation;
use crate::telemetry::sampling::{HeadSampler, Traced, child_span};

/// The span of one decision on `phase` (`headers` or `body`) of `req`, child of the
/// request's trace context when it carries one; no span when `sampler` says the request
/// is not traced.
pub(super) fn request(req: &RequestFacts, phase: &'static str, sampler: &HeadSampler) -> Span {
    let parent = match sampler.decide(|name| req.header(name)) {
        Traced::No => return Span::none(),
        Traced::Yes { parent } => parent,
        Traced::NotExporting => None,
    };
    let span = tracing::debug_span!(
        "actbridge.request",
        otel.kind = "server",
        direction = req.direction.as_str(),
        phase,
        http.request.method = req.method.as_str(),
        server.address = %req.authority_for_records(),
        url.path = %req.path_for_records(),
        request.id = Empty,
        route = Empty,
        user = Empty,
        actors = Empty,
        grant = Empty,
        decision = Empty,
        reason = Empty,
        http.response.status_code = Empty,
        otel.status_code = Empty,
    );
    if !span.is_disabled() {
        if let Some(id) = req.request_id_for_records() {
            span.record("request.id", id.as_ref());
        }
        if let Some(parent) = parent {
            propagation::adopt(&span, parent);
        }
    }
    span
}

/// Records what the decision learned: route, user, chain (newest first) and grant.
pub(super) fn record_trail(span: &Span, trail: &Trail) {
    if span.is_disabled() {
        return;
    }
    if let Some(route) = &trail.route {
        span.record("route", route.as_str());
    }
    if let Some(user) = trail.user.as_ref().or(trail.subject.as_ref()) {
        span.record("user", user.as_str());
    }
    if !trail.actors.is_empty() {
        span.record("actors", trail.actors.join(","));
    }
    if let Some(grant) = &trail.grant {
        span.record("grant", grant.join(","));
    }
}

/// Records the decision, and for a refusal its reason code and status (a 5xx marks the
/// span as an error).
pub(super) fn record_decision(span: &Span, decision: &Decision) {
    if span.is_disabled() {
        return;
    }
    let verdict = match decision {
        Decision::Continue(_) | Decision::Watch { .. } | Decision::Narrow { .. } => "allow",
        Decision::ReadBody { .. } => "read_body",
        Decision::Respond(_) => "answer",
        Decision::Deny(_) => "deny",
    };
    span.record("decision", verdict);
    if let Decision::Deny(denial) = decision {
        span.record("reason", denial.reason);
        span.record("http.response.status_code", denial.status);
        if denial.status >= 500 {
            span.record("otel.status_code", "error");
        }
    }
}

/// The `verify` stage: the presented token checked (`profile`: inbound or outbound).
pub(super) fn verify(profile: &'static str) -> Span {
    child_span(|| tracing::debug_span!("verify", profile, otel.status_code = Empty))
}

/// The `introspect` stage: the token checked live at `issuer` (RFC 7662, or the cache).
pub(super) fn introspect(issuer: &str) -> Span {
    child_span(|| tracing::debug_span!("introspect", issuer, otel.status_code = Empty))
}

/// The `policy` stage: the policy asked about `route`.
pub(super) fn policy(route: &str) -> Span {
    child_span(|| tracing::debug_span!("policy", route, allow = Empty, otel.status_code = Empty))
}

/// The `approval` stage: the request held for a person.
pub(super) fn approval(route: &str) -> Span {
    child_span(|| tracing::debug_span!("approval", route, otel.status_code = Empty))
}

/// The `exchange` stage: a token for `audience` from the token service (or its cache).
pub(super) fn exchange(audience: &str) -> Span {
    child_span(|| tracing::debug_span!("exchange", audience, otel.status_code = Empty))
}

/// The `credential` stage: backend `name` (of `kind`) applies or vends its credential.
pub(super) fn credential(name: &str, kind: &'static str, operation: &'static str) -> Span {
    child_span(|| {
        tracing::debug_span!(
            "credential",
            credential = name,
            backend = kind,
            operation,
            otel.status_code = Empty
        )
    })
}

/// Runs a stage's future inside `span`, marking the span as an error when it fails.
pub(super) async fn stage<T, E>(
    span: Span,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    use tracing::Instrument;
    let result = work.instrument(span.clone()).await;
    mark_failed(&span, result.is_err());
    result
}

/// Marks a stage's span as an error when the stage `failed`.
pub(super) fn mark_failed(span: &Span, failed: bool) {
    if failed && !span.is_disabled() {
        span.record("otel.status_code", "error");
    }
}

#[cfg(test)]
mod tests;
