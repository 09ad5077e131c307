//! Only access tokens are access tokens, through the real Envoy (issue 19). An issuer
//! signs more than access tokens: its ID, refresh, offline and logout tokens carry the
//! same signature and may carry the right `aud`. Each refused token here is a real token
//! of the token service, re-signed with the issuer's key (the test holds it) after one
//! change: its Keycloak `typ` claim, its JOSE header `typ`, a claim given twice, or an
//! `exp` past the year 9999. Inbound the app sees nothing; outbound and on a vend route
//! the destination sees nothing and no token service or backend is called. The same
//! token re-signed unchanged, or without `typ` at all, still passes.

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use super::github::github_sidecar_config;
use super::hostile::forge::{RsaKey, claims_of_header, jws, jws_raw, rsa_key};
use crate::support::github::GithubApi;
use crate::support::world::{Sts, World, claims_of, sidecar_config};

const NOT_ACCESS: &str = "the token is not an access token";

/// `token` with `header` and `claims` members patched (`null` removes one), re-signed
/// with the issuer's key.
fn resign(key: &RsaKey, token: &str, header: Value, claims: Value) -> String {
    let patch = |mut v: Value, p: Value| {
        for (k, x) in p.as_object().unwrap() {
            match x {
                Value::Null => v.as_object_mut().unwrap().remove(k),
                x => v.as_object_mut().unwrap().insert(k.clone(), x.clone()),
            };
        }
        v
    };
    jws(
        patch(claims_of_header(token), header),
        &patch(claims_of(token), claims),
        &key.key,
        Algorithm::RS256,
    )
}

/// `token` re-signed with a second `sub` in front of its own: serde_json (and so
/// actbridge, before) reads the last copy, a first-wins parser the other.
fn with_sub_twice(key: &RsaKey, token: &str) -> String {
    let payload = serde_json::to_string(&claims_of(token)).unwrap();
    let payload = payload.replacen('{', r#"{"sub":"someone-else","#, 1);
    let header = serde_json::to_vec(&claims_of_header(token)).unwrap();
    jws_raw(&header, payload.as_bytes(), &key.key, Algorithm::RS256)
}

/// Every way `token` is turned into something that is not a usable access token, with
/// the `error_description` the caller must get.
fn not_access_tokens(key: &RsaKey, token: &str) -> Vec<(String, String, &'static str)> {
    let mut rows = Vec::new();
    for class in ["ID", "Refresh", "Logout", "Offline"] {
        rows.push((
            format!("claim typ {class}"),
            resign(key, token, json!({}), json!({ "typ": class })),
            NOT_ACCESS,
        ));
    }
    for typ in [
        "JOSE+JSON",
        "JOSE",
        "logout+jwt",
        "secevent+jwt",
        "dpop+jwt",
    ] {
        rows.push((
            format!("header typ {typ}"),
            resign(key, token, json!({ "typ": typ }), json!({})),
            NOT_ACCESS,
        ));
    }
    rows.push((
        "sub twice".into(),
        with_sub_twice(key, token),
        "the token is malformed",
    ));
    rows.push((
        "exp past 9999".into(),
        resign(key, token, json!({}), json!({"exp": u64::MAX})),
        "the token's times are out of range",
    ));
    rows
}

/// What a refused request got: its status, `WWW-Authenticate` and `error_description`.
async fn refusal(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let www = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let description = body["error_description"].as_str().unwrap_or("").to_string();
    (status, www, description)
}

/// The demo world whose token service signs with a key the test holds.
async fn world() -> (World, RsaKey) {
    let key = rsa_key();
    let sts = Sts::start_with_key(key.pem.as_bytes()).await;
    let config = sidecar_config(&sts);
    (World::start_with(sts, &config).await, key)
}

#[tokio::test]
async fn id_refresh_and_logout_tokens_with_the_right_aud_are_refused_inbound() {
    let (world, key) = world().await;
    let alice = world.sts.alice().await;
    assert_eq!(claims_of(&alice)["typ"], "Bearer");
    let mut failures = Vec::new();
    for (name, token, description) in not_access_tokens(&key, &alice) {
        let resp = world.inbound("/data").bearer_auth(&token).send().await;
        let got = refusal(resp.unwrap()).await;
        if got.0 != 401 || !got.1.contains("error=\"invalid_token\"") || got.2 != description {
            failures.push(format!(
                "{name}: expected 401 \"{description}\", got {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        world.actbridge.log()
    );
    assert_eq!(world.app.count(), 0, "the app must not be reached");

    // The same token, re-signed unchanged or without the `typ` claim, passes.
    for patch in [json!({}), json!({"typ": null})] {
        let token = resign(&key, &alice, json!({}), patch);
        let resp = world.inbound("/data").bearer_auth(&token).send().await;
        assert_eq!(resp.unwrap().status(), 200, "{}", world.actbridge.log());
    }
    assert_eq!(world.app.count(), 2);
    assert_eq!(
        world.app.seen()[0].header_all("x-actbridge-username"),
        vec!["alice"]
    );
}

#[tokio::test]
async fn id_refresh_and_logout_tokens_are_refused_outbound_before_any_exchange() {
    let (world, key) = world().await;
    let delegated = world.sts.alice_delegated().await;
    let before = world.sts.service.stats();
    let mut failures = Vec::new();
    for (name, token, description) in not_access_tokens(&key, &delegated) {
        let resp = world
            .agent_call("document-service", "/documents", &token)
            .await;
        let got = refusal(resp).await;
        if got.0 != 401 || got.2 != description {
            failures.push(format!(
                "{name}: expected 401 \"{description}\", got {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        world.actbridge.log()
    );
    assert_eq!(
        world.docs.count(),
        0,
        "the document service must not be reached"
    );
    let after = world.sts.service.stats();
    assert_eq!(
        (after.token_exchange, after.client_credentials),
        (before.token_exchange, before.client_credentials),
        "the token service must not be called"
    );

    let token = resign(&key, &delegated, json!({}), json!({}));
    let resp = world
        .agent_call("document-service", "/documents", &token)
        .await;
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    assert_eq!(world.docs.count(), 1);
    assert_eq!(
        world.sts.service.stats().token_exchange,
        before.token_exchange + 1
    );
}

#[tokio::test]
async fn an_id_token_is_refused_on_a_vend_route_before_the_backend_is_asked() {
    let key = rsa_key();
    let github = GithubApi::start().await;
    let sts = Sts::start_with_key(key.pem.as_bytes()).await;
    let config = github_sidecar_config(&sts, "summarizer-tech", &github);
    let world = World::builder(sts, &config)
        .github_api(github.port)
        .start()
        .await;
    let delegated = world.token_for("alice").await;
    let body = r#"{"target_service":"github","action":"read"}"#;
    for class in ["ID", "Refresh", "Logout"] {
        let token = resign(&key, &delegated, json!({}), json!({ "typ": class }));
        let got = refusal(world.vend(Some(&token), body).await).await;
        assert_eq!((got.0, got.2.as_str()), (401, NOT_ACCESS), "{class}");
    }
    assert!(
        github.token_requests().is_empty(),
        "GitHub must not be asked"
    );

    let token = resign(&key, &delegated, json!({}), json!({}));
    let resp = world.vend(Some(&token), body).await;
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    assert_eq!(github.token_requests().len(), 1);
}
