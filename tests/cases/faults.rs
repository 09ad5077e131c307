//! Fault injection through the real Envoy: a token service that is slow, resets or
//! answers garbage; the JWKS endpoint down at start and during the run (the loaded keys
//! trusted until `jwks_max_age`); actbridge killed and restarted under load. In every case the caller gets the documented refusal and the
//! upstream receives nothing that did not pass actbridge (its record is asserted on).
//! Token service down or unreachable (tests/cases/outbound.rs) and each credential
//! backend down (aws.rs, github.rs, postgres.rs, spiffe.rs) are covered where they live.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::config_edit::ConfigEdit;
use crate::support::faulty::{Fault, Faulty};
use crate::support::net::wait_http_ok;
use crate::support::world::{AGENT, Sts, World, sidecar_config};

/// A well-formed token response (what a healthy token service answers).
const TOKEN_RESPONSE: &[u8] =
    br#"{"access_token":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln","token_type":"Bearer","expires_in":60}"#;

/// summarizer-tech's sidecar with its token endpoint at `faulty` (the issuer's keys
/// still come from the real token service).
fn faulty_token_endpoint(sts: &Sts, faulty: &Faulty) -> String {
    ConfigEdit::of(&sidecar_config(sts))
        .replace(
            "outbound.token_endpoint",
            &faulty.url("/realms/demo/protocol/openid-connect/token"),
        )
        .yaml()
}

#[tokio::test]
// Long by design: one faulty peer switched through each fault in turn.
async fn a_token_service_that_is_slow_resets_or_answers_garbage_is_refused_and_nothing_reaches_the_destination()
 {
    let faulty = Faulty::start(Fault::Close).await;
    let sts = Sts::start().await;
    let config = faulty_token_endpoint(&sts, &faulty);
    let world = World::start_with(sts, &config).await;
    let json = "application/json";
    let truncated = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"access_token\":\"ab".to_vec();
    let huge = format!(
        r#"{{"access_token":"{}","token_type":"Bearer","expires_in":60}}"#,
        "a".repeat(70 * 1024)
    );
    // (what the token service does, the status the agent gets)
    let cases: Vec<(&str, Fault, u16)> = vec![
        (
            "answers after 3 s (token_timeout is 1 s)",
            Fault::Slow(
                Duration::from_secs(3),
                Box::new(Fault::respond(200, json, TOKEN_RESPONSE)),
            ),
            503,
        ),
        ("closes without answering", Fault::Close, 503),
        (
            "speaks another protocol",
            Fault::Raw(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()),
            503,
        ),
        ("a truncated body", Fault::Raw(truncated), 503),
        (
            "500 with an HTML page",
            Fault::respond(
                500,
                "text/html",
                b"<html><body>Internal Server Error</body></html>",
            ),
            503,
        ),
        (
            "429",
            Fault::respond(429, json, br#"{"error":"slow_down"}"#),
            503,
        ),
        (
            "200 with an HTML login page",
            Fault::respond(
                200,
                "text/html",
                b"<!DOCTYPE html><html><form>Sign in</form></html>",
            ),
            502,
        ),
        (
            "200 with text that is not JSON",
            Fault::respond(200, json, b"access_token=abc&token_type=bearer"),
            502,
        ),
        (
            "200 with JSON that is not a token response",
            Fault::respond(200, json, br#"{"status":"ok"}"#),
            502,
        ),
        (
            "200 with an empty access_token",
            Fault::respond(200, json, br#"{"access_token":"","token_type":"Bearer"}"#),
            502,
        ),
        (
            "200 with token_type mac",
            Fault::respond(200, json, br#"{"access_token":"abc","token_type":"mac"}"#),
            502,
        ),
        (
            "200 with CR LF in the access_token",
            Fault::respond(
                200,
                json,
                br#"{"access_token":"abc\r\nx-injected: 1","token_type":"Bearer"}"#,
            ),
            502,
        ),
        (
            "200 with expires_in 5000000000000000000 (overflowed a Duration: a panic)",
            Fault::respond(
                200,
                json,
                br#"{"access_token":"abc","token_type":"Bearer","expires_in":5000000000000000000}"#,
            ),
            502,
        ),
        (
            "200 with a negative expires_in",
            Fault::respond(
                200,
                json,
                br#"{"access_token":"abc","token_type":"Bearer","expires_in":-60}"#,
            ),
            502,
        ),
        (
            "200 with a fractional expires_in",
            Fault::respond(
                200,
                json,
                br#"{"access_token":"abc","token_type":"Bearer","expires_in":59.5}"#,
            ),
            502,
        ),
        (
            "200 with a 70 KiB body (over the 64 KiB limit)",
            Fault::respond(200, json, huge.as_bytes()),
            503,
        ),
        (
            "400 with an HTML page instead of an OAuth error",
            Fault::respond(400, "text/html", b"<html>Bad Request</html>"),
            502,
        ),
        (
            "400 invalid_grant (a refusal, for comparison)",
            Fault::respond(
                400,
                json,
                br#"{"error":"invalid_grant","error_description":"no"}"#,
            ),
            403,
        ),
    ];
    let mut failures = Vec::new();
    for (name, fault, status) in cases {
        faulty.set(fault);
        let before = faulty.requests().len();
        // A new subject token each time: nothing comes from the exchange cache.
        let token = world.sts.alice_delegated().await;
        let started = Instant::now();
        let resp = world
            .agent_call("document-service", "/documents", &token)
            .await;
        let took = started.elapsed();
        let got = resp.status().as_u16();
        let retry_after = resp.headers().get("retry-after").cloned();
        let body = resp.text().await.unwrap();
        if got != status {
            failures.push(format!("{name}: expected {status}, got {got} {body}"));
        }
        if status == 503 && retry_after.is_none_or(|v| v != "7") {
            failures.push(format!("{name}: 503 without retry-after: 7"));
        }
        if took > Duration::from_millis(2500) {
            failures.push(format!(
                "{name}: took {took:?}, beyond the 1 s token_timeout"
            ));
        }
        if faulty.requests().len() == before {
            failures.push(format!("{name}: the token service was not asked"));
        }
        for secret in ["abc", "Internal Server Error", "Sign in", "invalid_grant"] {
            if status != 403 && body.contains(secret) {
                failures.push(format!("{name}: the token service's answer leaked: {body}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nactbridge log:\n{}",
        failures.join("\n"),
        world.actbridge.log()
    );
    assert_eq!(world.docs.count(), 0, "nothing reached the destination");
    // What went to the token service: form-encoded token requests only.
    for r in faulty.requests() {
        let text = String::from_utf8_lossy(&r);
        assert!(text.starts_with("POST /realms/demo/protocol/openid-connect/token "));
        assert!(
            text.contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange")
        );
    }
    // The token service healthy again: the next request passes.
    faulty.set(Fault::respond(200, json, TOKEN_RESPONSE));
    let token = world.sts.alice_delegated().await;
    let resp = world
        .agent_call("document-service", "/documents", &token)
        .await;
    assert_eq!(resp.status(), 200);
    let seen = world.docs.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].bearer(), "eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
    assert!(seen[0].headers.iter().all(|(_, v)| !v.contains(&token)));
}

/// summarizer-tech's sidecar with the issuer's JWKS at `faulty` and refreshed every
/// second.
fn faulty_jwks(sts: &Sts, faulty: &Faulty) -> String {
    ConfigEdit::of(&sidecar_config(sts))
        .set("issuers[0].jwks_refresh_interval", "1s")
        .set("issuers[0].jwks_timeout", "1s")
        .set("issuers[0].jwks_uri", &faulty.url("/certs"))
        .yaml()
}

async fn jwks_of(sts: &Sts) -> Vec<u8> {
    reqwest::get(sts.service.jwks_uri())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

/// A token of alice for this agent, new each call (`jti`), so it is never a cache hit.
fn fresh_token(sts: &Sts) -> String {
    let now = actbridge::clock::now_secs();
    sts.sign(json!({
        "iss": sts.service.issuer(), "sub": "7f3e2a1c-0000-4000-8000-000000000001",
        "preferred_username": "alice", "aud": AGENT, "exp": now + 300, "iat": now,
        "jti": uuid::Uuid::new_v4().to_string(),
    }))
}

async fn inbound_status(world: &World, token: &str) -> (u16, Option<String>, String) {
    let resp = world
        .inbound("/data")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, resp.text().await.unwrap())
}

#[tokio::test]
async fn jwks_down_at_start_refuses_with_503_until_the_keys_load() {
    let faulty = Faulty::start(Fault::Close).await;
    let sts = Sts::start().await;
    let config = faulty_jwks(&sts, &faulty);
    let world = World::builder(sts, &config).unready().start().await;
    let readyz = format!("http://127.0.0.1:{}/readyz", world.actbridge.admin_port);
    assert_eq!(reqwest::get(&readyz).await.unwrap().status(), 503);

    let token = fresh_token(&world.sts);
    for fault in [
        Fault::Close,
        Fault::respond(200, "text/html", b"<html>maintenance</html>"),
        Fault::respond(200, "application/json", br#"{"keys":"none"}"#),
        Fault::Slow(Duration::from_secs(3), Box::new(Fault::Close)),
    ] {
        faulty.set(fault.clone());
        let (status, retry, body) = inbound_status(&world, &token).await;
        assert_eq!(status, 503, "{fault:?}: {body}");
        assert!(retry.is_some(), "{fault:?}: 503 without retry-after");
        assert!(body.contains("temporarily_unavailable"), "{body}");
        let delegated = world.sts.alice_delegated().await;
        let resp = world
            .agent_call("document-service", "/documents", &delegated)
            .await;
        assert_eq!(resp.status(), 503, "outbound, {fault:?}");
    }
    assert_eq!(world.app.count() + world.docs.count(), 0);
    assert_eq!(
        world.sts.service.stats().token_exchange,
        4,
        "only the test's own delegations: actbridge exchanged nothing"
    );

    // The JWKS comes back: ready within a couple of refresh intervals, tokens pass.
    faulty.set(Fault::respond(
        200,
        "application/json",
        &jwks_of(&world.sts).await,
    ));
    assert!(
        wait_http_ok(&readyz, Duration::from_secs(5)).await,
        "{}",
        world.actbridge.log()
    );
    let (status, _, body) = inbound_status(&world, &token).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn jwks_down_during_the_run_keeps_the_loaded_keys_and_refuses_unknown_kids() {
    let faulty = Faulty::start(Fault::Close).await;
    let sts = Sts::start().await;
    let jwks = jwks_of(&sts).await;
    faulty.set(Fault::respond(200, "application/json", &jwks));
    let config = faulty_jwks(&sts, &faulty);
    let world = World::start_with(sts, &config).await;
    assert_eq!(
        inbound_status(&world, &fresh_token(&world.sts)).await.0,
        200
    );

    let foreign = {
        let pem = actbridge_sts::pem::fresh_rsa_private_key().unwrap();
        jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()
    };
    let rotated_kid_token = |sts: &Sts| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.kid = Some("rotated-in".into());
        let now = actbridge::clock::now_secs();
        jsonwebtoken::encode(
            &h,
            &json!({"iss": sts.service.issuer(), "sub": "s", "aud": AGENT, "exp": now + 300}),
            &foreign,
        )
        .unwrap()
    };

    for fault in [
        Fault::Close,
        Fault::respond(503, "text/html", b"<html>down</html>"),
        Fault::respond(200, "text/html", b"<html>maintenance</html>"),
        Fault::Slow(Duration::from_secs(3), Box::new(Fault::Close)),
    ] {
        faulty.set(fault.clone());
        let fetches = faulty.requests().len();
        // Past a refresh cycle (≤ 1 s timeout + 1 s interval): a refresh has failed.
        tokio::time::sleep(Duration::from_millis(2200)).await;
        assert!(
            faulty.requests().len() > fetches,
            "{fault:?}: no refresh was attempted"
        );
        let (status, _, body) = inbound_status(&world, &fresh_token(&world.sts)).await;
        assert_eq!(
            status, 200,
            "{fault:?}: the loaded keys must keep working: {body}"
        );
        let delegated = world.sts.alice_delegated().await;
        let resp = world
            .agent_call("document-service", "/documents", &delegated)
            .await;
        assert_eq!(resp.status(), 200, "{fault:?}: outbound");
        let (status, _, body) = inbound_status(&world, &rotated_kid_token(&world.sts)).await;
        assert_eq!(status, 401, "{fault:?}: {body}");
        assert!(
            body.contains("the token's signing key is not recognised"),
            "{body}"
        );
    }
    assert!(
        world
            .actbridge
            .log()
            .contains("JWKS refresh failed; keeping the previous keys")
    );

    // The JWKS back, rotated to a new key only: the removed key stops working at the
    // next refresh.
    let rotated = {
        let mut jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&foreign, jsonwebtoken::Algorithm::RS256)
                .unwrap();
        jwk.common.key_id = Some("rotated-in".into());
        serde_json::to_vec(&json!({"keys": [jwk]})).unwrap()
    };
    faulty.set(Fault::respond(200, "application/json", &rotated));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, _, body) = inbound_status(&world, &rotated_kid_token(&world.sts)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = inbound_status(&world, &fresh_token(&world.sts)).await;
    assert_eq!(status, 401, "{body}");
    // Every request the app saw passed actbridge (it carries the verified identity).
    for seen in world.app.seen() {
        assert_eq!(seen.header_all("x-actbridge-subject").len(), 1);
    }
}

#[tokio::test]
async fn keys_not_refetched_within_jwks_max_age_are_no_longer_trusted() {
    let faulty = Faulty::start(Fault::Close).await;
    let sts = Sts::start().await;
    let jwks = jwks_of(&sts).await;
    faulty.set(Fault::respond(200, "application/json", &jwks));
    let config = ConfigEdit::of(&faulty_jwks(&sts, &faulty))
        .set("issuers[0].jwks_max_age", "3s")
        .yaml();
    let world = World::start_with(sts, &config).await;
    let readyz = format!("http://127.0.0.1:{}/readyz", world.actbridge.admin_port);
    assert_eq!(
        inbound_status(&world, &fresh_token(&world.sts)).await.0,
        200
    );

    faulty.set(Fault::Close);
    let down = Instant::now();
    // Within the max age (the last good fetch was at most a second before): still trusted.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (status, _, body) = inbound_status(&world, &fresh_token(&world.sts)).await;
    assert_eq!(status, 200, "{body}");
    // Past it: refused as unavailable, both ways, and not ready.
    tokio::time::sleep_until((down + Duration::from_millis(4500)).into()).await;
    let (status, retry, body) = inbound_status(&world, &fresh_token(&world.sts)).await;
    assert_eq!(status, 503, "{body}");
    assert!(retry.is_some());
    assert!(body.contains("temporarily_unavailable"), "{body}");
    let delegated = world.sts.alice_delegated().await;
    let resp = world
        .agent_call("document-service", "/documents", &delegated)
        .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(reqwest::get(&readyz).await.unwrap().status(), 503);
    assert_eq!(world.app.count(), 2);
    assert_eq!(world.docs.count(), 0);
    assert!(
        world
            .actbridge
            .log()
            .contains("no keys younger than jwks_max_age are held")
    );

    // The JWKS back: trusted and ready again at the next refresh.
    faulty.set(Fault::respond(200, "application/json", &jwks));
    assert!(wait_http_ok(&readyz, Duration::from_secs(5)).await);
    let (status, _, body) = inbound_status(&world, &fresh_token(&world.sts)).await;
    assert_eq!(status, 200, "{body}");
}

/// One request of the load: when it started and the status it got.
struct Sample {
    at: Instant,
    status: u16,
}

#[tokio::test]
async fn actbridge_killed_under_load_fails_closed_and_envoy_recovers_without_a_restart() {
    let mut world = World::start().await;
    let token = world.sts.alice().await;
    let port = world.envoy.inbound_port;
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (stop, token) = (stop.clone(), token.clone());
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().no_proxy().build().unwrap();
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let at = Instant::now();
                let status = http
                    .get(format!("http://127.0.0.1:{port}/data"))
                    .bearer_auth(&token)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                samples.push(Sample { at, status });
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            samples
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed_at = Instant::now();
    world.actbridge.kill();
    let killed_done = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let restart_at = Instant::now();
    world.actbridge.restart().await;
    let ready_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    for w in workers {
        samples.extend(w.await.unwrap());
    }

    let count = |f: &dyn Fn(&Sample) -> bool| samples.iter().filter(|s| f(s)).count();
    let ok = count(&|s| s.status == 200);
    let before = count(&|s| s.at < killed_at && s.status == 200);
    let down = samples
        .iter()
        .filter(|s| s.at > killed_done + Duration::from_millis(100) && s.at < restart_at)
        .collect::<Vec<_>>();
    let after = samples
        .iter()
        .filter(|s| s.at > ready_at + Duration::from_millis(500))
        .collect::<Vec<_>>();
    let others: Vec<u16> = samples
        .iter()
        .map(|s| s.status)
        .filter(|s| *s != 200 && *s != 500)
        .collect();
    assert!(others.is_empty(), "only 200 or Envoy's 500: {others:?}");
    assert!(before > 10, "load before the kill: {before}");
    assert!(down.len() > 10, "load while down: {}", down.len());
    assert!(
        down.iter().all(|s| s.status == 500),
        "while actbridge is down Envoy refuses everything"
    );
    assert!(after.len() > 10, "load after the restart: {}", after.len());
    assert!(
        after.iter().all(|s| s.status == 200),
        "Envoy reconnects to the restarted actbridge by itself: {:?}",
        after.iter().map(|s| s.status).collect::<Vec<_>>()
    );
    // The app saw exactly the requests that passed, each with the verified identity.
    let seen = world.app.seen();
    assert_eq!(seen.len(), ok);
    assert!(
        seen.iter()
            .all(|s| s.header_all("x-actbridge-username") == vec!["alice"]),
    );
    // And outbound works on the fresh process (empty caches: a new exchange).
    let delegated = world.sts.alice_delegated().await;
    let resp = world
        .agent_call("document-service", "/documents", &delegated)
        .await;
    assert_eq!(resp.status(), 200);
    eprintln!(
        "kill/restart: {} requests, {ok} passed, {} refused while down; restart to ready {:?}",
        samples.len(),
        down.len(),
        ready_at - restart_at
    );
}
