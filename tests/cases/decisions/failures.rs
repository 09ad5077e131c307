//! What actbridge enforces on the policy's answer, and what a failing peer or proxy
//! costs, on a scripted policy.

use super::*;

/// A policy whose answer the request's path picks, for the rules actbridge enforces on
/// the policy's answer itself.
const SCRIPTED_POLICY: &str = r#"package actbridge

import rego.v1

default decision := {"allow": false, "reason": "not scripted"}

decision := {"allow": true, "reason": "ok", "grant": ["x"]} if input.path in {"/ok", "/live"}

decision := {"allow": true, "reason": "an empty grant", "grant": []} if input.path == "/empty-grant"

decision := {"allow": true, "reason": "a person decides", "grant": ["x"], "approval_required": true} if {
	input.path == "/approval"
}

decision := {"allow": true, "reason": 7, "grant": ["x"]} if input.path == "/malformed"

decision := {"allow": true, "reason": "one", "grant": ["x"]} if input.path == "/conflict"

decision := {"allow": true, "reason": "two", "grant": ["y"]} if input.path == "/conflict"
"#;

/// A sidecar with the scripted policy, live checks at the issuer on `/live`, and an
/// exchange route whose audience the token service does not know; `token_endpoint`
/// overrides the token service's own.
pub(super) fn scripted_config(
    sts: &Sts,
    policies: &std::path::Path,
    token_endpoint: Option<&str>,
) -> String {
    format!(
        r#"
listen:
  ext_proc: tcp://127.0.0.1:1
issuers:
  - issuer: {issuer}
    audiences: ["{AGENT}"]
    introspection:
      endpoint: {introspection}
inbound:
  introspect_paths: [{{exact: /live}}]
outbound:
  token_endpoint: {token}
  token_timeout: 1s
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_post, secret: summarizer-tech-demo-secret}}
  routes:
    - {{name: document-service, host: document-service, cluster: document_service, action: exchange, audience: "{DOCS_AUDIENCE}", scopes: [documents.read]}}
    - {{name: nowhere, host: nowhere.example, cluster: nowhere, action: exchange, audience: "spiffe://demo.example.com/service/nowhere"}}
policy:
  dir: {policies}
"#,
        issuer = sts.service.issuer(),
        introspection = sts.service.introspection_endpoint(),
        token = token_endpoint.map_or_else(|| sts.service.token_endpoint(), str::to_string),
        policies = policies.display(),
    )
}

/// What actbridge enforces on a policy's answer (an empty grant, an approval nobody can
/// give, a malformed or conflicting answer), and its peers' failures: the token service
/// refusing or gone, a token revoked at the issuer.
#[tokio::test]
// Long by design: a table, one row per rule.
async fn the_policys_answers_and_the_peers_failures_decide_as_the_table_says() {
    use Expect::*;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scripted.rego"), SCRIPTED_POLICY).unwrap();
    let sts = Sts::start().await;
    let deny_list = || Arc::new(DenyList::load(None).unwrap());
    let p = pipeline(&scripted_config(&sts, dir.path(), None), deny_list()).await;
    let alice = format!(
        "Bearer {}",
        sts.delegated("alice", "summarizer-tech", AGENT).await
    );
    let docs = |path: &'static str| row("", "document-service", path, ForwardUnchanged);
    let mut steps: Vec<(&str, Row, Expect)> = vec![
        (
            "the policy allows: exchanged",
            docs("/ok"),
            ForwardWithNewAuthorization,
        ),
        (
            "an allow with an empty grant",
            docs("/empty-grant"),
            Deny(403, "grant_empty"),
        ),
        (
            "an approval and no approvals configured",
            docs("/approval"),
            Deny(403, "approval_unavailable"),
        ),
        (
            "an answer of the wrong shape",
            docs("/malformed"),
            Deny(403, "policy_error"),
        ),
        (
            "two rules, two answers",
            docs("/conflict"),
            Deny(403, "policy_error"),
        ),
        (
            "a refusal with the policy's reason",
            docs("/other"),
            Deny(403, "policy_denied"),
        ),
        (
            "an audience the token service refuses",
            Row {
                envoy: Some(("nowhere", Some("nowhere"))),
                ..row("", "nowhere.example", "/ok", ForwardUnchanged)
            },
            Deny(403, "exchange_refused"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, r, expect) in steps.drain(..) {
        let got = decide(&p, &r, Some(alice.clone())).await;
        if let Err(why) = verdict(&expect, &got, &alice) {
            failures.push(format!("{name}: {why}"));
        }
    }

    // A token revoked at the issuer: refused where it is checked live.
    let own = sts.alice().await;
    let live = Row {
        direction: "inbound",
        envoy: None,
        ..row("", "app", "/live", ForwardWithIdentity)
    };
    let bearer = format!("Bearer {own}");
    let before = decide(&p, &live, Some(bearer.clone())).await;
    if let Err(why) = verdict(&ForwardWithIdentity, &before, &bearer) {
        failures.push(format!("live check, active: {why}"));
    }
    let revoked = reqwest::Client::new()
        .post(sts.service.revocation_endpoint())
        .form(&[
            // RFC 7009: the client the token was issued to (the front end) revokes it.
            ("client_id", PORTAL),
            ("client_secret", PORTAL_SECRET),
            ("token", own.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let after = decide(&p, &live, Some(bearer.clone())).await;
    if let Err(why) = verdict(&Deny(401, "token_inactive"), &after, &bearer) {
        failures.push(format!("live check, revoked at the issuer: {why}"));
    }

    // The token service gone: 503 with Retry-After.
    let gone = format!(
        "http://127.0.0.1:{}/token",
        crate::support::net::free_port()
    );
    let p = pipeline(&scripted_config(&sts, dir.path(), Some(&gone)), deny_list()).await;
    let got = decide(&p, &docs("/ok"), Some(alice.clone())).await;
    if let Err(why) = verdict(&Deny(503, "sts_unavailable"), &got, &alice) {
        failures.push(format!("token service gone: {why}"));
    }
    match &got {
        Ok(Decision::Deny(d)) if d.retry_after.is_some() => {}
        other => failures.push(format!("token service gone: no Retry-After in {other:?}")),
    }
    all_passed(&failures, "steps");
}

/// The config of `scripted_config` with `from` replaced by `to` (one change per row).
fn scripted_with(sts: &Sts, policies: &std::path::Path, from: &str, to: &str) -> String {
    let yaml = scripted_config(sts, policies, None);
    assert!(
        yaml.contains(from),
        "`{from}` is not in the scripted config"
    );
    yaml.replacen(from, to, 1)
}

/// What is refused because a peer or the proxy failed actbridge — the remote policy, the
/// issuer's keys, the token service answering garbage, the issuer's live check, the proxy
/// sending what cannot be read or a body never asked for — each as the table says, in
/// process.
#[tokio::test]
// Long by design: a table, one row per rule.
async fn peer_and_proxy_failures_refuse_as_the_table_says() {
    use Expect::*;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scripted.rego"), SCRIPTED_POLICY).unwrap();
    let sts = Sts::start().await;
    let deny_list = || Arc::new(DenyList::load(None).unwrap());
    let alice = format!(
        "Bearer {}",
        sts.delegated("alice", "summarizer-tech", AGENT).await
    );
    let docs = docs_row();
    let nowhere = || format!("http://127.0.0.1:{}", crate::support::net::free_port());
    let mut failures = Vec::new();

    // A remote OPA that does not answer.
    let opa = scripted_with(
        &sts,
        dir.path(),
        &format!("  dir: {}", dir.path().display()),
        &format!("  opa_url: {}", nowhere()),
    );
    let p = pipeline(&opa, deny_list()).await;
    let got = decide(&p, &docs, Some(alice.clone())).await;
    note(
        &mut failures,
        "the remote policy is down",
        &got,
        Deny(503, "policy_unavailable"),
        &alice,
    );

    // A token service that answers what is not a token response.
    let garbage = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage_url = format!("http://{}/token", garbage.local_addr().unwrap());
    let answers_garbage =
        axum::Router::new().route("/token", axum::routing::post(|| async { "not json" }));
    tokio::spawn(async move { axum::serve(garbage, answers_garbage).await });
    let p = pipeline(
        &scripted_config(&sts, dir.path(), Some(&garbage_url)),
        deny_list(),
    )
    .await;
    let got = decide(&p, &docs, Some(alice.clone())).await;
    note(
        &mut failures,
        "the token service answers garbage",
        &got,
        Deny(502, "sts_invalid_response"),
        &alice,
    );

    // The issuer's live check that does not answer.
    let introspection = scripted_with(
        &sts,
        dir.path(),
        &format!("endpoint: {}", sts.service.introspection_endpoint()),
        &format!("endpoint: {}/introspect", nowhere()),
    );
    let p = pipeline(&introspection, deny_list()).await;
    let live = Row {
        direction: "inbound",
        envoy: None,
        ..row("", "app", "/live", ForwardWithIdentity)
    };
    let own = format!("Bearer {}", sts.alice().await);
    let got = decide(&p, &live, Some(own.clone())).await;
    let expect = Deny(503, "introspection_unavailable");
    note(&mut failures, "the live check is down", &got, expect, &own);

    // The issuer's keys never loaded (the pipeline built without its first fetch).
    let env = HashMap::new();
    let keyless = scripted_with(
        &sts,
        dir.path(),
        &format!("  - issuer: {}\n", sts.service.issuer()),
        &format!(
            "  - issuer: {}\n    jwks_uri: {}/certs\n",
            sts.service.issuer(),
            nowhere()
        ),
    );
    let cfg = Config::from_yaml(&keyless, &env).unwrap();
    let policy = PolicyEngine::load_configured(cfg.policy.as_ref()).unwrap();
    let state = State::new(&cfg, deny_list());
    let p = Pipeline::new(&cfg, policy, Arc::new(Credentials::default()), &state).unwrap();
    let got = decide(&p, &docs, Some(alice.clone())).await;
    note(
        &mut failures,
        "the issuer's keys are unavailable",
        &got,
        Deny(503, "jwks_unavailable"),
        &alice,
    );

    // What the proxy sends that cannot be read, or was never asked for.
    let p = pipeline(&scripted_config(&sts, dir.path(), None), deny_list()).await;
    let sideways = Row {
        direction: "sideways",
        ..docs_row()
    };
    let got = decide(&p, &sideways, Some(alice.clone())).await;
    note(
        &mut failures,
        "a direction the proxy never sets",
        &got,
        Deny(500, "direction_unknown"),
        &alice,
    );
    let no_path = RequestFacts::new(
        Some("outbound"),
        vec![
            (":authority".into(), b"document-service".to_vec()),
            (":method".into(), b"GET".to_vec()),
        ],
    );
    let got = match no_path {
        Ok(f) => Ok(p.decide(&f).await),
        Err(e) => Err(p.refuse_unreadable(Some("outbound"), e)),
    };
    note(
        &mut failures,
        "a request without :path",
        &got,
        Deny(400, "request_malformed"),
        &alice,
    );
    let inbound_facts = RequestFacts::new(
        Some("inbound"),
        vec![
            (":authority".into(), b"app".to_vec()),
            (":method".into(), b"POST".to_vec()),
            (":path".into(), b"/ok".to_vec()),
        ],
    )
    .unwrap();
    let got = Ok(p.decide_body(&inbound_facts, Some(b"{}")).await);
    note(
        &mut failures,
        "a body phase nobody asked for",
        &got,
        Deny(500, "sidecar_misconfigured"),
        &alice,
    );

    all_passed(&failures, "steps");
}
