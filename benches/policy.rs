//! Policy evaluation on the hot path, with the shipped demo-world policy:
//! a cached decision (the steady state) and an uncached one (a new input every time).
//! `decide` is async (a remote OPA needs it); for the in-process engine its future is
//! ready at once and `block_on` adds only a poll.
//!
//! `make bench-policy` (or `cargo bench --bench policy`).

use std::time::Duration;

use actbridge::config::{PolicyConfig, PolicySource};
use actbridge::policy::{ActorInput, PolicyEngine, PolicyInput, UserInput};
use criterion::{Criterion, criterion_group, criterion_main};
use futures::executor::block_on;

fn config(cache_entries: u64) -> PolicyConfig {
    PolicyConfig {
        source: PolicySource::Directory(concat!(env!("CARGO_MANIFEST_DIR"), "/policies").into()),
        entrypoint: "data.actbridge.decision".into(),
        reload_interval: None,
        decision_cache_entries: cache_entries,
        decision_cache_ttl: Duration::from_secs(600),
        eval_timeout: Duration::from_millis(100),
    }
}

/// alice via reviewer-general reading DOC-005; `n` makes the subject unique.
fn input(n: u64) -> PolicyInput {
    PolicyInput {
        direction: "outbound",
        route: "document-service".into(),
        destination: "document-service".into(),
        method: "GET".into(),
        path: "/documents/DOC-005".into(),
        action: "read",
        resource: vec!["documents".into(), "DOC-005".into()],
        backend: "token_exchange",
        user: UserInput {
            sub: Some(format!("user-{n}")),
            username: Some("alice".into()),
            groups: vec!["engineering".into(), "finance".into()],
        },
        actors: vec![ActorInput {
            client_id: Some("spiffe://demo.example.com/agent/reviewer-general".into()),
            sub: None,
            trust_domain: Some("demo.example.com".into()),
            spiffe_path: Some("/agent/reviewer-general".into()),
        }],
        scopes: vec!["openid".into(), "documents.read".into()],
        mcp: None,
        a2a: None,
    }
}

fn bench(c: &mut Criterion) {
    let cached = PolicyEngine::load(&config(10_000)).expect("policy loads");
    let warm = input(0);
    assert!(block_on(cached.decide(&warm)).unwrap().allow);
    c.bench_function("policy decision, cached", |b| {
        b.iter(|| block_on(cached.decide(std::hint::black_box(&warm))).unwrap())
    });

    let uncached = PolicyEngine::load(&config(0)).expect("policy loads");
    let mut n = 0u64;
    c.bench_function("policy decision, uncached (demo world)", |b| {
        b.iter(|| {
            n += 1;
            block_on(uncached.decide(std::hint::black_box(&input(n)))).unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
