//! The credential backends' refusals, in process: what a backend refuses before it asks
//! anyone (a request it cannot scope, one outside the grant, a grant that maps to
//! nothing, cannot be named in a credential, or makes too large a session policy), and
//! what its peer's failures cost (the GitHub API down, refusing, or answering what is
//! not a token). The GitHub API is the in-process stand-in; AWS STS is never reached.

use super::*;
use crate::support::github::{APP_ID, GithubApi, INSTALLATION_ID, OWNER};
use crate::support::ministack::{BUCKET, REGION, ROLE_ARN};

/// The grant the request's path picks: a department with a repository and a prefix
/// (`engineering`), one with none (`legal`), one no credential may name (`../admin`),
/// or sixty more beside `wide`.
const POLICY: &str = r#"package actbridge

import rego.v1

decision := {"allow": true, "reason": "scripted", "grant": grant}

grant := ["legal"] if {
	contains(input.path, "/unmapped/")
} else := ["../admin"] if {
	contains(input.path, "/unsafe/")
} else := array.concat(["wide"], [sprintf("department-%d", [n]) | some n in numbers.range(1, 60)]) if {
	contains(input.path, "/wide/")
} else := ["engineering"]
"#;

const S3: &str = "s3.us-east-1.amazonaws.com";
const GITHUB: &str = "api.github.com";

/// GitHub App tokens (engineering and finance have a repository) and AWS sessions (the
/// default prefix per department) for the agent's requests, judged by [`POLICY`]; STS
/// on a port nobody listens on.
fn config(sts: &Sts, policies: &std::path::Path, github: &GithubApi) -> String {
    format!(
        r#"
listen:
  ext_proc: tcp://127.0.0.1:1
issuers:
  - issuer: {issuer}
    audiences: ["{AGENT}"]
outbound:
  token_endpoint: {token}
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_post, secret: summarizer-tech-demo-secret}}
  routes:
    - {{name: github, host: {GITHUB}, cluster: github_api, action: credential, credential: github, mode: inject}}
    - {{name: s3, host: {S3}, cluster: aws_s3, action: credential, credential: documents-s3, mode: sign}}
credentials:
  - name: github
    github_app:
      app_id: {APP_ID}
      installation_id: {INSTALLATION_ID}
      private_key_file: {key}
      api_url: {api}
      owner: {OWNER}
      permissions: {{contents: read}}
      repositories:
        engineering: [engineering-docs]
        finance: [finance-reports]
  - name: documents-s3
    aws_sts:
      role_arn: {ROLE_ARN}
      region: {REGION}
      sts_endpoint: http://127.0.0.1:{dead}
      bucket: {BUCKET}
policy:
  dir: {policies}
"#,
        issuer = sts.service.issuer(),
        token = sts.service.token_endpoint(),
        key = github.key_file.display(),
        api = github.url(),
        dead = crate::support::net::free_port(),
        policies = policies.display(),
    )
}

fn github(path: &'static str) -> Row {
    Row {
        envoy: Some(("github", Some("github_api"))),
        ..row("", GITHUB, path, Expect::ForwardUnchanged)
    }
}

fn s3(method: &'static str, path: &'static str) -> Row {
    Row {
        method,
        envoy: Some(("s3", Some("aws_s3"))),
        ..row("", S3, path, Expect::ForwardUnchanged)
    }
}

/// Every credential backend refusal decides as the table says: the local ones before
/// the backend's peer is asked anything, then the GitHub API's failures, and the same
/// request passing once GitHub answers.
#[tokio::test]
// Long by design: a table, one row per rule.
async fn credential_backends_refuse_as_the_table_says() {
    use Expect::*;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scripted.rego"), POLICY).unwrap();
    let sts = Sts::start().await;
    let api = GithubApi::start().await;
    let p = pipeline(
        &config(&sts, dir.path(), &api),
        Arc::new(DenyList::load(None).unwrap()),
    )
    .await;
    let alice = format!(
        "Bearer {}",
        sts.delegated("alice", "summarizer-tech", AGENT).await
    );
    let docs = "/repos/demo-org/engineering-docs/contents/roadmap.md";
    assert_eq!(
        BUCKET, "zt-demo-documents",
        "the S3 rows' paths name the bucket"
    );
    let mut failures = Vec::new();

    // Refused by the backend itself.
    let local: Vec<(&str, Row, Expect)> = vec![
        (
            "github: a path no repository scopes",
            github("/user"),
            Deny(403, "credential_scope"),
        ),
        (
            "github: a repository of another department",
            github("/repos/demo-org/finance-reports/contents/q4.md"),
            Deny(403, "outside_grant"),
        ),
        (
            "github: a grant no repository is mapped for",
            github("/repos/demo-org/engineering-docs/contents/unmapped/x"),
            Deny(403, "grant_unmapped"),
        ),
        (
            "s3: a write",
            s3("PUT", "/zt-demo-documents/engineering/new.md"),
            Deny(403, "credential_scope"),
        ),
        (
            "s3: an object under no granted prefix",
            s3("GET", "/zt-demo-documents/finance/q4-report.md"),
            Deny(403, "outside_grant"),
        ),
        (
            "s3: a grant entry no credential may name",
            s3("GET", "/zt-demo-documents/unsafe/x"),
            Deny(403, "grant_unusable"),
        ),
        (
            "s3: a grant too large for a session policy",
            s3("GET", "/zt-demo-documents/wide/x"),
            Deny(403, "session_policy_too_large"),
        ),
    ];
    for (name, r, expect) in local {
        let got = decide(&p, &r, Some(alice.clone())).await;
        note(&mut failures, name, &got, expect, &alice);
    }
    if !api.token_requests().is_empty() {
        failures.push("GitHub was asked for a token for a refused request".into());
    }

    // The GitHub API's answers (nothing failed is cached).
    for (name, status, expect) in [
        (
            "github: 503",
            Some(503),
            Deny(503, "credential_unavailable"),
        ),
        (
            "github: refuses",
            Some(403),
            Deny(502, "credential_refused"),
        ),
        (
            "github: 200 without a token",
            Some(200),
            Deny(502, "credential_invalid_response"),
        ),
        ("github: a token", None, ForwardWithNewAuthorization),
    ] {
        api.force_status(status);
        let got = decide(&p, &github(docs), Some(alice.clone())).await;
        note(&mut failures, name, &got, expect, &alice);
    }

    // The GitHub API gone, the token minted before forgotten.
    api.stop();
    p.forget_cached();
    let got = decide(&p, &github(docs), Some(alice.clone())).await;
    let expect = Deny(503, "credential_unavailable");
    note(&mut failures, "github: gone", &got, expect, &alice);
    all_passed(&failures, "rows");
}
