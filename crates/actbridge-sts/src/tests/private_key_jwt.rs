//! `private_key_jwt` client authentication (RFC 7523).

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use super::support::*;
use crate::claims::now;

async fn with_assertion(h: &Harness, assertion: &str) -> (reqwest::StatusCode, Value) {
    h.token(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ])
    .await
}

fn rsa(h: &Harness, claims: Value) -> String {
    let mut claims = claims;
    if claims.get("aud").is_none() {
        claims["aud"] = json!(h.sts.token_endpoint());
    }
    assertion(
        &client_keys().rsa.signing,
        Algorithm::RS256,
        "jwt-rsa",
        claims,
    )
}

#[tokio::test]
async fn each_key_type_authenticates() {
    let h = Harness::start().await;
    let keys = client_keys();
    let cases: [(&str, &EncodingKey, Algorithm); 4] = [
        ("jwt-rsa", &keys.rsa.signing, Algorithm::RS256),
        ("jwt-rsa", &keys.rsa.signing, Algorithm::PS256),
        ("jwt-ec", &keys.ec.signing, Algorithm::ES256),
        ("jwt-ed", &keys.ed.signing, Algorithm::EdDSA),
    ];
    for (client, key, alg) in cases {
        let a = assertion(key, alg, client, json!({ "aud": h.sts.token_endpoint() }));
        let (status, body) = with_assertion(&h, &a).await;
        assert_eq!(status, 200, "{client} {alg:?}: {body}");
        assert_eq!(
            claims(body["access_token"].as_str().unwrap())["azp"],
            client
        );
    }
    // The issuer is an accepted audience too, and client_id may repeat the sub.
    let a = rsa(&h, json!({ "aud": h.sts.issuer() }));
    let (status, _) = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "jwt-rsa"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &a),
        ])
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_replayed_jti_is_refused() {
    let h = Harness::start().await;
    let a = rsa(&h, json!({}));
    assert_eq!(with_assertion(&h, &a).await.0, 200);
    assert_refused(
        &with_assertion(&h, &a).await,
        400,
        "invalid_client",
        "Token reuse detected",
    );
    // The same jti in a freshly signed assertion is a replay too.
    let jti = claims(&a)["jti"].clone();
    let b = rsa(&h, json!({ "jti": jti }));
    assert_refused(
        &with_assertion(&h, &b).await,
        400,
        "invalid_client",
        "Token reuse detected",
    );
}

#[tokio::test]
async fn assertion_refusals_match_keycloak() {
    let h = Harness::start().await;
    let now = now();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "aud": "https://elsewhere.example/token" }),
            "Invalid token audience",
        ),
        (
            json!({ "aud": [h.sts.token_endpoint(), h.sts.issuer()] }),
            "Multiple audiences not allowed",
        ),
        (json!({ "jti": null }), "Token jti claim is required"),
        (json!({ "exp": null }), "Token exp claim is required"),
        (json!({ "exp": now - 1 }), "Token is not active"),
        (
            json!({ "exp": now + 600 }),
            "Token expiration is too far in the future",
        ),
        (
            json!({ "iat": now + 120 }),
            "Token was issued in the future",
        ),
        (json!({ "sub": null }), "Token sub claim is required"),
    ];
    for (claims, description) in cases {
        let a = rsa(&h, claims.clone());
        assert_refused(
            &with_assertion(&h, &a).await,
            400,
            "invalid_client",
            description,
        );
    }
}

#[tokio::test]
async fn signatures_and_algorithms_are_checked() {
    let h = Harness::start().await;
    let keys = client_keys();
    let aud = json!({ "aud": h.sts.token_endpoint() });
    let forged = assertion(
        &keys.stranger.signing,
        Algorithm::RS256,
        "jwt-rsa",
        aud.clone(),
    );
    assert_refused(
        &with_assertion(&h, &forged).await,
        400,
        "invalid_client",
        "Client authentication with signed JWT failed: Signature on JWT token failed validation",
    );
    // An RSA-registered client may not switch to another family (no algorithm confusion).
    let hmac = assertion(
        &EncodingKey::from_secret(b"k"),
        Algorithm::HS256,
        "jwt-rsa",
        aud.clone(),
    );
    assert_refused(
        &with_assertion(&h, &hmac).await,
        400,
        "invalid_client",
        "Invalid signature algorithm",
    );
    let ec = assertion(&keys.ec.signing, Algorithm::ES256, "jwt-rsa", aud.clone());
    assert_refused(
        &with_assertion(&h, &ec).await,
        400,
        "invalid_client",
        "Invalid signature algorithm",
    );
    // alg "none": header {"alg":"none"}, no signature.
    let none = format!(
        "eyJhbGciOiJub25lIn0.{}.",
        rsa(&h, json!({})).split('.').nth(1).unwrap()
    );
    assert_refused(
        &with_assertion(&h, &none).await,
        400,
        "invalid_client",
        "Invalid signature algorithm",
    );
}

#[tokio::test]
async fn the_assertion_must_name_a_key_client() {
    let h = Harness::start().await;
    let keys = client_keys();
    let bad = "Invalid client or Invalid client credentials";
    let aud = json!({ "aud": h.sts.token_endpoint() });
    // Unknown client; a secret client; a third-party assertion (iss ≠ sub).
    let unknown = assertion(&keys.rsa.signing, Algorithm::RS256, "nobody", aud.clone());
    assert_refused(
        &with_assertion(&h, &unknown).await,
        401,
        "invalid_client",
        bad,
    );
    let secret_client = assertion(&keys.rsa.signing, Algorithm::RS256, OPS, aud.clone());
    assert_refused(
        &with_assertion(&h, &secret_client).await,
        401,
        "invalid_client",
        bad,
    );
    let third_party = rsa(&h, json!({ "iss": "someone-else" }));
    assert_refused(
        &with_assertion(&h, &third_party).await,
        401,
        "invalid_client",
        bad,
    );
    // client_id contradicting the assertion.
    let a = rsa(&h, json!({}));
    let got = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "jwt-ec"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &a),
        ])
        .await;
    assert_refused(
        &got,
        400,
        "invalid_client",
        "client_id parameter does not match sub claim",
    );
}

#[tokio::test]
async fn assertion_parameters_are_checked() {
    let h = Harness::start().await;
    let a = rsa(&h, json!({}));
    let got = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_assertion", &a),
        ])
        .await;
    assert_refused(
        &got,
        400,
        "invalid_client",
        "Parameter client_assertion_type is missing",
    );
    let got = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:x"),
            ("client_assertion", &a),
        ])
        .await;
    assert_eq!(got.1["error"], "invalid_client");
    let got = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
        ])
        .await;
    assert_refused(
        &got,
        400,
        "invalid_client",
        "client_assertion parameter missing",
    );
    let got = with_assertion(&h, "not.a.jwt").await;
    assert_refused(
        &got,
        400,
        "invalid_client",
        "Client authentication with signed JWT failed: malformed JWT",
    );
}
