//! What traces cost on the request path: one inbound decision through
//! `Pipeline::decide` in its steady state (the token from the verified-token cache, the
//! policy's answer from its decision cache), the request carrying a `traceparent`.
//!
//! The subscriber is the one `actbridge serve` installs:
//! - by default, logs only at `info` — no exporter, so no span is created;
//! - with `ACTBRIDGE_BENCH_TRACES=export`, spans exported over OTLP/gRPC (batch) to a
//!   receiver started here (`tests/support/otlp.rs`); then also a request whose caller
//!   did not sample it (`traceparent` flags `00`), for which no span is made.
//!
//! `make bench-tracing` runs both, the second reported by criterion as a change against
//! the first. The token service and the JWKS are real and local (the embedded token
//! service on loopback); only the set-up talks to them.

use std::sync::Arc;
use std::time::Duration;

use actbridge::config::{Config, ProcessEnv};
use actbridge::credentials::Credentials;
use actbridge::pipeline::{Decision, Pipeline};
use actbridge::policy::PolicyEngine;
use actbridge::telemetry::{self, LogFormat};
use criterion::{Criterion, criterion_group, criterion_main};
use futures::executor::block_on;

#[path = "../tests/support/otlp.rs"]
#[allow(dead_code)]
mod otlp;

#[path = "support/steady.rs"]
mod steady;

use steady::{AGENT, inbound_request, token_service};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let export = std::env::var("ACTBRIDGE_BENCH_TRACES").is_ok_and(|v| v == "export");
    let receiver = export.then(|| rt.block_on(otlp::OtlpReceiver::start()));
    let (sts, token) = token_service(&rt);
    let telemetry = match &receiver {
        Some(r) => format!("telemetry:\n  otlp_endpoint: {}\n", r.endpoint()),
        None => String::new(),
    };
    let yaml = format!(
        "listen:\n  ext_proc: tcp://127.0.0.1:1\nissuers:\n  - issuer: {issuer}\n    audiences: [\"{AGENT}\"]\n\
         policy:\n  dir: {root}/policies\n{telemetry}",
        issuer = sts.issuer(),
        root = env!("CARGO_MANIFEST_DIR"),
    );
    let cfg = Config::from_yaml(&yaml, &ProcessEnv).expect("config");
    let traces = {
        let _rt = rt.enter();
        telemetry::init_with_traces(LogFormat::Text, "info", &cfg.telemetry).expect("traces")
    };
    assert_eq!(traces.exporting(), export);
    let policy = PolicyEngine::load_configured(cfg.policy.as_ref()).unwrap();
    let revocations = Arc::new(actbridge::state::DenyList::load(None).expect("an empty deny list"));
    let pipeline = Pipeline::new(
        &cfg,
        policy,
        Arc::new(Credentials::default()),
        &actbridge::state::State::new(&cfg, revocations),
    )
    .expect("every route's backend and policy");
    for store in pipeline.verifier().jwks_stores() {
        rt.block_on(store.refresh()).expect("JWKS");
    }
    let req = inbound_request(&token);
    assert!(matches!(
        block_on(pipeline.decide(&req)),
        Decision::Continue(_)
    ));

    c.bench_function(
        "inbound decision, verified and judged from the caches",
        |b| b.iter(|| block_on(pipeline.decide(std::hint::black_box(&req)))),
    );

    if export {
        // A request its caller did not sample: no span is made (head sampling).
        let unsampled = steady::inbound_request_traced(
            &token,
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
        );
        c.bench_function(
            "inbound decision from the caches, its caller not sampling (no span)",
            |b| b.iter(|| block_on(pipeline.decide(std::hint::black_box(&unsampled)))),
        );
    }

    if let Some(r) = &receiver {
        rt.block_on(traces.shutdown());
        assert!(!r.spans().is_empty(), "the spans were exported");
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
