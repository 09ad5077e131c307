//! The credential backends' hot paths, each against a local stand-in for its service
//! (started here): a request read, checked against the grant and given its credential
//! from the cache — what a `credential` route costs per request once its credential
//! exists — and a mint (a cache miss: one STS `AssumeRole` or one GitHub token request
//! over loopback, App JWT signing included).
//!
//! PostgreSQL's cases run against a real PostgreSQL 15 started here with the tests'
//! harness (`tests/support/postgres.rs`); they are skipped, with a message, where it is
//! not installed.
//!
//! `make bench-credentials` (or `cargo bench --bench credentials`). The base AWS
//! credential the SDK's chain reads is set to a dummy here; the stand-ins ignore it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actbridge::config::{
    AwsStsConfig, BackendConfig, CredentialConfig, GithubAppConfig, PostgresConfig, PrefixMapping,
    Secret, SigningKey, SshCertConfig,
};
use actbridge::credentials::{Backend, Credentials, Grantee, HttpRequest, VendAsk};
use criterion::{Criterion, criterion_group, criterion_main};
use futures::executor::block_on;

/// An hour from now, as the peers write it (RFC 3339): a credential's expiry actbridge
/// accepts (a session or an installation token lives at most about that long).
fn in_an_hour() -> String {
    humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
    )
    .to_string()
}

/// The stand-in STS's answer (`{EXPIRATION}` filled in per answer).
const ASSUME_ROLE_RESPONSE: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>ASIABENCHEXAMPLE</AccessKeyId>
      <SecretAccessKey>bench-secret</SecretAccessKey>
      <SessionToken>bench-session-token</SessionToken>
      <Expiration>{EXPIRATION}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROABENCH:alice-via-summarizer-tech</AssumedRoleId>
      <Arn>arn:aws:sts::000000000000:assumed-role/actbridge-documents/alice-via-summarizer-tech</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#;

/// Serves `app` on a loopback port inside `rt`; returns its base URL.
fn stand_in(rt: &tokio::runtime::Runtime, app: axum::Router) -> String {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    })
}

fn aws(rt: &tokio::runtime::Runtime) -> Arc<Backend> {
    let sts = stand_in(
        rt,
        axum::Router::new().fallback(|| async {
            (
                [("content-type", "text/xml")],
                ASSUME_ROLE_RESPONSE.replace("{EXPIRATION}", &in_an_hour()),
            )
        }),
    );
    let config = CredentialConfig {
        name: "documents-s3".into(),
        backend: BackendConfig::AwsSts(AwsStsConfig {
            role_arn: "arn:aws:iam::000000000000:role/actbridge-documents".into(),
            region: "us-east-1".into(),
            sts_endpoint: Some(sts.parse().unwrap()),
            duration: Duration::from_secs(900),
            timeout: Duration::from_secs(2),
            bucket: "zt-demo-documents".into(),
            s3_endpoints: vec!["s3.us-east-1.amazonaws.com".into()],
            prefixes: PrefixMapping::Template("{grant}/".into()),
            public_prefixes: vec!["public/".into()],
            session_tags: true,
            cache_entries: 1_000_000,
        }),
    };
    rt.block_on(Credentials::load(&[config]))
        .get("documents-s3")
        .unwrap()
        .clone()
}

/// An installation token for exactly the repositories asked.
async fn github_token(
    axum::Json(body): axum::Json<serde_json::Value>,
) -> impl axum::response::IntoResponse {
    let repos: Vec<serde_json::Value> = body["repositories"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| serde_json::json!({"name": r}))
        .collect();
    (
        axum::http::StatusCode::CREATED,
        axum::Json(serde_json::json!({
            "token": "ghs_bench", "expires_at": in_an_hour(),
            "permissions": {"contents": "read"}, "repository_selection": "selected", "repositories": repos,
        })),
    )
}

fn github(rt: &tokio::runtime::Runtime, departments: usize) -> Arc<Backend> {
    let api = stand_in(
        rt,
        axum::Router::new().route(
            "/app/installations/{id}/access_tokens",
            axum::routing::post(github_token),
        ),
    );
    let pem = actbridge_sts::pem::fresh_rsa_private_key().expect("an RSA key");
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let config = CredentialConfig {
        name: "github".into(),
        backend: BackendConfig::GithubApp(GithubAppConfig {
            app_id: 1,
            private_key: SigningKey(Arc::new(key)),
            installation_id: 2,
            api_url: api.parse().unwrap(),
            owner: "demo-org".into(),
            repositories: (0..departments)
                .map(|i| (format!("d{i}"), vec![format!("repo-{i}")]))
                .collect::<BTreeMap<_, _>>(),
            permissions: BTreeMap::from([("contents".into(), "read".into())]),
            timeout: Duration::from_secs(2),
            cache_entries: 1_000_000,
        }),
    };
    rt.block_on(Credentials::load(&[config]))
        .get("github")
        .unwrap()
        .clone()
}

fn ssh(rt: &tokio::runtime::Runtime) -> Arc<Backend> {
    let ca =
        ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
            .unwrap();
    let config = CredentialConfig {
        name: "ssh".into(),
        backend: BackendConfig::SshCert(Box::new(SshCertConfig {
            ca_key: ca,
            principals: BTreeMap::from([("finance".into(), vec!["finance".into()])]),
            validity: Duration::from_secs(300),
            extensions: vec!["permit-pty".into()],
            source_addresses: Vec::new(),
            cache_entries: 1_000_000,
        })),
    };
    rt.block_on(Credentials::load(&[config]))
        .get("ssh")
        .unwrap()
        .clone()
}

/// The tests' PostgreSQL harness, shared rather than copied.
#[path = "../tests/support"]
#[allow(dead_code)]
mod support {
    pub mod net;
    pub mod postgres;
}

fn postgres(rt: &tokio::runtime::Runtime, port: u16) -> Arc<Backend> {
    use support::postgres::{ADMIN_PASSWORD, ADMIN_USER};
    let config = CredentialConfig {
        name: "db".into(),
        backend: BackendConfig::Postgres(PostgresConfig {
            name: "db".into(),
            host: "127.0.0.1".into(),
            port,
            database: "postgres".into(),
            admin_user: ADMIN_USER.into(),
            admin_password: Secret::new(ADMIN_PASSWORD),
            roles: BTreeMap::from([("finance".into(), vec!["finance_reader".into()])]),
            ttl: Duration::from_secs(900),
            connection_limit: 2,
            role_prefix: "actbridge_".into(),
            reaper_interval: Duration::from_secs(3600),
            timeout: Duration::from_secs(5),
        }),
    };
    rt.block_on(Credentials::load(&[config]))
        .get("db")
        .unwrap()
        .clone()
}

// Long by design: one benchmark run, its peers started and torn down in order.
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
    let chain = ["spiffe://demo.example.com/agent/summarizer-tech".to_string()];
    let grant = ["engineering".to_string(), "finance".to_string()];
    let exclude = [
        "admin/policies.md".to_string(),
        "hr/guidelines.md".to_string(),
    ];
    let names = ["accept", "user-agent", "authorization"];

    let s3 = aws(&rt);
    let who = Grantee {
        issuer: "https://keycloak.example.com/realms/demo",
        subject: "alice",
        user: "alice",
        chain: &chain,
        grant: &grant,
        exclude: &exclude,
    };
    let req = HttpRequest {
        header_names: &names,
        ..HttpRequest::bare(
            "GET",
            "s3.us-east-1.amazonaws.com",
            "/zt-demo-documents/finance/q4-report.md",
        )
    };
    let scope = s3.scope(&req).unwrap();
    rt.block_on(s3.apply(&who, &req, &scope, None))
        .expect("session from the stand-in STS");
    c.bench_function(
        "aws_sts: read, check and sign an S3 request (cached session)",
        |b| {
            b.iter(|| {
                let scope = s3.scope(std::hint::black_box(&req)).unwrap();
                block_on(s3.apply(&who, &req, &scope, None)).unwrap()
            })
        },
    );
    let mut n = 0u64;
    c.bench_function(
        "aws_sts: mint a session (AssumeRole to a local stand-in) and sign",
        |b| {
            b.iter(|| {
                n += 1;
                let user = format!("user-{n}");
                let who = Grantee {
                    subject: &user,
                    ..who
                };
                rt.block_on(s3.apply(&who, &req, &scope, None)).unwrap()
            })
        },
    );

    let gh = github(&rt, 100_000);
    let dept = ["d1".to_string()];
    let who = Grantee {
        issuer: "https://keycloak.example.com/realms/demo",
        subject: "alice",
        user: "alice",
        chain: &chain,
        grant: &dept,
        exclude: &[],
    };
    let req = HttpRequest {
        header_names: &names,
        ..HttpRequest::bare(
            "GET",
            "api.github.com",
            "/repos/demo-org/repo-1/contents/README.md",
        )
    };
    let scope = gh.scope(&req).unwrap();
    rt.block_on(gh.apply(&who, &req, &scope, None))
        .expect("token from the stand-in GitHub");
    c.bench_function("github_app: read, check and inject a token (cached)", |b| {
        b.iter(|| {
            let scope = gh.scope(std::hint::black_box(&req)).unwrap();
            block_on(gh.apply(&who, &req, &scope, None)).unwrap()
        })
    });
    let mut i = 1usize;
    c.bench_function(
        "github_app: mint a token (App JWT + request to a local stand-in)",
        |b| {
            b.iter(|| {
                i = (i + 1) % 100_000;
                let grant = [format!("d{i}")];
                let path = format!("/repos/demo-org/repo-{i}/contents/README.md");
                let req = HttpRequest {
                    path: &path,
                    canonical_path: &path,
                    ..req
                };
                let who = Grantee {
                    grant: &grant,
                    ..who
                };
                let scope = gh.scope(&req).unwrap();
                rt.block_on(gh.apply(&who, &req, &scope, None)).unwrap()
            })
        },
    );

    let cert = ssh(&rt);
    let finance = ["finance".to_string()];
    let agent_key = |_| {
        ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
            .unwrap()
            .public_key()
            .to_openssh()
            .unwrap()
    };
    let public = agent_key(0u32);
    let who = Grantee {
        issuer: "https://keycloak.example.com/realms/demo",
        subject: "alice",
        user: "alice",
        chain: &chain,
        grant: &finance,
        exclude: &[],
    };
    let ask = VendAsk {
        action: "login",
        public_key: Some(&public),
    };
    rt.block_on(cert.vend(&who, &ask)).expect("certificate");
    c.bench_function("ssh_cert: vend a certificate (cached)", |b| {
        b.iter(|| block_on(cert.vend(&who, std::hint::black_box(&ask))).unwrap())
    });
    let keys: Vec<String> = (1..=2000u32).map(agent_key).collect();
    let mut k = 0usize;
    let mut round = 0usize;
    c.bench_function("ssh_cert: mint a certificate (Ed25519 signature)", |b| {
        b.iter(|| {
            k = (k + 1) % keys.len();
            round += 1;
            let user = format!("user-{round}");
            let who = Grantee { user: &user, ..who };
            let ask = VendAsk {
                action: "login",
                public_key: Some(&keys[k]),
            };
            block_on(cert.vend(&who, &ask)).unwrap()
        })
    });

    if !std::path::Path::new("/usr/lib/postgresql/15/bin/initdb").exists() {
        eprintln!("postgres cases skipped: PostgreSQL 15 is not installed");
        return;
    }
    let server = rt.block_on(support::postgres::Postgres::start());
    let db = postgres(&rt, server.port);
    let ask = VendAsk {
        action: "connect",
        public_key: None,
    };
    let who = Grantee {
        issuer: "https://keycloak.example.com/realms/demo",
        subject: "alice",
        user: "alice",
        chain: &chain,
        grant: &finance,
        exclude: &[],
    };
    rt.block_on(db.vend(&who, &ask))
        .expect("a role from PostgreSQL");
    // Nothing is cached: every vend mints a role.
    let mut n = 0u64;
    c.bench_function(
        "postgres: mint a role (connect + CREATE ROLE over loopback)",
        |b| {
            b.iter(|| {
                n += 1;
                let user = format!("user-{n}");
                let who = Grantee {
                    subject: &user,
                    ..who
                };
                rt.block_on(db.vend(&who, &ask)).unwrap()
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
