//! Live token checks at the issuer (RFC 7662) through the real Envoy: a token revoked at
//! the token service's `/revoke` is refused where introspection is configured and still
//! accepted where it is not (so the refusal is the live check, not local verification);
//! an issuer that cannot answer refuses the request (fail closed); an outbound route with
//! `introspect: true` refuses before any exchange; `cache_ttl` bounds how long a
//! revocation takes.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::faulty::{Fault, Faulty};
use crate::support::world::{
    AGENT, AGENT_SECRET, DOCUMENT_SERVICE, PORTAL, PORTAL_SECRET, Sts, World, sidecar_head,
};

/// summarizer-tech's sidecar: `/checked/` introspected inbound, the document service
/// route with `introspect: true`, the issuer's `introspection` section as given
/// (indented under the issuer), introspecting as `outbound.client` unless it says else.
fn config(sts: &Sts, introspection: &str) -> String {
    sidecar_head(sts, AGENT)
        + introspection
        + &format!(
            r#"inbound:
  introspect_paths:
    - prefix: /checked/
outbound:
  token_endpoint: {token}
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_basic, secret: {AGENT_SECRET}}}
  routes:
    - name: document-service
      host: document-service
      cluster: document_service
      action: exchange
      audience: "{DOCUMENT_SERVICE}"
      scopes: [documents.read]
      introspect: true
"#,
            token = sts.service.token_endpoint(),
        )
}

/// The `introspection` section pointing at the token service itself.
fn at_sts(sts: &Sts, extra: &str) -> String {
    format!(
        "    introspection:\n      endpoint: {}\n{extra}",
        sts.service.introspection_endpoint()
    )
}

/// `token`'s GET of `path` through the inbound listener.
async fn inbound(world: &World, path: &str, token: &str) -> reqwest::Response {
    world.inbound(path).bearer_auth(token).send().await.unwrap()
}

/// Revokes `token` at the token service as `client_id` (the client it was issued to:
/// the front end for a user's login, the agent for a delegation): RFC 7009, 200 with an
/// empty body.
async fn revoke_at_sts(world: &World, token: &str, (client_id, secret): (&str, &str)) {
    let resp = world
        .http
        .post(world.sts.service.revocation_endpoint())
        .form(&[
            ("client_id", client_id),
            ("client_secret", secret),
            ("token", token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "");
}

async fn metrics(world: &World) -> String {
    let url = format!("http://127.0.0.1:{}/metrics", world.actbridge.admin_port);
    world
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Asserts a 401 `token_inactive` answer.
async fn assert_inactive(world: &World, resp: reqwest::Response) {
    assert_eq!(resp.status(), 401, "{}", world.actbridge.log());
    let www = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(www.contains("error=\"invalid_token\""), "{www}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["error_description"], "the token is no longer active");
}

#[tokio::test]
async fn a_token_revoked_at_the_issuer_is_refused_where_checked_live_and_nowhere_else() {
    let sts = Sts::start().await;
    let config = config(&sts, &at_sts(&sts, ""));
    let world = World::start_with(sts, &config).await;
    let token = world.sts.alice().await;

    let ok = inbound(&world, "/checked/a", &token).await;
    assert_eq!(ok.status(), 200, "{}", world.actbridge.log());
    assert_eq!(world.sts.service.stats().introspection, 1);
    // The live check is not made where it is not asked for.
    let ok = inbound(&world, "/plain/a", &token).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(world.sts.service.stats().introspection, 1);

    revoke_at_sts(&world, &token, (PORTAL, PORTAL_SECRET)).await;
    let refused = inbound(&world, "/checked/a", &token).await;
    assert_inactive(&world, refused).await;
    assert_eq!(world.app.count(), 2, "the revoked token reached nothing");
    // Locally the token is still good: only the live check refuses it.
    let ok = inbound(&world, "/plain/b", &token).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(world.app.count(), 3);
    // Another token of the same user is still active.
    let other = world.sts.alice().await;
    let ok = inbound(&world, "/checked/b", &other).await;
    assert_eq!(ok.status(), 200);

    // A token that fails local verification is never sent to the issuer.
    let calls = world.sts.service.stats().introspection;
    let sig = token.rfind('.').unwrap() + 1;
    let flipped = if token[sig..].starts_with('A') {
        "B"
    } else {
        "A"
    };
    let forged = format!("{}{flipped}{}", &token[..sig], &token[sig + 1..]);
    let r = inbound(&world, "/checked/a", &forged).await;
    assert_eq!(r.status(), 401);
    assert_eq!(world.sts.service.stats().introspection, calls);

    let m = metrics(&world).await;
    assert!(
        m.contains(r#"actbridge_refusals_total{direction="inbound",reason="token_inactive"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"actbridge_upstream_calls_total{upstream="introspection",outcome="ok"} 3"#),
        "{m}"
    );
    assert!(m.contains(r#"stage="introspect""#), "{m}");
    let log = world.actbridge.log();
    assert!(!log.contains(&token), "the token is never logged");
    assert!(
        !log.contains(AGENT_SECRET),
        "the client secret is never logged"
    );
}

#[tokio::test]
async fn a_revoked_agent_token_is_refused_before_any_exchange() {
    let sts = Sts::start().await;
    let config = config(&sts, &at_sts(&sts, ""));
    let world = World::start_with(sts, &config).await;

    let live = world.token_for("alice").await;
    let r = world
        .agent_call("document-service", "/documents/DOC-001", &live)
        .await;
    assert_eq!(r.status(), 200, "{}", world.actbridge.log());
    assert_eq!(world.docs.count(), 1);

    // A token revoked before its first use: nothing was cached for it, so letting it
    // through would have needed an exchange.
    let revoked = world.token_for("bob").await;
    revoke_at_sts(&world, &revoked, (AGENT, AGENT_SECRET)).await;
    let before = world.sts.service.stats();
    let r = world
        .agent_call("document-service", "/documents/DOC-001", &revoked)
        .await;
    assert_inactive(&world, r).await;
    let after = world.sts.service.stats();
    assert_eq!(
        after.token_exchange, before.token_exchange,
        "no exchange was asked"
    );
    assert_eq!(after.client_credentials, before.client_credentials);
    assert_eq!(after.introspection, before.introspection + 1);
    assert_eq!(world.docs.count(), 1, "the document service saw nothing");
}

#[tokio::test]
async fn an_issuer_that_cannot_answer_refuses_the_request() {
    let sts = Sts::start().await;
    let faulty = Faulty::start(Fault::respond(200, "text/html", b"<html>login</html>")).await;
    let section = format!(
        "    introspection:\n      endpoint: {}\n      timeout: 300ms\n",
        faulty.url("/introspect")
    );
    let config = config(&sts, &section);
    let world = World::start_with(sts, &config).await;
    let token = world.sts.alice().await;

    let faults = [
        Fault::respond(200, "text/html", b"<html>login</html>"),
        Fault::respond(200, "application/json", br#"{"active":"yes"}"#),
        Fault::respond(
            503,
            "application/json",
            br#"{"error":"temporarily_unavailable"}"#,
        ),
        Fault::respond(401, "application/json", br#"{"error":"invalid_request"}"#),
        Fault::Close,
        Fault::Slow(
            Duration::from_secs(2),
            Box::new(Fault::respond(
                200,
                "application/json",
                br#"{"active":true}"#,
            )),
        ),
    ];
    for fault in faults {
        faulty.set(fault.clone());
        let r = inbound(&world, "/checked/a", &token).await;
        assert_eq!(r.status(), 503, "{fault:?}: {}", world.actbridge.log());
        assert!(r.headers().contains_key("retry-after"), "{fault:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
        assert_eq!(
            body["error_description"],
            "token validation is temporarily unavailable"
        );
    }
    assert_eq!(world.app.count(), 0, "nothing passed through");
    // The same token is fine where no live check is asked for.
    let ok = inbound(&world, "/plain/a", &token).await;
    assert_eq!(ok.status(), 200);

    // What was sent: the token in the form body, never in the URL; the client's
    // credentials in Basic (form-urlencoded id, RFC 6749 §2.3.1).
    let sent = String::from_utf8_lossy(&faulty.requests()[0]).to_string();
    assert!(sent.starts_with("POST /introspect HTTP/1.1"), "{sent}");
    assert!(sent.contains(&format!("token={token}")), "{sent}");
    assert!(sent.contains("token_type_hint=access_token"), "{sent}");
    assert!(
        sent.to_ascii_lowercase().contains("authorization: basic "),
        "{sent}"
    );
    let log = world.actbridge.log();
    assert!(log.contains("introspection_unavailable"), "{log}");
    assert!(log.contains("timed out"), "the operator is told why: {log}");
    assert!(!log.contains(&token), "the token is never logged");
}

#[tokio::test]
async fn with_a_cache_ttl_a_revocation_takes_effect_within_it() {
    let sts = Sts::start().await;
    let config = config(&sts, &at_sts(&sts, "      cache_ttl: 1s\n"));
    let world = World::start_with(sts, &config).await;
    let token = world.sts.alice().await;

    for _ in 0..2 {
        let ok = inbound(&world, "/checked/a", &token).await;
        assert_eq!(ok.status(), 200, "{}", world.actbridge.log());
    }
    assert_eq!(
        world.sts.service.stats().introspection,
        1,
        "the answer was reused"
    );

    revoke_at_sts(&world, &token, (PORTAL, PORTAL_SECRET)).await;
    let revoked_at = Instant::now();
    loop {
        let r = inbound(&world, "/checked/a", &token).await;
        if r.status() == 401 {
            assert_inactive(&world, r).await;
            break;
        }
        assert_eq!(r.status(), 200);
        assert!(
            revoked_at.elapsed() < Duration::from_millis(1500),
            "still accepted {:?} after the revocation",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // An inactive answer is never reused: each refusal asked again.
    let calls = world.sts.service.stats().introspection;
    let r = inbound(&world, "/checked/a", &token).await;
    assert_eq!(r.status(), 401);
    assert_eq!(world.sts.service.stats().introspection, calls + 1);
}
