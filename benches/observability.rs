//! What audit and telemetry cost on the request path, as **process CPU time per
//! decision** — the audit writer and the span exporter threads included, since they work
//! for the requests too.
//!
//! One inbound decision through `Pipeline::decide` in its steady state (token from the
//! verified-token cache, the policy's answer from its decision cache), the subscriber
//! `actbridge serve` installs (logs at `info`; with `ACTBRIDGE_BENCH_TRACES=export`, spans
//! exported over OTLP/gRPC to a receiver started here). Each request carries its own
//! `traceparent` (a random trace id, sampled by the caller). Two pipelines in one process,
//! run in interleaved rounds so that other work on the machine hits both alike:
//!
//! - `bare`: no audit log, no span (its sampler is `always_off`);
//! - `observed`: the audit log on (hash chain, writer thread, a file in a temp
//!   directory) and, when exporting, spans as the `OTEL_TRACES_SAMPLER` of the run says
//!   (default `parentbased_always_on`: every request, as its caller sampled it;
//!   `OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.1`: one in ten).
//!
//! Metrics cannot be switched off (every pipeline counts), so their share is measured
//! apart: the counter and histogram updates one decision makes, timed in a loop.
//!
//! CPU time is read from `/proc/self/stat` (utime + stime, in clock ticks), less the
//! receiver's threads (the collector's work, not actbridge's): criterion times the
//! calling thread only and would miss the writer and exporter threads. `make
//! bench-observability` runs it without an exporter, exporting every span and exporting
//! one in ten; `OBS_ROUNDS` and `OBS_DECISIONS` (per round and variant) change the
//! defaults, 7 and 100000.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actbridge::audit::AuditLog;
use actbridge::config::{Config, ProcessEnv};
use actbridge::credentials::Credentials;
use actbridge::pipeline::{Decision, Pipeline, RequestFacts};
use actbridge::policy::PolicyEngine;
use actbridge::state::{DenyList, State};
use actbridge::telemetry::metrics::Stage;
use actbridge::telemetry::{self, LogFormat};
use futures::executor::block_on;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

#[path = "../tests/support/otlp.rs"]
#[allow(dead_code)]
mod otlp;

#[path = "support/steady.rs"]
mod steady;

use steady::{AGENT, inbound_request_traced, token_service};

/// The name of the receiver's threads, whose CPU is not actbridge's.
const RECEIVER_THREAD: &str = "otlp-receiver";

/// Distinct requests (trace ids) the decisions cycle through, unless `OBS_REQUESTS`
/// says otherwise.
const REQUESTS: u64 = 1024;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// utime + stime of this process less the receiver's threads, in seconds.
fn actbridge_cpu() -> f64 {
    let mut receiver = 0.0;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let dir = task.expect("a task").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim_end().starts_with(RECEIVER_THREAD) {
            receiver += cpu_of(&dir.join("stat").display().to_string());
        }
    }
    cpu_of("/proc/self/stat") - receiver
}

/// utime + stime of the calling thread, in seconds.
fn thread_cpu() -> f64 {
    cpu_of("/proc/thread-self/stat")
}

fn cpu_of(path: &str) -> f64 {
    // A thread that ended between listing and reading counts as nothing.
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // Linux's USER_HZ is 100 on every architecture it reports through /proc.
    ticks / 100.0
}

/// CPU µs per decision over `n` decisions: actbridge's (the whole process less the
/// receiver), and the deciding thread's own.
fn run(pipeline: &Pipeline, reqs: &[RequestFacts], n: u64) -> (f64, f64) {
    let (before, own) = (actbridge_cpu(), thread_cpu());
    for req in reqs.iter().cycle().take(n as usize) {
        std::hint::black_box(block_on(pipeline.decide(std::hint::black_box(req))));
    }
    let per = |d: f64| d * 1e6 / n as f64;
    (per(actbridge_cpu() - before), per(thread_cpu() - own))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// Long by design: one benchmark run: the cases, their rounds and the report.
fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without
    // it, in a debug build: then only a smoke run (does it work, not how fast).
    let measuring = std::env::args().any(|a| a == "--bench");
    let rounds = if measuring {
        setting("OBS_ROUNDS", 7)
    } else {
        1
    };
    let n = if measuring {
        setting("OBS_DECISIONS", 100_000)
    } else {
        200
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let export = std::env::var("ACTBRIDGE_BENCH_TRACES").is_ok_and(|v| v == "export");
    // The receiver on threads of its own, so that their CPU can be left out.
    let receiver_rt = export.then(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(RECEIVER_THREAD)
            .enable_all()
            .build()
            .unwrap()
    });
    let receiver = receiver_rt
        .as_ref()
        .map(|r| r.block_on(otlp::OtlpReceiver::start_counting()));
    let (sts, token) = token_service(&rt);
    let dir = tempfile::tempdir().unwrap();
    let telemetry = match &receiver {
        Some(r) => format!("telemetry:\n  otlp_endpoint: {}\n", r.endpoint()),
        None => String::new(),
    };
    let yaml = format!(
        "listen:\n  ext_proc: tcp://127.0.0.1:1\nissuers:\n  - issuer: {issuer}\n    audiences: [\"{AGENT}\"]\n\
         policy:\n  dir: {root}/policies\naudit:\n  path: {audit}\n{telemetry}",
        issuer = sts.issuer(),
        root = env!("CARGO_MANIFEST_DIR"),
        audit = dir.path().join("audit.log").display(),
    );
    // The run's OTEL_* variables choose the observed pipeline's sampler; the bare one
    // never traces.
    let observed_cfg = Config::from_yaml(&yaml, &ProcessEnv).expect("config");
    let never_traced: HashMap<String, String> =
        [("OTEL_TRACES_SAMPLER".to_string(), "always_off".to_string())].into();
    let bare_cfg = Config::from_yaml(&yaml, &never_traced).expect("config");
    let traces = {
        let _rt = rt.enter();
        telemetry::init_with_traces(LogFormat::Text, "info", &observed_cfg.telemetry)
            .expect("traces")
    };
    let build = |cfg: &Config| {
        let policy = PolicyEngine::load_configured(cfg.policy.as_ref()).unwrap();
        let revocations = Arc::new(DenyList::load(None).expect("an empty deny list"));
        let p = Pipeline::new(
            cfg,
            policy,
            Arc::new(Credentials::default()),
            &State::new(cfg, revocations),
        )
        .expect("every route's backend and policy");
        for store in p.verifier().jwks_stores() {
            rt.block_on(store.refresh()).expect("JWKS");
        }
        p
    };
    let bare = build(&bare_cfg);
    let log = Arc::new(AuditLog::open(observed_cfg.audit.as_ref().unwrap()).expect("audit log"));
    let observed = build(&observed_cfg).with_audit(log.clone());
    let ids = RandomIdGenerator::default();
    let reqs: Vec<RequestFacts> = (0..setting("OBS_REQUESTS", REQUESTS))
        .map(|_| {
            let traceparent = format!("00-{}-{}-01", ids.new_trace_id(), ids.new_span_id());
            inbound_request_traced(&token, &traceparent)
        })
        .collect();
    let mut observed_decisions = 0;
    for p in [&bare, &observed] {
        assert!(matches!(
            block_on(p.decide(&reqs[0])),
            Decision::Continue(_)
        ));
        run(p, &reqs, n / 10); // warm-up
    }
    observed_decisions += 1 + n / 10;

    let (mut b, mut o, mut ratios, mut own) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (x, _) = run(&bare, &reqs, n);
        let (y, y_own) = run(&observed, &reqs, n);
        observed_decisions += n;
        println!(
            "round {round}: bare {x:.2} µs, observed {y:.2} µs CPU per decision ({y_own:.2} µs on the deciding thread)"
        );
        b.push(x);
        o.push(y);
        own.push(y_own);
        ratios.push(y / x);
    }

    // The metric updates of one allowed inbound decision (pipeline.rs `count`): the
    // decision counter and three stage histograms (verify, policy, the whole decision).
    let metrics = bare.metrics();
    let m = if measuring { 1_000_000u64 } else { 1_000 };
    let before = actbridge_cpu();
    for _ in 0..m {
        metrics.stage("inbound", Some(Stage::Verify), Duration::from_micros(3));
        metrics.stage("inbound", Some(Stage::Policy), Duration::from_micros(2));
        metrics.decision("inbound", std::hint::black_box("inbound"), "allow");
        metrics.stage("inbound", None, Duration::from_micros(9));
    }
    let metrics_us = (actbridge_cpu() - before) * 1e6 / m as f64;

    rt.block_on(traces.shutdown());
    let spans_per_decision = receiver
        .as_ref()
        .map(|r| r.received() as f64 / observed_decisions as f64);

    let (bare_us, observed_us, ratio) = (median(b), median(o), median(ratios));
    let observed_own = median(own);
    let observed_pct = (ratio - 1.0) * 100.0;
    let metrics_pct = metrics_us / (bare_us - metrics_us) * 100.0;
    println!();
    println!(
        "decision CPU, median of {rounds} rounds × {n}: bare {bare_us:.2} µs, observed {observed_us:.2} µs \
         (+{:.2} µs)",
        observed_us - bare_us
    );
    let traced = match spans_per_decision {
        // An allowed inbound decision from the caches makes three spans: the request,
        // verify and policy.
        Some(s) => format!(
            "traces exported: {s:.2} spans per decision (~{:.0} % of the requests traced)",
            s / 3.0 * 100.0
        ),
        None => "no trace exporter (run with ACTBRIDGE_BENCH_TRACES=export)".into(),
    };
    println!(
        "audit log{}: {observed_pct:+.1} % (same-round ratio, median); the deciding thread's share of the observed decision: {observed_own:.2} µs",
        if export { " + traces" } else { "" }
    );
    println!("{traced}");
    println!(
        "metrics: {metrics_us:.3} µs per decision = {metrics_pct:.1} % of the decision without them"
    );
    println!(
        "audit + telemetry: {:+.1} % of the decision's CPU, {:.2} µs per request",
        observed_pct + metrics_pct,
        observed_us - bare_us + metrics_us
    );
    if let Some(r) = &receiver {
        // With the default sampler every request is traced (its caller sampled it). At
        // full speed the batch queue overflows and spans are dropped (the SDK says so);
        // the smoke run is slow enough to lose none.
        if std::env::var_os("OTEL_TRACES_SAMPLER").is_none() {
            assert!(r.received() > 0, "the spans were exported");
            if !measuring {
                assert!(
                    r.received() >= observed_decisions * 3,
                    "every span was exported"
                );
            }
        }
    }
}
