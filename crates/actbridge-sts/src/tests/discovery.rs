//! Discovery, JWKS, unknown realm, the outage switch, counters and shutdown.

use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use super::support::*;
use crate::{StsStats, TokenService};

#[tokio::test]
async fn discovery_names_the_keycloak_endpoints() {
    let h = Harness::start().await;
    let url = format!("{}/.well-known/openid-configuration", h.sts.issuer());
    let doc: Value = h.http.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["issuer"], h.sts.issuer());
    assert!(h.sts.issuer().ends_with("/realms/actbridge"));
    assert_eq!(
        doc["token_endpoint"],
        format!("{}/protocol/openid-connect/token", h.sts.issuer())
    );
    assert_eq!(doc["jwks_uri"], h.sts.jwks_uri());
    assert_eq!(
        doc["grant_types_supported"],
        json!(["password", "client_credentials", TOKEN_EXCHANGE])
    );
    let methods = doc["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    for m in [
        "client_secret_post",
        "client_secret_basic",
        "private_key_jwt",
    ] {
        assert!(methods.contains(&json!(m)), "{m}");
    }
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
}

#[tokio::test]
async fn jwks_publishes_the_key_and_verifies_issued_tokens() {
    let h = Harness::start().await;
    let jwks: JwkSet = h
        .http
        .get(h.sts.jwks_uri())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks.keys.len(), 1);
    let raw: Value = h
        .http
        .get(h.sts.jwks_uri())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &raw["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert!(key["n"].is_string() && key["e"].is_string());
    let jwk: &Jwk = &jwks.keys[0];
    let kid = jwk.common.key_id.clone().unwrap();
    assert_eq!(
        kid,
        jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
        "kid is the RFC 7638 thumbprint"
    );

    let token = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    assert_eq!(header(&token)["kid"], kid);
    assert_eq!(header(&token)["alg"], "RS256");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[h.sts.issuer()]);
    validation.set_audience(&[OPS]);
    let data =
        jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap();
    assert_eq!(data.claims["sub"], ALICE_ID);
}

#[tokio::test]
async fn an_unknown_realm_is_a_keycloak_404_on_every_path() {
    let h = Harness::start().await;
    let base = h.sts.issuer().replace("/realms/actbridge", "/realms/nope");
    for path in [
        "/.well-known/openid-configuration",
        "/protocol/openid-connect/certs",
    ] {
        let resp = h.http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 404);
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "Realm does not exist"
        );
    }
    let resp = h
        .http
        .post(format!("{base}/protocol/openid-connect/token"))
        .form(&[("grant_type", "password")]);
    let resp = resp.send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "Realm does not exist");
    assert!(body["error_description"].is_string());
    assert_eq!(h.sts.stats().refused, 3);
}

#[tokio::test]
async fn the_outage_switch_answers_503_until_turned_off() {
    let h = Harness::start().await;
    h.sts.set_unavailable(true);
    let got = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", OPS),
            ("client_secret", OPS_SECRET),
        ])
        .await;
    assert_refused(
        &got,
        503,
        "temporarily_unavailable",
        "The token service is temporarily unavailable",
    );
    h.sts.set_unavailable(false);
    h.client_credentials(OPS, OPS_SECRET).await;
    assert_eq!(
        h.sts.stats(),
        StsStats {
            password: 0,
            client_credentials: 2,
            token_exchange: 0,
            refused: 1,
            ..StsStats::default()
        }
    );
}

#[tokio::test]
async fn counters_count_requests_per_grant_and_every_refusal() {
    let h = Harness::start().await;
    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    let _ = h
        .token(&[
            ("grant_type", "password"),
            ("client_id", OPS),
            ("client_secret", "x"),
        ])
        .await;
    let _ = h
        .exchange((OPS, OPS_SECRET), &alice, None, &[("audience", DOCS)])
        .await;
    let _ = h.exchange((OPS, OPS_SECRET), "garbage", None, &[]).await;
    let _ = h.token(&[("grant_type", "refresh_token")]).await;
    assert_eq!(
        h.sts.stats(),
        StsStats {
            password: 2,
            client_credentials: 0,
            token_exchange: 2,
            refused: 3,
            ..StsStats::default()
        }
    );
}

#[tokio::test]
async fn serve_returns_after_shutdown() {
    let h = Harness::start().await;
    let url = h.sts.jwks_uri();
    assert!(h.http.get(&url).send().await.unwrap().status().is_success());
    h.stop().await.unwrap();
}

#[tokio::test]
async fn tokens_are_cache_control_no_store() {
    let h = Harness::start().await;
    let resp = h
        .http
        .post(h.sts.token_endpoint())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", OPS),
            ("client_secret", OPS_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
}

#[test]
fn a_loaded_key_keeps_its_kid_and_a_bad_key_is_named() {
    let realm = || crate::Realm::from_yaml_str(DEMO_REALM).unwrap();
    let pem = service_key_pem().as_bytes();
    let a = TokenService::new(realm(), "http://127.0.0.1:1", Some(pem)).unwrap();
    let b = TokenService::new(realm(), "http://127.0.0.1:2/", Some(pem)).unwrap();
    assert_eq!(
        header(&a.sign_claims(&json!({"x": 1})))["kid"],
        header(&b.sign_claims(&json!({})))["kid"]
    );
    assert_eq!(b.issuer(), "http://127.0.0.1:2/realms/actbridge");
    let err = TokenService::new(realm(), "http://127.0.0.1:1", Some(b"not a pem")).unwrap_err();
    assert!(err.to_string().contains("signing key"), "{err}");
    let err = TokenService::new(realm(), "not a url", None).unwrap_err();
    assert!(err.to_string().contains("public_url"), "{err}");
    let generated = TokenService::new(realm(), "http://127.0.0.1:1", None).unwrap();
    assert_ne!(
        header(&generated.sign_claims(&json!({})))["kid"],
        header(&a.sign_claims(&json!({})))["kid"]
    );
}
