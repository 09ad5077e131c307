//! Token verification on the hot path: an RS256 token from the embedded token service
//! (started here, for its JWKS) verified from scratch (signature, claims, `act` chain)
//! and found in the verified-token cache (a SHA-256 of the token and one lookup) — the
//! two costs behind case D of `make bench` (docs/performance.md).
//!
//! `cargo bench --bench verify`.

use actbridge::config::{Config, ProcessEnv};
use actbridge::jwt::{AudienceProfile, Verifier};
use actbridge_sts::{Realm, TokenService};
use criterion::{Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use serde_json::json;

const AGENT: &str = "spiffe://demo.example.com/agent/summarizer-tech";

fn verifier(issuer: &str, cache_entries: u64) -> Verifier {
    let yaml = format!(
        "listen: {{ext_proc: tcp://127.0.0.1:1}}\n\
         issuers: [{{issuer: \"{issuer}\", audiences: [\"{AGENT}\"]}}]\n\
         tokens: {{verified_cache_entries: {cache_entries}}}\n"
    );
    Verifier::new(&Config::from_yaml(&yaml, &ProcessEnv).expect("bench config"))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let realm = Realm::from_yaml_file(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("demo/realm.yaml")
            .as_path(),
    )
    .expect("demo realm");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let sts = TokenService::new(realm, &url, None).expect("token service");
    let stop = tokio_util::sync::CancellationToken::new();
    rt.spawn(sts.clone().serve(listener, stop.clone()));
    let now = actbridge::clock::now_secs();
    let token = sts.sign_claims(&json!({
        "iss": sts.issuer(), "sub": "835414c6-012e-4647-8369-a9f46e3b9cad",
        "preferred_username": "alice", "groups": ["engineering", "finance"],
        "aud": AGENT, "iat": now, "exp": now + 3600,
        "act": {"sub": "summarizer-tech", "client_id": AGENT},
    }));

    let uncached = verifier(&sts.issuer(), 0);
    let cached = verifier(&sts.issuer(), 10_000);
    for v in [&uncached, &cached] {
        for store in v.jwks_stores() {
            rt.block_on(store.refresh()).expect("JWKS loads");
        }
        block_on(v.verify(&token, AudienceProfile::Inbound)).expect("the token verifies");
    }
    c.bench_function("verify RS256, uncached", |b| {
        b.iter(|| block_on(uncached.verify(std::hint::black_box(&token), AudienceProfile::Inbound)))
    });
    c.bench_function("verify, verified-token cache hit", |b| {
        b.iter(|| block_on(cached.verify(std::hint::black_box(&token), AudienceProfile::Inbound)))
    });
    stop.cancel();
}

criterion_group!(benches, bench);
criterion_main!(benches);
