//! The `aws_sts` backend's hot path: an S3 request read, checked against the grant and
//! signed (SigV4) with a cached session — what a `credential` route costs per request
//! once its session exists. The session comes once from a local stand-in for STS (an
//! AssumeRole answer in STS's XML), started here.
//!
//! `make bench-sign` (or `cargo bench --bench sign`). The base AWS credential the SDK's
//! chain reads is set to a dummy here; the stand-in ignores it.

use std::time::Duration;

use actbridge::config::{AwsStsConfig, BackendConfig, CredentialConfig, PrefixMapping};
use actbridge::credentials::{Credentials, Grantee, HttpRequest};
use criterion::{Criterion, criterion_group, criterion_main};
use futures::executor::block_on;

const ASSUME_ROLE_RESPONSE: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>ASIABENCHEXAMPLE</AccessKeyId>
      <SecretAccessKey>bench-secret</SecretAccessKey>
      <SessionToken>bench-session-token</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROABENCH:alice-via-summarizer-tech</AssumedRoleId>
      <Arn>arn:aws:sts::000000000000:assumed-role/actbridge-documents/alice-via-summarizer-tech</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#;

fn bench(c: &mut Criterion) {
    // SAFETY: no other thread exists yet (criterion calls this from `main` before any
    // runtime starts), so nothing reads the environment concurrently. A developer's own
    // AWS credentials are replaced, so they never reach the stand-in.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "bench");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench");
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sts = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(|| async { ([("content-type", "text/xml")], ASSUME_ROLE_RESPONSE) });
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    });
    let config = CredentialConfig {
        name: "documents-s3".into(),
        backend: BackendConfig::AwsSts(AwsStsConfig {
            role_arn: "arn:aws:iam::000000000000:role/actbridge-documents".into(),
            region: "us-east-1".into(),
            sts_endpoint: Some(sts.parse().unwrap()),
            duration: Duration::from_secs(900),
            timeout: Duration::from_secs(2),
            bucket: "zt-demo-documents".into(),
            prefixes: PrefixMapping::Template("{grant}/".into()),
            public_prefixes: vec!["public/".into()],
            session_tags: true,
            cache_entries: 10_000,
        }),
    };
    let credentials = rt.block_on(Credentials::load(&[config]));
    let backend = credentials.get("documents-s3").unwrap().clone();
    let chain = ["spiffe://demo.example.com/agent/summarizer-tech".to_string()];
    let grant = ["engineering".to_string(), "finance".to_string()];
    let exclude = [
        "admin/policies.md".to_string(),
        "hr/guidelines.md".to_string(),
    ];
    let who = Grantee {
        user: "alice",
        chain: &chain,
        grant: &grant,
        exclude: &exclude,
    };
    let names = ["accept", "user-agent", "authorization"];
    let req = HttpRequest {
        method: "GET",
        authority: "s3.us-east-1.amazonaws.com",
        path: "/zt-demo-documents/finance/q4-report.md",
        header_names: &names,
    };
    // The first request fetches the session; every later one is served from the cache.
    let scope = backend.scope(&req).unwrap();
    rt.block_on(backend.apply(&who, &req, &scope))
        .expect("session from the stand-in STS");
    c.bench_function(
        "aws_sts: read, check and sign an S3 request (cached session)",
        |b| {
            b.iter(|| {
                let scope = backend.scope(std::hint::black_box(&req)).unwrap();
                block_on(backend.apply(&who, &req, &scope)).unwrap()
            })
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
