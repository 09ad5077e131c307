//! Client authentication with a secret: `client_secret_post`, `client_secret_basic`.

use super::support::*;

fn cc() -> Vec<(&'static str, &'static str)> {
    vec![("grant_type", "client_credentials")]
}

#[tokio::test]
async fn client_secret_basic_decodes_form_urlencoded_spiffe_ids() {
    let h = Harness::start().await;
    let (status, body) = h.token_basic(OPS, OPS_SECRET, &cc()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["azp"], OPS);
    // A plain id needs no encoding.
    let (status, _) = h
        .token_basic("no-exchange", "no-exchange-secret", &cc())
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn client_secret_basic_refuses_a_wrong_secret() {
    let h = Harness::start().await;
    assert_refused(
        &h.token_basic(OPS, "wrong", &cc()).await,
        401,
        "unauthorized_client",
        "Invalid client or Invalid client credentials",
    );
    // A malformed Authorization header with no client_id in the form.
    let resp = h
        .http
        .post(h.sts.token_endpoint())
        .header("authorization", "Basic !!!")
        .form(&cc())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn client_secret_post_refusals_match_keycloak() {
    let h = Harness::start().await;
    let bad = "Invalid client or Invalid client credentials";
    let with = |id: &'static str, secret: Option<&'static str>| {
        let mut f = cc();
        f.push(("client_id", id));
        if let Some(s) = secret {
            f.push(("client_secret", s));
        }
        f
    };
    assert_refused(
        &h.token(&cc()).await,
        400,
        "invalid_client",
        "Missing client_id parameter",
    );
    assert_refused(
        &h.token(&with("nobody", Some("x"))).await,
        401,
        "invalid_client",
        bad,
    );
    assert_refused(
        &h.token(&with(OPS, Some("wrong"))).await,
        401,
        "unauthorized_client",
        bad,
    );
    assert_refused(
        &h.token(&with(OPS, None)).await,
        401,
        "unauthorized_client",
        bad,
    );
    // Another client's secret does not authenticate this one.
    assert_refused(
        &h.token(&with(OPS, Some(GENERAL_SECRET))).await,
        401,
        "unauthorized_client",
        bad,
    );
    // A client registered for private_key_jwt cannot use a secret.
    assert_refused(
        &h.token(&with("jwt-rsa", Some("anything"))).await,
        401,
        "invalid_client",
        bad,
    );
}

#[tokio::test]
async fn refusals_never_echo_the_secret() {
    let h = Harness::start().await;
    let secret = "s3cr3t-that-must-not-leak";
    let (_, body) = h
        .token(&[
            ("grant_type", "password"),
            ("client_id", OPS),
            ("client_secret", secret),
        ])
        .await;
    assert!(!body.to_string().contains(secret));
}
