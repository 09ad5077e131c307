//! What actbridge refuses to pass on from a peer's answer, or cannot send to a peer: a
//! token from the token service that cannot be a header value, the issuer's live check
//! answering about another token, a verified claim that cannot be a header value, a
//! client key that cannot sign its assertion, and an MCP server's `tools/list` result
//! that cannot be read.

use std::sync::Mutex;

use serde_json::Value;

use super::failures::scripted_config;
use super::outcomes::policies;
use super::*;
use crate::support::config_edit::ConfigEdit;

/// A token endpoint (`/token`) and an introspection endpoint (`/introspect`) on
/// loopback, each answering the JSON the test last put in.
struct Peer {
    url: String,
    token: Arc<Mutex<Value>>,
    introspection: Arc<Mutex<Value>>,
}

impl Peer {
    async fn start() -> Peer {
        let token = Arc::new(Mutex::new(Value::Null));
        let introspection = Arc::new(Mutex::new(Value::Null));
        let answer = |v: Arc<Mutex<Value>>| {
            axum::routing::post(move || {
                let v = v.clone();
                async move { axum::Json(v.lock().unwrap().clone()) }
            })
        };
        let app = axum::Router::new()
            .route("/token", answer(token.clone()))
            .route("/introspect", answer(introspection.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Peer {
            url,
            token,
            introspection,
        }
    }

    fn answer_token(&self, access_token: &str) {
        *self.token.lock().unwrap() =
            json!({"access_token": access_token, "token_type": "Bearer", "expires_in": 300});
    }

    fn answer_introspection(&self, answer: Value) {
        *self.introspection.lock().unwrap() = answer;
    }
}

/// The scripted sidecar ([`scripted_config`]) with its token endpoint at `token`, its
/// live checks at `introspection`, authenticating to both with `auth` (a YAML flow
/// mapping).
fn config(
    sts: &Sts,
    policies: &std::path::Path,
    (token, introspection): (&str, &str),
    auth: &str,
) -> String {
    ConfigEdit::of(&scripted_config(sts, policies, Some(token)))
        .replace("issuers[0].introspection.endpoint", introspection)
        .replace("outbound.client.auth", auth)
        .yaml()
}

const SECRET: &str = "{method: client_secret_post, secret: summarizer-tech-demo-secret}";

/// The token service's and the issuer's answers, and the claims a verified token brings,
/// decide as the table says: a token with CR LF is not forwarded (502
/// `issued_token_unforwardable`), a live check about another subject or issuer is no
/// pass (502 `introspection_mismatch`), a username or subject with CR LF or NUL is not
/// put into the app's headers (401 `claim_unforwardable`); the same answers made right
/// pass.
#[tokio::test]
async fn what_the_peers_answer_and_the_claims_bring_decide_as_the_table_says() {
    use Expect::*;
    let sts = Sts::start().await;
    let peer = Peer::start().await;
    let dir = policies();
    let endpoints = (
        format!("{}/token", peer.url),
        format!("{}/introspect", peer.url),
    );
    let yaml = config(&sts, dir.path(), (&endpoints.0, &endpoints.1), SECRET);
    let p = pipeline(&yaml, Arc::new(DenyList::load(None).unwrap())).await;
    let alice = format!(
        "Bearer {}",
        sts.delegated("alice", "summarizer-tech", AGENT).await
    );
    let own = sts.alice().await;
    let own_claims = crate::support::world::claims_of(&own);
    let own = format!("Bearer {own}");
    let inbound = |path: &'static str| Row {
        direction: "inbound",
        envoy: None,
        ..row("", "app", path, ForwardWithIdentity)
    };
    let mut failures = Vec::new();

    // The token service issues a token that would split the request's headers.
    peer.answer_token("issued\r\nx-actbridge-subject: root");
    let got = decide(&p, &docs_row(), Some(alice.clone())).await;
    let expect = Deny(502, "issued_token_unforwardable");
    note(
        &mut failures,
        "an issued token with CR LF",
        &got,
        expect,
        &alice,
    );
    p.forget_cached();
    peer.answer_token("issued-by-the-peer");
    let got = decide(&p, &docs_row(), Some(alice.clone())).await;
    let expect = ForwardWithNewAuthorization;
    note(&mut failures, "an issued token", &got, expect, &alice);

    // The live check answers about another token.
    let sub = own_claims["sub"].clone();
    let issuer = sts.service.issuer();
    for (name, answer, expect) in [
        (
            "active, another subject",
            json!({"active": true, "sub": "someone-else", "iss": issuer}),
            Deny(502, "introspection_mismatch"),
        ),
        (
            "active, another issuer",
            json!({"active": true, "sub": sub, "iss": "https://issuer.invalid"}),
            Deny(502, "introspection_mismatch"),
        ),
        (
            "active, this token",
            json!({"active": true, "sub": sub, "iss": issuer}),
            ForwardWithIdentity,
        ),
    ] {
        p.forget_cached();
        peer.answer_introspection(answer);
        let got = decide(&p, &inbound("/live"), Some(own.clone())).await;
        note(&mut failures, name, &got, expect, &own);
    }

    // Claims the app would get as headers.
    for (claim, value) in [
        ("preferred_username", "alice\r\nx-actbridge-subject: root"),
        ("sub", "0b7e\u{0}root"),
    ] {
        let mut claims = own_claims.clone();
        claims[claim] = json!(value);
        let token = format!("Bearer {}", sts.sign(claims));
        let got = decide(&p, &inbound("/data"), Some(token.clone())).await;
        let expect = Deny(401, "claim_unforwardable");
        note(&mut failures, claim, &got, expect, &token);
    }
    let got = decide(&p, &inbound("/data"), Some(own.clone())).await;
    note(
        &mut failures,
        "claims as issued",
        &got,
        ForwardWithIdentity,
        &own,
    );

    all_passed(&failures, "steps");
}

/// A `private_key_jwt` key that cannot sign for its algorithm (a P-384 key configured
/// as ES256) fails on the sidecar's side: 500 `client_auth_failed`, and the token
/// service is never asked.
#[tokio::test]
async fn a_client_key_that_cannot_sign_fails_before_the_token_service_is_asked() {
    use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    let dir = policies();
    let key = dir.path().join("client-p384.pem");
    std::fs::write(&key, crate::support::pem("PRIVATE KEY", pkcs8.as_ref())).unwrap();
    let sts = Sts::start().await;
    let auth = format!(
        "{{method: private_key_jwt, algorithm: ES256, private_key_file: {}}}",
        key.display()
    );
    let endpoints = (
        sts.service.token_endpoint(),
        sts.service.introspection_endpoint(),
    );
    let yaml = config(&sts, dir.path(), (&endpoints.0, &endpoints.1), &auth);
    let p = pipeline(&yaml, Arc::new(DenyList::load(None).unwrap())).await;
    let alice = format!(
        "Bearer {}",
        sts.delegated("alice", "summarizer-tech", AGENT).await
    );
    let before = sts.service.stats();
    let got = decide(&p, &docs_row(), Some(alice.clone())).await;
    verdict(&Expect::Deny(500, "client_auth_failed"), &got, &alice).unwrap();
    let after = sts.service.stats();
    assert_eq!(
        (after.client_credentials, after.token_exchange),
        (before.client_credentials, before.token_exchange),
        "the token service was asked"
    );
}

/// A `tools/list` result the MCP server answers is narrowed to what the policy allows;
/// one that cannot be read (not JSON, a member named twice, a tool without a name) is
/// refused with 502 `mcp_response_unreadable`: the agent never sees a list nobody judged.
#[tokio::test]
async fn a_tools_list_result_that_cannot_be_read_is_refused() {
    let (t, _dir) = super::routes::Table::start().await;
    let list = Row {
        method: "POST",
        body: Some(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_string()),
        extra: &[("content-type", "application/json")],
        ..row(
            "",
            "mcp-documents",
            "/mcp",
            Expect::ForwardWithNewAuthorization,
        )
    };
    let narrowing = match t.decide(&list).await {
        Ok(Decision::Narrow { narrowing, .. }) => narrowing,
        other => panic!("a tools/list is narrowed: {other:?}"),
    };
    let json = "application/json";
    let tools = |tools: &str| format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{"tools":{tools}}}}}"#);

    let narrowed = t
        .pipeline
        .narrow_response(
            &narrowing,
            json,
            tools(r#"[{"name":"search"},{"name":"delete_document"}]"#).as_bytes(),
        )
        .await
        .expect("a readable list is narrowed");
    let narrowed: Value = serde_json::from_slice(&narrowed).unwrap();
    assert_eq!(
        narrowed["result"]["tools"],
        json!([{"name": "search"}]),
        "the tool the policy refuses is removed"
    );

    let mut failures = Vec::new();
    for (name, body) in [
        ("not JSON", "<html>".to_string()),
        (
            "a member named twice",
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[],"tools":[{"name":"delete_document"}]}}"#
                .to_string(),
        ),
        ("a tool without a name", tools(r#"[{"title":"x"}]"#)),
    ] {
        match t.pipeline.narrow_response(&narrowing, json, body.as_bytes()).await {
            Err(d) if (d.status, d.reason) == (502, "mcp_response_unreadable") => {}
            other => failures.push(format!("{name}: {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} answers not refused:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A token service that rejects the sidecar's own client (a wrong secret: HTTP 401
/// `unauthorized_client`, as Keycloak answers) is the operator's to fix, not the
/// caller's: 500 `client_rejected`, where a refusal of the request itself is 403.
#[tokio::test]
async fn a_token_service_rejecting_the_sidecars_client_is_a_server_error() {
    use Expect::*;
    let sts = Sts::start().await;
    let dir = policies();
    let yaml = ConfigEdit::of(&scripted_config(&sts, dir.path(), None))
        .replace(
            "outbound.client.auth",
            "{method: client_secret_post, secret: not-the-secret}",
        )
        .yaml();
    let p = pipeline(&yaml, Arc::new(DenyList::load(None).unwrap())).await;
    let alice = format!(
        "Bearer {}",
        sts.delegated("alice", "summarizer-tech", AGENT).await
    );
    let got = decide(&p, &docs_row(), Some(alice.clone())).await;
    let mut failures = Vec::new();
    let expect = Deny(500, "client_rejected");
    note(&mut failures, "a wrong client secret", &got, expect, &alice);
    all_passed(&failures, "steps");
}
