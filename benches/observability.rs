//! What audit and telemetry cost on the request path, as **process CPU time per
//! decision** — the audit writer thread included, since it works for the requests too.
//!
//! One inbound decision through `Pipeline::decide` in its steady state (token from the
//! verified-token cache, the policy's answer from its decision cache), the subscriber
//! `actbridge serve` installs (logs at `info`; with `ACTBRIDGE_BENCH_TRACES=export`, spans
//! exported over OTLP/gRPC to a receiver started here). Two pipelines in one process,
//! run in interleaved rounds so that other work on the machine hits both alike:
//!
//! - `bare`: no audit log;
//! - `audited`: the audit log on (hash chain, writer thread, a file in a temp directory).
//!
//! Metrics cannot be switched off (every pipeline counts), so their share is measured
//! apart: the counter and histogram updates one decision makes, timed in a loop.
//!
//! CPU time is read from `/proc/self/stat` (utime + stime, in clock ticks): criterion
//! times the calling thread only and would miss the writer thread. `make
//! bench-observability` runs it; `OBS_ROUNDS` and `OBS_DECISIONS` (per round and
//! variant) change the defaults, 7 and 100000.

use std::sync::Arc;
use std::time::Duration;

use actbridge::audit::AuditLog;
use actbridge::config::{Config, ProcessEnv};
use actbridge::credentials::Credentials;
use actbridge::pipeline::{Decision, DenyList, Pipeline, RequestFacts};
use actbridge::policy::PolicyEngine;
use actbridge::telemetry::metrics::Stage;
use actbridge::telemetry::{self, LogFormat};
use futures::executor::block_on;

#[path = "../tests/support/otlp.rs"]
#[allow(dead_code)]
mod otlp;

#[path = "support/steady.rs"]
mod steady;

use steady::{AGENT, inbound_request, token_service};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// utime + stime of this process, in seconds.
fn process_cpu() -> f64 {
    cpu_of("/proc/self/stat")
}

/// utime + stime of the calling thread, in seconds.
fn thread_cpu() -> f64 {
    cpu_of("/proc/thread-self/stat")
}

fn cpu_of(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).expect(path);
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // Linux's USER_HZ is 100 on every architecture it reports through /proc.
    ticks / 100.0
}

/// CPU µs per decision over `n` decisions: the whole process's, and the deciding
/// thread's own.
fn run(pipeline: &Pipeline, req: &RequestFacts, n: u64) -> (f64, f64) {
    let (before, own) = (process_cpu(), thread_cpu());
    for _ in 0..n {
        std::hint::black_box(block_on(pipeline.decide(std::hint::black_box(req))));
    }
    let per = |d: f64| d * 1e6 / n as f64;
    (per(process_cpu() - before), per(thread_cpu() - own))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

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
    let receiver = export.then(|| rt.block_on(otlp::OtlpReceiver::start()));
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
    let cfg = Config::from_yaml(&yaml, &ProcessEnv).expect("config");
    let traces = {
        let _rt = rt.enter();
        telemetry::init_with_traces(LogFormat::Text, "info", &cfg.telemetry).expect("traces")
    };
    let build = || {
        let policy = PolicyEngine::load_configured(cfg.policy.as_ref()).unwrap();
        let revocations = Arc::new(DenyList::load(None).expect("an empty deny list"));
        let p = Pipeline::new(&cfg, policy, Arc::new(Credentials::default()), revocations);
        for store in p.verifier().jwks_stores() {
            rt.block_on(store.refresh()).expect("JWKS");
        }
        p
    };
    let bare = build();
    let log = Arc::new(AuditLog::open(cfg.audit.as_ref().unwrap()).expect("audit log"));
    let audited = build().with_audit(log.clone());
    let req = inbound_request(&token);
    for p in [&bare, &audited] {
        assert!(matches!(block_on(p.decide(&req)), Decision::Continue(_)));
        run(p, &req, n / 10); // warm-up
    }

    let (mut b, mut a, mut ratios, mut own) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (x, _) = run(&bare, &req, n);
        let (y, y_own) = run(&audited, &req, n);
        println!(
            "round {round}: bare {x:.2} µs, audited {y:.2} µs CPU per decision ({y_own:.2} µs on the deciding thread)"
        );
        b.push(x);
        a.push(y);
        own.push(y_own);
        ratios.push(y / x);
    }

    // The metric updates of one allowed inbound decision (pipeline.rs `count`): the
    // decision counter and three stage histograms (verify, policy, the whole decision).
    let metrics = bare.metrics();
    let m = if measuring { 1_000_000u64 } else { 1_000 };
    let before = process_cpu();
    for _ in 0..m {
        metrics.stage("inbound", Some(Stage::Verify), Duration::from_micros(3));
        metrics.stage("inbound", Some(Stage::Policy), Duration::from_micros(2));
        metrics.decision("inbound", std::hint::black_box("inbound"), "allow");
        metrics.stage("inbound", None, Duration::from_micros(9));
    }
    let metrics_us = (process_cpu() - before) * 1e6 / m as f64;

    let (bare_us, audited_us, ratio) = (median(b), median(a), median(ratios));
    let audited_own = median(own);
    let audit_pct = (ratio - 1.0) * 100.0;
    let metrics_pct = metrics_us / (bare_us - metrics_us) * 100.0;
    println!();
    println!(
        "decision CPU, median of {rounds} rounds × {n}: bare {bare_us:.2} µs, audited {audited_us:.2} µs"
    );
    println!(
        "audit log: {audit_pct:+.1} % (same-round ratio, median); the deciding thread's share of the audited decision: {audited_own:.2} µs"
    );
    println!(
        "metrics: {metrics_us:.3} µs per decision = {metrics_pct:.1} % of the decision without them"
    );
    println!(
        "spans: {} (run with ACTBRIDGE_BENCH_TRACES=export for the exporter's cost)",
        if export {
            "exported over OTLP"
        } else {
            "not created (no exporter)"
        }
    );
    println!(
        "audit + telemetry: {:+.1} % of the decision's CPU",
        audit_pct + metrics_pct
    );
    rt.block_on(traces.shutdown());
    if let Some(r) = &receiver {
        assert!(!r.spans().is_empty(), "the spans were exported");
    }
}
