//! Inbound through the real Envoy: every refusal with its status, the app never
//! reached when refused, forged identity headers stripped, the verified identity passed.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::support::world::{AGENT, World};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(world: &World) -> serde_json::Value {
    json!({
        "iss": world.sts.service.issuer(),
        "sub": "7f3e2a1c-0000-4000-8000-000000000001",
        "preferred_username": "alice",
        "aud": AGENT,
        "exp": now() + 300,
        "iat": now(),
    })
}

/// Sends `authorization` (if any) inbound and asserts the status and that the app was
/// not reached. Returns the response body.
async fn refused(world: &World, authorization: Option<&str>, status: u16) -> serde_json::Value {
    let mut req = world.inbound("/data");
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(
        resp.status().as_u16(),
        status,
        "actbridge log:\n{}",
        world.actbridge.log()
    );
    if status == 401 {
        let www = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(www.starts_with("Bearer realm=\"actbridge\""), "{www}");
        if authorization.is_some() {
            assert!(www.contains("error=\"invalid_token\""), "{www}");
        }
    }
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(world.app.count(), 0, "the app must not be reached");
    body
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// A compact JWS with arbitrary header and payload, signed with HMAC-SHA256 over `secret`.
fn hs256(header: serde_json::Value, payload: &serde_json::Value, secret: &[u8]) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = header["kid"].as_str().map(str::to_owned);
    jsonwebtoken::encode(&h, payload, &key).unwrap()
}

/// A token signed with a freshly generated RSA key that the issuer never published.
fn foreign_rs256(kid: &str, payload: &serde_json::Value) -> String {
    let pem = actbridge_sts::pem::fresh_rsa_private_key().unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some(kid.to_string());
    jsonwebtoken::encode(&h, payload, &key).unwrap()
}

fn kid_of(token: &str) -> String {
    let h = URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&h).unwrap();
    v["kid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn valid_token_reaches_the_app_with_the_verified_identity_and_forged_headers_stripped() {
    let world = World::start().await;
    let token = world.sts.alice().await;
    let resp = world
        .inbound("/data")
        .header("authorization", bearer(&token))
        .header("x-actbridge-subject", "forged-admin")
        .header("X-Actbridge-Username", "root")
        .header("x-actbridge-actors", "[{\"client_id\":\"evil\"}]")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    let seen = world.app.seen();
    assert_eq!(seen.len(), 1);
    let claims = crate::support::world::claims_of(&token);
    assert_eq!(
        seen[0].header_all("x-actbridge-subject"),
        vec![claims["sub"].as_str().unwrap()]
    );
    assert_eq!(seen[0].header_all("x-actbridge-username"), vec!["alice"]);
    assert_eq!(seen[0].header_all("x-actbridge-actors"), vec!["[]"]);
}

/// CGI, WSGI, Rack and PHP read `x_actbridge_username` as `x-actbridge-username`: a
/// header name with `_` never reaches the app (Envoy refuses the request, 400), in
/// either direction, whatever its case.
#[tokio::test]
async fn a_header_name_with_an_underscore_never_reaches_the_app_or_a_destination() {
    let world = World::start().await;
    let token = world.sts.alice().await;
    for name in [
        "x_actbridge_username",
        "X_Actbridge_Subject",
        "x-actbridge_grant",
    ] {
        let resp = world
            .inbound("/data")
            .header("authorization", bearer(&token))
            .header(name, "admin")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{name}");
        let resp = world
            .outbound("plain.example", "/")
            .header(name, "admin")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{name}");
    }
    assert_eq!(world.app.count(), 0);
    assert_eq!(world.docs.count(), 0);
}

#[tokio::test]
async fn missing_and_malformed_bearers_are_refused_with_401() {
    let world = World::start().await;
    let body = refused(&world, None, 401).await;
    assert_eq!(body["error"], "invalid_token");
    for bad in [
        "Basic YWxpY2U6YWxpY2UxMjM=",
        "Bearer",
        "Bearer a b",
        "Bearer a,b",
        "bearer",
    ] {
        refused(&world, Some(bad), 401).await;
    }
    refused(&world, Some("Bearer not-a-jwt"), 401).await;
}

#[tokio::test]
async fn forged_signatures_none_and_key_confusion_are_refused() {
    let world = World::start().await;
    let good = world.sts.sign(claims(&world));
    let kid = kid_of(&good);
    // Bad signature: the trusted kid, a key the issuer never had.
    let body = refused(
        &world,
        Some(&bearer(&foreign_rs256(&kid, &claims(&world)))),
        401,
    )
    .await;
    assert_eq!(
        body["error_description"],
        "the token's signature is invalid"
    );
    // Tampered payload under a valid signature.
    let mut parts: Vec<&str> = good.split('.').collect();
    let mut tampered = claims(&world);
    tampered["preferred_username"] = json!("bob");
    let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&tampered).unwrap());
    parts[1] = &p;
    refused(&world, Some(&bearer(&parts.join("."))), 401).await;
    // alg: none, with and without a signature segment.
    let none_header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{kid}"}}"#));
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(&world)).unwrap());
    let body = refused(
        &world,
        Some(&bearer(&format!("{none_header}.{payload}."))),
        401,
    )
    .await;
    assert_eq!(
        body["error_description"],
        "the token's algorithm is not accepted"
    );
    // Key confusion: HS256 with the issuer's public RSA key material as the secret.
    let jwks = reqwest::get(world.sts.service.jwks_uri())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let jwks_json: serde_json::Value = serde_json::from_slice(&jwks).unwrap();
    let n = URL_SAFE_NO_PAD
        .decode(jwks_json["keys"][0]["n"].as_str().unwrap())
        .unwrap();
    for secret in [&jwks[..], &n[..]] {
        let forged = hs256(json!({"kid": kid}), &claims(&world), secret);
        let body = refused(&world, Some(&bearer(&forged)), 401).await;
        assert_eq!(
            body["error_description"],
            "the token's algorithm is not accepted"
        );
    }
    // Unknown kid.
    let body = refused(
        &world,
        Some(&bearer(&foreign_rs256("no-such-kid", &claims(&world)))),
        401,
    )
    .await;
    assert_eq!(
        body["error_description"],
        "the token's signing key is not recognised"
    );
}

#[tokio::test]
async fn time_issuer_audience_and_size_violations_are_refused() {
    let world = World::start().await;
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "expired",
            json!({"exp": now() - 120}),
            "the token has expired",
        ),
        (
            "not yet valid",
            json!({"nbf": now() + 600}),
            "the token is not yet valid",
        ),
        (
            "issued in the future",
            json!({"iat": now() + 600}),
            "the token is not yet valid",
        ),
        (
            "wrong issuer",
            json!({"iss": "https://evil.example.com/realms/demo"}),
            "the token's issuer is not trusted",
        ),
        (
            "wrong audience",
            json!({"aud": "spiffe://demo.example.com/agent/reviewer-ops"}),
            "the token is not meant for this service",
        ),
        (
            "no exp",
            json!({"exp": null}),
            "the token's claims are invalid",
        ),
    ];
    for (name, patch, description) in cases {
        let mut c = claims(&world);
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        let body = refused(&world, Some(&bearer(&world.sts.sign(c))), 401).await;
        assert_eq!(body["error_description"], description, "case: {name}");
    }
    let mut big = claims(&world);
    big["padding"] = json!("x".repeat(9000));
    let body = refused(&world, Some(&bearer(&world.sts.sign(big))), 401).await;
    assert_eq!(body["error_description"], "the token is too large");
}

#[tokio::test]
async fn bypass_paths_need_no_token_but_still_lose_forged_identity_headers() {
    let world = World::start().await;
    let resp = world
        .inbound("/healthz")
        .header("x-actbridge-subject", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = world.inbound("/public/readme?x=1").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let seen = world.app.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].header("x-actbridge-subject").is_none());
    // A prefix match is on the path only: "/healthz/../data" style tricks are Envoy's to
    // normalise; a non-listed path still needs a token.
    refused_after(&world, "/healthzz", 2).await;
}

async fn refused_after(world: &World, path: &str, app_count: usize) {
    let resp = world.inbound(path).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(world.app.count(), app_count);
}

#[tokio::test]
async fn actbridge_down_fails_closed() {
    let mut world = World::start().await;
    let token = world.sts.alice().await;
    world.actbridge.kill();
    let resp = world
        .inbound("/data")
        .header("authorization", bearer(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(world.app.count(), 0);
}

#[tokio::test]
async fn the_act_chain_reaches_the_app_as_compact_json_newest_first() {
    let world = World::start().await;
    let mut c = claims(&world);
    c["act"] = json!({
        "sub": "sa-ops", "client_id": "spiffe://demo.example.com/agent/reviewer-ops",
        "act": {"sub": "sa-general", "client_id": "spiffe://demo.example.com/agent/reviewer-general"}
    });
    let resp = world
        .inbound("/data")
        .header("authorization", bearer(&world.sts.sign(c)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = world.app.seen();
    let actors: serde_json::Value =
        serde_json::from_str(seen[0].header("x-actbridge-actors").unwrap()).unwrap();
    assert_eq!(
        actors,
        json!([
            {"sub": "sa-ops", "client_id": "spiffe://demo.example.com/agent/reviewer-ops"},
            {"sub": "sa-general", "client_id": "spiffe://demo.example.com/agent/reviewer-general"}
        ])
    );
}

#[tokio::test]
async fn an_act_chain_deeper_than_ten_is_refused() {
    let world = World::start().await;
    let mut act = json!({"client_id": "spiffe://demo.example.com/agent/a-last"});
    for i in 0..10 {
        act = json!({"client_id": format!("spiffe://demo.example.com/agent/a{i}"), "act": act});
    }
    let mut c = claims(&world);
    c["act"] = act;
    let body = refused(&world, Some(&bearer(&world.sts.sign(c))), 401).await;
    assert_eq!(
        body["error_description"],
        "the token's delegation chain is too deep"
    );
}

/// No secret reaches actbridge's log: a token in the query string (`?access_token=…`),
/// refused or allowed, in either direction, is never written; the path and the request
/// id are.
#[tokio::test]
async fn no_token_or_query_string_reaches_actbridges_log() {
    let world = World::start().await;
    let token = world.sts.alice().await;
    let delegated = world.sts.alice_delegated().await;
    let query = |t: &str| format!("/data?access_token={t}&x=secret-query-value");
    let refused = world
        .inbound(&query(&token))
        .header("x-request-id", "req-refused-1")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let allowed = world
        .inbound(&query(&token))
        .header("x-request-id", "req-allowed-1")
        .header("authorization", bearer(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    for host in ["document-service", "blocked.example"] {
        world
            .outbound(host, &query(&delegated))
            .header("authorization", bearer(&delegated))
            .send()
            .await
            .unwrap();
    }
    let log = world.actbridge.log();
    for secret in [&token, &delegated] {
        let (_, signature) = secret.rsplit_once('.').unwrap();
        assert!(!log.contains(signature), "a token reached the log");
    }
    assert!(
        !log.contains("secret-query-value"),
        "a query string reached the log"
    );
    assert!(
        log.contains("req-refused-1") && log.contains("/data"),
        "{log}"
    );
}

/// The operator's log says who and where on each decision line (JSON, as a pod writes
/// it): request id, route, user and the acting agent; with `telemetry.log_allowed: 1.0`
/// every allowed decision is logged at INFO.
#[tokio::test]
async fn each_decision_line_says_which_request_route_user_and_agent() {
    let sts = crate::support::world::Sts::start().await;
    let config = crate::support::world::sidecar_config(&sts) + "telemetry:\n  log_allowed: 1.0\n";
    let world = World::start_with(sts, &config).await;
    let delegated = world.sts.alice_delegated().await;
    let resp = world
        .outbound("document-service", "/documents/DOC-001")
        .header("x-request-id", "req-allowed-7")
        .header("authorization", bearer(&delegated))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = world
        .inbound("/data")
        .header("x-request-id", "req-refused-7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let log = world.actbridge.log();
    let line = |id: &str| -> serde_json::Value {
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["fields"]["request_id"] == id)
            .unwrap_or_else(|| panic!("no line for {id}: {log}"))
    };
    let allowed = line("req-allowed-7");
    assert_eq!(allowed["level"], "INFO", "{allowed}");
    let fields = &allowed["fields"];
    assert_eq!(fields["message"], "allowed");
    assert_eq!(fields["direction"], "outbound");
    assert_eq!(fields["route"], "document-service");
    assert_eq!(fields["user"], "alice");
    assert_eq!(fields["agent"], AGENT);
    let refused = line("req-refused-7");
    assert_eq!(refused["level"], "INFO", "{refused}");
    let fields = &refused["fields"];
    assert_eq!(fields["message"], "refused");
    assert_eq!(fields["route"], "inbound");
    assert_eq!(fields["user"], "-");
    assert_eq!(fields["reason"], "token_missing");
}

/// A flood of refused requests cannot fill the disk (issue 20 §4): each audit record
/// holds at most 512 bytes of the path, and the log takes at most 20 "refused" lines a
/// second, the next one saying how many were left out.
#[tokio::test]
async fn a_flood_of_refused_requests_with_huge_paths_writes_a_bounded_log_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let sts = crate::support::world::Sts::start().await;
    let config = crate::support::world::sidecar_config(&sts)
        + &format!("audit:\n  path: {}\n", audit.display());
    let world = World::start_with(sts, &config).await;
    // The operator's log lines (INFO and above, the default), in JSON: stderr is not a
    // terminal, so `--log-format auto` writes one object per line.
    let operator_lines = |log: String| -> Vec<String> {
        log.lines()
            .filter(|l| {
                let line: serde_json::Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {l}"));
                matches!(line["level"].as_str(), Some("INFO" | "WARN" | "ERROR"))
            })
            .map(str::to_string)
            .collect()
    };
    let before = operator_lines(world.actbridge.log()).len();
    let path = format!("/{}", "a".repeat(20_000));
    let (requests, mut refused) = (300, 0);
    let started = std::time::Instant::now();
    for _ in 0..requests {
        let r = world.inbound(&path).send().await.unwrap();
        refused += usize::from(r.status() == 401);
    }
    let seconds = started.elapsed().as_secs() + 1;
    assert_eq!(refused, requests);
    // One more, in a fresh second: its line says how many the budget left out.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(world.inbound("/late").send().await.unwrap().status(), 401);
    let seconds = seconds + 2;
    let lines = operator_lines(world.actbridge.log());
    let added = &lines[before..];
    let refusals: Vec<serde_json::Value> = added
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["fields"]["message"] == "refused")
        .collect();
    let refusal_lines = refusals.len();
    // Each says who and where, for grepping: request id, route, user, agent.
    for line in &refusals {
        for field in [
            "request_id",
            "direction",
            "route",
            "user",
            "agent",
            "reason",
        ] {
            assert!(line["fields"][field].is_string(), "no {field}: {line}");
        }
    }
    // At most 20 refusal lines a second, whatever the machine's pace ...
    assert!(
        refusal_lines as u64 <= 20 * (seconds + 1),
        "{refusal_lines} refusal lines in {seconds} s"
    );
    // ... each carrying at most 512 bytes of the 20 KB path.
    let longest = added.iter().map(String::len).max().unwrap_or(0);
    assert!(longest < 3000, "a log line of {longest} bytes");
    // What was left out is said (when the flood outran the budget).
    if refusal_lines < requests {
        assert!(
            refusals
                .iter()
                .any(|l| l["fields"]["left_out"].as_u64() > Some(0)),
            "no line said what was left out"
        );
    }
    // Every refusal is audited, each record bounded.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let written = std::fs::read_to_string(&audit).unwrap();
    let records = written
        .lines()
        .filter(|l| l.contains("\"decision\""))
        .count();
    assert!(records >= requests, "{records} records");
    assert!(
        written.lines().all(|l| l.len() < 4096),
        "an audit record over 4 KiB"
    );
    assert_eq!(world.app.count(), 0);
}
