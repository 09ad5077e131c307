//! The request span as exported: parented on the request's `traceparent`, the stage
//! spans under it, the context handed to outgoing calls, and no secret in any attribute.

use std::sync::{Arc, Mutex};

use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;

use super::*;
use crate::pipeline::Refusal;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
const QUERY_SECRET: &str = "q-s3cr3t";

/// Keeps every exported span.
#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collect {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        self.0.lock().unwrap().extend(batch);
        std::future::ready(Ok(()))
    }
}

fn facts() -> RequestFacts {
    facts_flagged("01")
}

/// The request, its `traceparent` carrying the caller's `flags` (`01`: sampled).
fn facts_flagged(flags: &str) -> RequestFacts {
    let headers = [
        (":authority", "document-service".to_string()),
        (":method", "GET".to_string()),
        (
            ":path",
            format!("/documents/DOC-1?access_token={QUERY_SECRET}"),
        ),
        ("authorization", format!("Bearer {TOKEN}")),
        ("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-{flags}")),
        ("x-request-id", "req-1".to_string()),
    ];
    RequestFacts::new(
        Some("outbound"),
        headers
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_bytes()))
            .collect(),
    )
    .unwrap()
}

/// Runs `f` under a subscriber exporting every span, and returns what was exported.
fn exported(f: impl FnOnce()) -> Vec<SpanData> {
    let collect = Collect::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(collect.clone())
        .build();
    // The layer `serve` installs.
    let layer = crate::telemetry::traces::layer(provider.tracer("test"));
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, f);
    collect.0.lock().unwrap().clone()
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// The sampler of a pipeline exporting every trace whose caller did not say otherwise
/// (the default).
fn exporting() -> HeadSampler {
    HeadSampler::new(&crate::config::TelemetryConfig {
        otlp_endpoint: Some("http://127.0.0.1:4317".parse().unwrap()),
        ..crate::config::TelemetryConfig::default()
    })
}

#[test]
fn the_request_span_joins_the_callers_trace_and_carries_no_secret() {
    let req = facts();
    let mut outgoing = Vec::new();
    let spans = exported(|| {
        let span = request(&req, "headers", &exporting());
        span.in_scope(|| {
            verify("outbound").in_scope(|| outgoing = propagation::outgoing());
        });
        let trail = Trail {
            route: Some("document-service".into()),
            user: Some("alice".into()),
            subject: Some("alice-sub".into()),
            actors: vec![
                "spiffe://demo/agent/a".into(),
                "spiffe://demo/agent/b".into(),
            ],
            grant: Some(vec!["engineering".into(), "finance".into()]),
            fingerprint: Some("0011223344556677".into()),
            ..Trail::default()
        };
        record_trail(&span, &trail);
        let denial = Refusal::Exchange(crate::exchange::ExchangeError::Unavailable("down".into()))
            .denial(Some(7));
        record_decision(&span, &Decision::Deny(denial));
    });
    let request_span = spans
        .iter()
        .find(|s| s.name == "actbridge.request")
        .expect("the request span");
    let verify_span = spans.iter().find(|s| s.name == "verify").expect("verify");

    assert_eq!(request_span.span_context.trace_id().to_string(), TRACE_ID);
    assert_eq!(request_span.parent_span_id.to_string(), PARENT_ID);
    assert!(request_span.parent_span_is_remote);
    assert_eq!(request_span.span_kind, SpanKind::Server);
    assert_eq!(verify_span.span_context.trace_id().to_string(), TRACE_ID);
    assert_eq!(
        verify_span.parent_span_id,
        request_span.span_context.span_id()
    );
    // A call made under the stage names the stage as its parent, in the same trace.
    assert_eq!(
        outgoing,
        vec![(
            "traceparent",
            format!("00-{TRACE_ID}-{}-01", verify_span.span_context.span_id())
        )]
    );

    for (key, want) in [
        ("direction", "outbound"),
        ("http.request.method", "GET"),
        ("server.address", "document-service"),
        ("url.path", "/documents/DOC-1"),
        ("request.id", "req-1"),
        ("route", "document-service"),
        ("user", "alice"),
        ("actors", "spiffe://demo/agent/a,spiffe://demo/agent/b"),
        ("grant", "engineering,finance"),
        ("decision", "deny"),
        ("reason", "sts_unavailable"),
        ("http.response.status_code", "503"),
    ] {
        assert_eq!(attribute(request_span, key).as_deref(), Some(want), "{key}");
    }
    assert!(matches!(request_span.status, Status::Error { .. }));
    for span in &spans {
        for kv in &span.attributes {
            let v = kv.value.to_string();
            assert!(
                !v.contains(TOKEN) && !v.contains(QUERY_SECRET) && !v.contains('?'),
                "{} = {v} holds a secret or a query",
                kv.key
            );
            assert!(
                !v.contains("0011223344556677"),
                "no token fingerprint either"
            );
        }
    }
}

#[test]
fn without_a_valid_traceparent_the_request_starts_a_trace() {
    for bad in [
        "",
        "00-zz-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    ] {
        let mut h: Vec<(String, Vec<u8>)> = vec![
            (":authority".into(), b"a".to_vec()),
            (":method".into(), b"GET".to_vec()),
            (":path".into(), b"/".to_vec()),
        ];
        if !bad.is_empty() {
            h.push(("traceparent".into(), bad.as_bytes().to_vec()));
        }
        let req = RequestFacts::new(Some("inbound"), h).unwrap();
        let spans = exported(|| drop(request(&req, "headers", &exporting())));
        assert_eq!(spans.len(), 1);
        assert_eq!(
            spans[0].parent_span_id,
            opentelemetry::trace::SpanId::INVALID,
            "{bad}"
        );
    }
}

#[test]
fn an_untraced_request_makes_no_span_not_even_its_stages() {
    // The caller did not sample the trace; the default rule follows it.
    let req = facts_flagged("00");
    let spans = exported(|| {
        let span = request(&req, "headers", &exporting());
        assert!(span.is_disabled(), "no request span");
        span.in_scope(|| {
            drop(verify("outbound"));
            drop(policy("document-service"));
            drop(exchange("document-service"));
        });
        // Nor is a stage span made outside any request.
        drop(credential("aws", "aws_sts", "apply"));
    });
    assert!(spans.is_empty(), "{spans:?}");

    // The same request, sampled by its caller: the request span and its stages.
    let req = facts();
    let spans = exported(|| {
        let span = request(&req, "headers", &exporting());
        span.in_scope(|| {
            drop(verify("outbound"));
            drop(policy("document-service"));
        });
    });
    let mut names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["actbridge.request", "policy", "verify"]);
}

#[test]
fn without_a_trace_layer_nothing_is_propagated() {
    let req = facts();
    let span = request(&req, "headers", &exporting());
    let _g = span.enter();
    assert!(propagation::outgoing().is_empty());
}
