//! RFC 7662 introspection and RFC 7009 revocation: Keycloak's answers, and a revoked
//! token inactive everywhere.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::*;

const INTROSPECT_AUTH_FAILED: &str = "Authentication failed.";

impl Harness {
    /// POSTs `form` to the introspection endpoint; status and JSON body.
    async fn introspect_form(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.sts.introspection_endpoint())
            .form(form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.headers()["cache-control"],
            "no-store",
            "introspection answers are never cached"
        );
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }

    /// Introspects `token` as `client` (client_secret_post).
    async fn introspect(&self, (id, secret): (&str, &str), token: &str) -> (StatusCode, Value) {
        self.introspect_form(&[
            ("client_id", id),
            ("client_secret", secret),
            ("token", token),
        ])
        .await
    }

    /// POSTs `form` to the revocation endpoint; status and body text.
    async fn revoke_form(&self, form: &[(&str, &str)]) -> (StatusCode, String) {
        let resp = self
            .http
            .post(self.sts.revocation_endpoint())
            .form(form)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.text().await.unwrap())
    }

    /// Revokes `token` as `client`.
    async fn revoke(&self, (id, secret): (&str, &str), token: &str) -> (StatusCode, String) {
        self.revoke_form(&[
            ("client_id", id),
            ("client_secret", secret),
            ("token", token),
        ])
        .await
    }
}

#[track_caller]
fn assert_inactive(got: &(StatusCode, Value)) {
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1, json!({"active": false}), "nothing but active:false");
}

#[tokio::test]
async fn an_active_token_answers_its_claims_as_keycloak_does() {
    let h = Harness::start().await;
    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    // Any confidential client may introspect, not only the token's holder.
    let (status, body) = h.introspect((DOCS, DOCS_SECRET), &alice).await;
    assert_eq!(status, 200, "{body}");
    let issued = claims(&alice);
    assert_eq!(body["active"], true);
    for claim in [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "jti",
        "scope",
        "azp",
        "preferred_username",
    ] {
        assert_eq!(body[claim], issued[claim], "{claim}");
    }
    assert_eq!(body["sub"], ALICE_ID);
    assert_eq!(body["client_id"], PORTAL);
    assert_eq!(body["username"], "alice");
    assert_eq!(body["token_type"], "Bearer");

    // A delegated token carries its `act` chain; Basic client authentication works too.
    let delegated = h.exchange((OPS, OPS_SECRET), &alice, None, &[]).await;
    let delegated = delegated.1["access_token"].as_str().unwrap().to_string();
    let resp = h
        .http
        .post(h.sts.introspection_endpoint())
        .header("authorization", basic(DOCS, DOCS_SECRET))
        .form(&[
            ("token", delegated.as_str()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["act"], claims(&delegated)["act"]);
}

#[tokio::test]
async fn expired_forged_foreign_and_garbage_tokens_are_inactive() {
    let h = Harness::start().await;
    let client = (DOCS, DOCS_SECRET);
    let expired = h.sts.sign_claims(&h.forged_base(OPS, -5));
    assert_inactive(&h.introspect(client, &expired).await);

    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    let mut parts: Vec<&str> = alice.split('.').collect();
    let tampered_payload = {
        let mut c = claims(&alice);
        c["preferred_username"] = json!("mallory");
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            serde_json::to_vec(&c).unwrap(),
        )
    };
    parts[1] = &tampered_payload;
    assert_inactive(&h.introspect(client, &parts.join(".")).await);

    // Another realm's token (another issuer, another key).
    let other =
        Harness::with_realm(&test_realm_yaml().replace("realm: actbridge", "realm: other")).await;
    let foreign = other
        .password(PORTAL, PORTAL_SECRET, "alice", "alice123")
        .await;
    assert_inactive(&h.introspect(client, &foreign).await);

    for garbage in ["garbage", "", "a.b.c"] {
        assert_inactive(&h.introspect(client, garbage).await);
    }
}

#[tokio::test]
async fn client_authentication_failures_are_keycloaks_introspection_answers() {
    let h = Harness::start().await;
    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    for got in [
        h.introspect((DOCS, "wrong"), &alice).await,
        h.introspect(("nobody", "x"), &alice).await,
        h.introspect_form(&[("token", &alice)]).await,
    ] {
        assert_refused(&got, 401, "invalid_request", INTROSPECT_AUTH_FAILED);
    }
    // A public client authenticates with its id alone, and may not introspect.
    assert_refused(
        &h.introspect_form(&[("client_id", "public-cli"), ("token", &alice)])
            .await,
        403,
        "invalid_request",
        "Client not allowed.",
    );
}

#[tokio::test]
async fn introspection_requires_one_token_parameter_and_a_known_hint() {
    let h = Harness::start().await;
    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    let auth = [("client_id", DOCS), ("client_secret", DOCS_SECRET)];
    assert_refused(
        &h.introspect_form(&auth).await,
        400,
        "invalid_request",
        "Token not provided.",
    );
    let mut twice = auth.to_vec();
    twice.extend([("token", alice.as_str()), ("token", alice.as_str())]);
    assert_refused(
        &h.introspect_form(&twice).await,
        400,
        "invalid_request",
        "duplicated parameter",
    );
    let mut hinted = auth.to_vec();
    hinted.extend([("token", alice.as_str()), ("token_type_hint", "id_token")]);
    assert_refused(
        &h.introspect_form(&hinted).await,
        400,
        "invalid_request",
        "Unsupported token type.",
    );
}

#[tokio::test]
async fn a_revoked_token_is_inactive_and_cannot_be_exchanged() {
    let h = Harness::start().await;
    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    let other = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    assert_eq!(
        h.introspect((DOCS, DOCS_SECRET), &alice).await.1["active"],
        true
    );

    let (status, body) = h.revoke((PORTAL, PORTAL_SECRET), &alice).await;
    assert_eq!((status.as_u16(), body.as_str()), (200, ""));
    assert_inactive(&h.introspect((DOCS, DOCS_SECRET), &alice).await);
    // Only that token: another token of the same user stays active.
    assert_eq!(
        h.introspect((DOCS, DOCS_SECRET), &other).await.1["active"],
        true
    );
    // Revoking again is no error.
    assert_eq!(h.revoke((PORTAL, PORTAL_SECRET), &alice).await.0, 200);

    assert_refused(
        &h.exchange((OPS, OPS_SECRET), &alice, None, &[]).await,
        400,
        "invalid_request",
        "Invalid token",
    );
    // A revoked actor token is refused as well.
    let actor = h.client_credentials(OPS, OPS_SECRET).await;
    h.revoke((OPS, OPS_SECRET), &actor).await;
    assert_refused(
        &h.exchange((OPS, OPS_SECRET), &other, Some(&actor), &[])
            .await,
        400,
        "invalid_request",
        "Invalid actor token",
    );
    assert_eq!(h.sts.stats().revocation, 3);
    assert_eq!(h.sts.stats().introspection, 3);
}

#[tokio::test]
async fn revocation_answers_as_keycloak_does() {
    let h = Harness::start().await;
    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    // Another client's token: refused, and not revoked.
    let (status, body) = h.revoke((GENERAL, GENERAL_SECRET), &alice).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_refused(
        &(status, body),
        400,
        "invalid_request",
        "Unmatching clients",
    );
    assert_eq!(
        h.introspect((DOCS, DOCS_SECRET), &alice).await.1["active"],
        true
    );

    // An invalid token is no error (RFC 7009 §2.2): Keycloak answers 200 with an
    // `invalid_token` body.
    let (status, body) = h.revoke((OPS, OPS_SECRET), "garbage").await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_refused(&(status, body), 200, "invalid_token", "Invalid token");

    let (status, body) = h
        .revoke_form(&[("client_id", OPS), ("client_secret", OPS_SECRET)])
        .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_refused(
        &(status, body),
        400,
        "invalid_request",
        "Token not provided",
    );

    // Client authentication is the token endpoint's.
    let (status, body) = h.revoke((OPS, "wrong"), &alice).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_refused(
        &(status, body),
        401,
        "unauthorized_client",
        "Invalid client or Invalid client credentials",
    );
    assert_eq!(
        h.introspect((DOCS, DOCS_SECRET), &alice).await.1["active"],
        true
    );
}

#[tokio::test]
async fn discovery_names_the_introspection_and_revocation_endpoints() {
    let h = Harness::start().await;
    let url = format!("{}/.well-known/openid-configuration", h.sts.issuer());
    let doc: Value = h.http.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        doc["introspection_endpoint"],
        format!(
            "{}/protocol/openid-connect/token/introspect",
            h.sts.issuer()
        )
    );
    assert_eq!(
        doc["revocation_endpoint"],
        format!("{}/protocol/openid-connect/revoke", h.sts.issuer())
    );
    // An unknown realm is Keycloak's 404 on these paths too.
    let wrong = h
        .sts
        .introspection_endpoint()
        .replace("/actbridge/", "/nope/");
    let resp = h
        .http
        .post(wrong)
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}
