//! Head sampling: whether a request is traced, decided once, before any of its spans
//! exists.
//!
//! The OpenTelemetry SDK decides sampling when a span starts — for a `tracing` span, when
//! it closes, after every attribute has been recorded into it. An unsampled request
//! would pay for its spans (the registry, the span builders, the attributes) and then
//! throw them away. Here the configured sampler (the SDK's own, from the `telemetry`
//! section or `OTEL_TRACES_SAMPLER`) is asked first, with the caller's `traceparent`
//! as the parent: an unsampled request gets no span at all, and the SDK, which then
//! sees only sampled requests, records every span it is given (`AlwaysOn`).
//!
//! A trace that starts here is sampled on a random trace id drawn for the decision;
//! the SDK gives the recorded trace its own id. The share kept is the configured ratio
//! all the same. A trace continued from the caller is sampled on the caller's trace id
//! and flags, so every service with the same rule agrees.

use opentelemetry::Context;
use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample,
};

use super::propagation;
use crate::config::{Root, Sampling, TelemetryConfig};

/// The name the sampler is told (samplers may look at it; the configured ones do not).
const SPAN_NAME: &str = "actbridge.request";

/// Decides, per request, whether its spans are made.
#[derive(Debug, Clone)]
pub struct HeadSampler {
    /// The configured sampler, when spans are exported; `None` without an exporter.
    rule: Option<Sampler>,
}

/// What [`HeadSampler::decide`] answers.
#[derive(Debug)]
pub enum Traced {
    /// No exporter: spans exist only if the log filter asks for them
    /// (`ACTBRIDGE_LOG=actbridge=debug`), as children of nothing the caller sent.
    NotExporting,
    /// Traced: the request's spans are made and exported, under `parent` (the caller's
    /// trace context) when the request carried a valid `traceparent`.
    Yes { parent: Option<Context> },
    /// Not traced: no span is made for this request.
    No,
}

impl HeadSampler {
    /// The sampler for `cfg`: the configured rule when an OTLP endpoint is set.
    pub fn new(cfg: &TelemetryConfig) -> HeadSampler {
        HeadSampler {
            rule: cfg
                .otlp_endpoint
                .is_some()
                .then(|| sdk_sampler(cfg.sampling)),
        }
    }

    /// No exporter: every request is [`Traced::NotExporting`].
    pub fn not_exporting() -> HeadSampler {
        HeadSampler { rule: None }
    }

    /// Whether the request whose headers `header` looks up (by lower-case name; `None`
    /// for a repeated header) is traced.
    pub fn decide<'a>(&self, header: impl Fn(&'static str) -> Option<&'a str>) -> Traced {
        let Some(rule) = &self.rule else {
            return Traced::NotExporting;
        };
        let parent = propagation::incoming(header);
        let trace_id = match &parent {
            Some(cx) => cx.span().span_context().trace_id(),
            None => RandomIdGenerator::default().new_trace_id(),
        };
        let result = rule.should_sample(
            parent.as_ref(),
            trace_id,
            SPAN_NAME,
            &SpanKind::Server,
            &[],
            &[],
        );
        match result.decision {
            SamplingDecision::RecordAndSample => Traced::Yes { parent },
            // RecordOnly spans are never exported; none of the configurable samplers
            // answers it.
            SamplingDecision::Drop | SamplingDecision::RecordOnly => Traced::No,
        }
    }
}

/// The span `make` makes, if the calling code runs inside one of actbridge's spans — a
/// traced request's; else none. Stage and client spans are made this way: under an
/// untraced request (which has no span) they would become traces of their own.
pub fn child_span(make: impl FnOnce() -> tracing::Span) -> tracing::Span {
    let inside = tracing::Span::current()
        .metadata()
        .is_some_and(|m| m.target().starts_with("actbridge"));
    if inside {
        make()
    } else {
        tracing::Span::none()
    }
}

/// The SDK sampler for a configured rule.
fn sdk_sampler(s: Sampling) -> Sampler {
    let root = |r: Root| match r {
        Root::AlwaysOn => Sampler::AlwaysOn,
        Root::AlwaysOff => Sampler::AlwaysOff,
        Root::Ratio(r) => Sampler::TraceIdRatioBased(r),
    };
    match s {
        Sampling::AlwaysOn => Sampler::AlwaysOn,
        Sampling::AlwaysOff => Sampler::AlwaysOff,
        Sampling::Ratio(r) => Sampler::TraceIdRatioBased(r),
        Sampling::ParentBased(r) => Sampler::ParentBased(Box::new(root(r))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(sampling: Sampling) -> HeadSampler {
        HeadSampler::new(&TelemetryConfig {
            otlp_endpoint: Some("http://127.0.0.1:4317".parse().unwrap()),
            sampling,
            ..TelemetryConfig::default()
        })
    }

    fn decide(s: &HeadSampler, traceparent: Option<&str>) -> Traced {
        s.decide(|name| {
            if name == "traceparent" {
                traceparent
            } else {
                None
            }
        })
    }

    const SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const UNSAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

    #[test]
    fn without_an_exporter_nothing_is_decided() {
        let s = HeadSampler::new(&TelemetryConfig::default());
        assert!(matches!(decide(&s, Some(SAMPLED)), Traced::NotExporting));
        assert!(matches!(
            decide(&HeadSampler::not_exporting(), None),
            Traced::NotExporting
        ));
    }

    #[test]
    fn parent_based_follows_the_callers_flag_and_keeps_its_context() {
        let s = sampler(Sampling::ParentBased(Root::AlwaysOff));
        match decide(&s, Some(SAMPLED)) {
            Traced::Yes { parent: Some(cx) } => assert_eq!(
                cx.span().span_context().trace_id().to_string(),
                "4bf92f3577b34da6a3ce929d0e0e4736"
            ),
            other => panic!("a sampled parent is followed: {other:?}"),
        }
        let s = sampler(Sampling::ParentBased(Root::AlwaysOn));
        assert!(matches!(decide(&s, Some(UNSAMPLED)), Traced::No));
        assert!(matches!(decide(&s, None), Traced::Yes { parent: None }));
        // A malformed traceparent is no parent: the root rule decides.
        assert!(matches!(
            decide(&s, Some("00-zz-00f067aa0ba902b7-00")),
            Traced::Yes { parent: None }
        ));
    }

    #[test]
    fn always_rules_ignore_the_caller() {
        assert!(matches!(
            decide(&sampler(Sampling::AlwaysOn), Some(UNSAMPLED)),
            Traced::Yes { parent: Some(_) }
        ));
        assert!(matches!(
            decide(&sampler(Sampling::AlwaysOff), Some(SAMPLED)),
            Traced::No
        ));
    }

    #[test]
    fn a_ratio_keeps_about_that_share_of_new_traces() {
        let s = sampler(Sampling::ParentBased(Root::Ratio(0.25)));
        let kept = (0..4000)
            .filter(|_| matches!(decide(&s, None), Traced::Yes { .. }))
            .count();
        assert!((800..1200).contains(&kept), "kept {kept} of 4000");
        let none = sampler(Sampling::Ratio(0.0));
        assert!((0..100).all(|_| matches!(decide(&none, None), Traced::No)));
    }

    #[test]
    fn a_ratio_on_a_continued_trace_is_decided_by_its_trace_id() {
        let s = sampler(Sampling::Ratio(0.5));
        // The low 64 bits, shifted right once, against 2^62: ...0e4736 is kept, ...ffff not.
        let low = "00-4bf92f3577b34da6000000000000e473-00f067aa0ba902b7-00";
        let high = "00-4bf92f3577b34da6ffffffffffffffff-00f067aa0ba902b7-01";
        for _ in 0..10 {
            assert!(matches!(decide(&s, Some(low)), Traced::Yes { .. }));
            assert!(matches!(decide(&s, Some(high)), Traced::No));
        }
    }
}
