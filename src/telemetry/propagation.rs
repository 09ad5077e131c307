//! W3C Trace Context (`traceparent`, `tracestate`): taken from a request as the parent of
//! its span, and given to the calls made under a span (the token service, credential
//! backends) so their work joins the same trace.
//!
//! Both work only while spans are exported (an OTLP endpoint is configured): without an
//! exporter no span has an OpenTelemetry context, nothing is parsed and no header is
//! added. The request's own `traceparent` still reaches the destination through Envoy.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The headers W3C Trace Context reads and writes.
const FIELDS: [&str; 2] = ["traceparent", "tracestate"];

/// The trace context headers of a request.
struct Incoming<'a>([Option<&'a str>; 2]);

impl Extractor for Incoming<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let i = FIELDS.iter().position(|f| f.eq_ignore_ascii_case(key))?;
        self.0[i]
    }

    fn keys(&self) -> Vec<&str> {
        FIELDS.to_vec()
    }
}

/// The caller's trace context from a request's headers (`header` looks a header up by
/// its lower-case name; it must answer `None` for a repeated header): `None` when
/// `traceparent` is missing or malformed.
pub fn incoming<'a>(header: impl Fn(&'static str) -> Option<&'a str>) -> Option<Context> {
    let carrier = Incoming(FIELDS.map(header));
    let cx = TraceContextPropagator::new().extract_with_context(&Context::new(), &carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

/// Makes `parent` (from [`incoming`]) the parent of `span`. Call it before the span is
/// entered or has children.
pub fn adopt(span: &Span, parent: Context) {
    if span.is_disabled() {
        return;
    }
    // Fails only when no trace layer is installed: then there is nothing to join.
    let _ = span.set_parent(parent);
}

/// The headers that carry the current span's trace context to a call made under it:
/// `traceparent` (this trace, the current span as the parent) and `tracestate` when the
/// caller sent one. Empty when spans are not exported.
pub fn outgoing() -> Vec<(&'static str, String)> {
    let span = Span::current();
    if span.is_disabled() {
        return Vec::new();
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut out = Outgoing(Vec::with_capacity(2));
    TraceContextPropagator::new().inject_context(&cx, &mut out);
    out.0
}

struct Outgoing(Vec<(&'static str, String)>);

impl Injector for Outgoing {
    fn set(&mut self, key: &str, value: String) {
        // The propagator writes an empty `tracestate` when there is none.
        if value.is_empty() {
            return;
        }
        if let Some(name) = FIELDS.iter().find(|f| f.eq_ignore_ascii_case(key)) {
            self.0.push((name, value));
        }
    }
}
