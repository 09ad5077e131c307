//! The token endpoint's answer read within bounds: every number in it checked, every
//! time computed from it saturating. A garbage answer is a typed error, never a panic —
//! read directly, and through the exchanger against a stand-in endpoint on 127.0.0.1:0.

use std::collections::HashMap;
use std::time::Duration;

use axum::routing::post;

use super::{
    ExchangeError, Exchanger, IssuedToken, MAX_EXPIRES_IN_SECS, parse_token_response,
    token_client::TokenResponse,
};
use crate::config::{ACCESS_TOKEN_TYPE, Config, ExchangeTarget};

const NOW: u64 = 1_764_000_000;

fn answer(expires_in: &str) -> String {
    format!(r#"{{"access_token":"tok-secret","token_type":"Bearer","expires_in":{expires_in}}}"#)
}

#[test]
fn expires_in_outside_one_second_to_a_year_is_an_invalid_answer() {
    let max = MAX_EXPIRES_IN_SECS.to_string();
    let over = (MAX_EXPIRES_IN_SECS + 1).to_string();
    for bad in [
        "5000000000000000000",
        "18446744073709551615",
        "18446744073709551616",
        "1e300",
        "-1",
        "-5000000000000000000",
        "0",
        "0.5",
        "300.0",
        "3.6e3",
        over.as_str(),
        r#""300""#,
        "true",
        "[300]",
        "{}",
    ] {
        let got = parse_token_response(200, answer(bad).as_bytes(), NOW);
        match got {
            Err(ExchangeError::InvalidResponse(why)) => {
                assert!(!why.contains("tok-secret"), "{bad}: the token in {why}");
            }
            other => panic!("expires_in {bad}: {other:?}"),
        }
    }
    for (good, life) in [("1", 1), ("300", 300), (max.as_str(), MAX_EXPIRES_IN_SECS)] {
        let t = parse_token_response(200, answer(good).as_bytes(), NOW).unwrap();
        assert_eq!(t.expires_at, NOW + life, "{good}");
        assert!(t.cache_for() <= Duration::from_secs(life), "{good}");
    }
    // Absent or null: the default lifetime (60 s).
    for absent in [
        r#"{"access_token":"t","token_type":"Bearer"}"#,
        r#"{"access_token":"t","token_type":"bearer","expires_in":null}"#,
    ] {
        let t = parse_token_response(200, absent.as_bytes(), NOW).unwrap();
        assert_eq!(t.expires_at, NOW + 60);
    }
}

#[test]
fn the_message_names_the_bound_and_not_the_token() {
    let Err(ExchangeError::InvalidResponse(why)) =
        parse_token_response(200, answer("5000000000000000000").as_bytes(), NOW)
    else {
        panic!("not refused");
    };
    assert!(why.contains("expires_in 5000000000000000000"), "{why}");
    assert!(why.contains("1..=31536000"), "{why}");
    assert!(!why.contains("tok-secret"), "{why}");
    assert_eq!(
        ExchangeError::InvalidResponse(why).reason(),
        "sts_invalid_response"
    );
}

#[test]
fn statuses_sort_into_unavailable_refused_and_invalid() {
    let ok = answer("60");
    let cases: [(u16, &str, &str); 8] = [
        (503, ok.as_str(), "sts_unavailable"),
        (429, "", "sts_unavailable"),
        (400, r#"{"error":"invalid_grant"}"#, "exchange_refused"),
        (400, "<html>", "sts_invalid_response"),
        (302, "", "sts_invalid_response"),
        (0, ok.as_str(), "sts_invalid_response"),
        (65535, ok.as_str(), "sts_invalid_response"),
        (
            200,
            r#"{"access_token":"","token_type":"Bearer"}"#,
            "sts_invalid_response",
        ),
    ];
    for (status, body, reason) in cases {
        let e = parse_token_response(status, body.as_bytes(), NOW).unwrap_err();
        assert_eq!(e.reason(), reason, "{status} {body}");
    }
}

#[test]
fn lifetimes_saturate_at_the_ends_of_the_clock() {
    let resp = |expires_in| TokenResponse {
        access_token: "t".into(),
        expires_in,
        issued_token_type: None,
    };
    let skew = Duration::from_secs(30);
    // A clock at its end and a subject token that never expires: no overflow.
    let t = IssuedToken::new(
        resp(Some(MAX_EXPIRES_IN_SECS)),
        u64::MAX,
        Some(u64::MAX),
        skew,
    );
    assert_eq!(t.expires_at, u64::MAX);
    assert_eq!(t.cache_for(), Duration::ZERO);
    // A subject token that expired long ago: capped by it, never cached.
    let t = IssuedToken::new(resp(Some(300)), NOW, Some(0), skew);
    assert_eq!((t.expires_at, t.cache_for()), (0, Duration::ZERO));
    // The usual case: 80 % of the life, within exp − skew.
    let t = IssuedToken::new(resp(Some(300)), NOW, Some(u64::MAX), skew);
    assert_eq!(t.expires_at, NOW + 300);
    assert_eq!(t.cache_for(), Duration::from_secs(240));
    let t = IssuedToken::new(resp(Some(300)), NOW, Some(NOW + 100), skew);
    assert_eq!(t.cache_for(), Duration::from_secs(70));
}

/// A token endpoint on 127.0.0.1:0 that answers every request with `body` (HTTP 200).
async fn stand_in(body: &'static str) -> String {
    let app = axum::Router::new().route(
        "/token",
        post(move || async move { ([("content-type", "application/json")], body) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/token")
}

fn exchanger(endpoint: &str) -> Exchanger {
    let yaml = format!(
        r#"
listen: {{ext_proc: "tcp://127.0.0.1:9001"}}
issuers:
  - issuer: http://idp.test/realms/demo
    jwks_uri: http://idp.test/certs
    audiences: [agent]
outbound:
  token_endpoint: {endpoint}
  client:
    client_id: agent
    auth: {{method: client_secret_post, secret: s}}
  routes:
    - host: docs
      cluster: docs
      action: exchange
      audience: docs
"#
    );
    let cfg = Config::from_yaml(&yaml, &HashMap::<String, String>::new()).unwrap();
    Exchanger::new(cfg.outbound.as_ref().unwrap())
}

fn target() -> ExchangeTarget {
    ExchangeTarget {
        audience: "docs".into(),
        scopes: Vec::new(),
        requested_token_type: ACCESS_TOKEN_TYPE.into(),
    }
}

#[tokio::test]
async fn a_token_service_answering_expires_in_5e18_fails_the_exchange_without_a_panic() {
    let endpoint = stand_in(
        r#"{"access_token":"eyJ.e30.sig","token_type":"Bearer","expires_in":5000000000000000000}"#,
    )
    .await;
    let ex = exchanger(&endpoint);
    // Cached, fresh, and as the actor token (client credentials): each a typed error.
    for name_actor in [false, true] {
        let got = ex
            .exchange("subject", NOW + 3600, &target(), name_actor)
            .await;
        assert!(
            matches!(&got, Err(ExchangeError::InvalidResponse(why)) if why.contains("expires_in")),
            "{got:?}"
        );
        let got = ex
            .exchange_fresh("subject", u64::MAX, &target(), name_actor)
            .await;
        assert!(
            matches!(got, Err(ExchangeError::InvalidResponse(_))),
            "{got:?}"
        );
    }
}

#[tokio::test]
async fn a_token_service_answering_a_negative_or_fractional_expires_in_fails_the_exchange() {
    for body in [
        r#"{"access_token":"t","token_type":"Bearer","expires_in":-1}"#,
        r#"{"access_token":"t","token_type":"Bearer","expires_in":299.5}"#,
        r#"{"access_token":"t","token_type":"Bearer","expires_in":0}"#,
    ] {
        let ex = exchanger(&stand_in(body).await);
        let got = ex.exchange("subject", NOW + 3600, &target(), false).await;
        assert!(
            matches!(got, Err(ExchangeError::InvalidResponse(_))),
            "{body}: {got:?}"
        );
    }
}

#[test]
fn a_401_rejects_actbridges_own_client_and_other_refusals_are_the_callers() {
    // Keycloak 26.7's answers, as seen from a real one (tests/cases/keycloak.rs).
    let wrong_secret = br#"{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}"#;
    let got = super::token_client::parse_answer(401, wrong_secret);
    assert!(
        matches!(&got, Err(ExchangeError::ClientRejected { error, .. }) if error == "unauthorized_client"),
        "{got:?}"
    );
    assert_eq!(got.unwrap_err().reason(), "client_rejected");
    let unknown_audience =
        br#"{"error":"invalid_client","error_description":"Audience not found"}"#;
    let got = super::token_client::parse_answer(400, unknown_audience);
    assert!(
        matches!(&got, Err(ExchangeError::Refused { status: 400, error, .. }) if error == "invalid_client"),
        "{got:?}"
    );
}
