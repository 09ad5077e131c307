//! The `password` and `client_credentials` grants, and the grant-type refusals.

use serde_json::json;

use super::support::*;
use crate::claims::now;
use crate::realm::derived_service_account_id;

#[tokio::test]
async fn password_grant_issues_a_keycloak_shaped_user_token() {
    let h = Harness::start().await;
    let (status, body) = h
        .token(&[
            ("grant_type", "password"),
            ("client_id", PORTAL),
            ("client_secret", PORTAL_SECRET),
            ("username", "alice"),
            ("password", "alice123"),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert!(body.get("refresh_token").is_none());
    assert_eq!(
        body["scope"],
        "openid profile email documents.read documents.write mcp mcp:read_document mcp:search mcp:delete_document mcp:send_message"
    );
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["iss"], h.sts.issuer());
    assert_eq!(c["sub"], ALICE_ID);
    assert_eq!(
        c["aud"],
        json!([
            "spiffe://demo.example.com/agent/summarizer-hr",
            TECH,
            OPS,
            GENERAL
        ]),
        "every agent, as the demo's front end names them"
    );
    assert_eq!(c["azp"], PORTAL);
    assert_eq!(c["typ"], "Bearer");
    assert_eq!(c["preferred_username"], "alice");
    assert_eq!(c["email"], "alice@example.com");
    assert_eq!(c["name"], "Alice Smith");
    assert_eq!(c["groups"], json!(["engineering", "finance"]));
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 300);
    assert!(c["iat"].as_u64().unwrap().abs_diff(now()) <= 2);
    assert!(uuid::Uuid::parse_str(c["jti"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn password_grant_narrows_scope_on_request_and_refuses_unknown_scopes() {
    let h = Harness::start().await;
    let base = [
        ("grant_type", "password"),
        ("client_id", PORTAL),
        ("client_secret", PORTAL_SECRET),
        ("username", "bob"),
        ("password", "bob123"),
    ];
    let mut form = base.to_vec();
    form.push(("scope", "documents.read"));
    let (status, body) = h.token(&form).await;
    assert_eq!(status, 200);
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["scope"],
        "documents.read"
    );
    let mut form = base.to_vec();
    form.push(("scope", "documents.read admin"));
    assert_refused(
        &h.token(&form).await,
        400,
        "invalid_scope",
        "Invalid scopes: documents.read admin",
    );
}

#[tokio::test]
async fn password_grant_refusals_match_keycloak() {
    let h = Harness::start().await;
    let login =
        |client: &'static str, secret: &'static str, user: &'static str, pw: &'static str| {
            let mut form = vec![
                ("grant_type", "password"),
                ("client_id", client),
                ("username", user),
                ("password", pw),
            ];
            if !secret.is_empty() {
                form.push(("client_secret", secret));
            }
            form
        };
    let bad = "Invalid user credentials";
    assert_refused(
        &h.token(&login(PORTAL, PORTAL_SECRET, "alice", "wrong"))
            .await,
        400,
        "invalid_grant",
        bad,
    );
    assert_refused(
        &h.token(&login(PORTAL, PORTAL_SECRET, "mallory", "x")).await,
        400,
        "invalid_grant",
        bad,
    );
    assert_refused(
        &h.token(&login(PORTAL, PORTAL_SECRET, "alice", "")).await,
        400,
        "invalid_grant",
        bad,
    );
    assert_refused(
        &h.token(&login("no-direct", "no-direct-secret", "alice", "alice123"))
            .await,
        400,
        "unauthorized_client",
        "Client not allowed for direct access grants",
    );
    // No agent's client logs a user in: a token whose `azp` is an agent comes from an
    // exchange only.
    assert_refused(
        &h.token(&login(OPS, OPS_SECRET, "alice", "alice123")).await,
        400,
        "unauthorized_client",
        "Client not allowed for direct access grants",
    );
    // Usernames are case-insensitive, as in Keycloak.
    let (status, body) = h
        .token(&login(PORTAL, PORTAL_SECRET, "ALICE", "alice123"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["preferred_username"],
        "alice"
    );
}

#[tokio::test]
async fn a_public_client_may_log_users_in_and_nothing_else() {
    let h = Harness::start().await;
    let token = h.password("public-cli", "", "carol", "carol123").await;
    assert_eq!(claims(&token)["azp"], "public-cli");
    assert_eq!(claims(&token)["groups"], json!(["hr"]));
    assert_refused(
        &h.token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "public-cli"),
        ])
        .await,
        401,
        "unauthorized_client",
        "Public client not allowed to retrieve service account",
    );
}

#[tokio::test]
async fn client_credentials_issues_a_service_account_token() {
    let h = Harness::start().await;
    let (status, body) = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", OPS),
            ("client_secret", OPS_SECRET),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("issued_token_type").is_none());
    let c = claims(body["access_token"].as_str().unwrap());
    let sa = derived_service_account_id(OPS).to_string();
    assert_eq!(c["sub"], sa);
    assert_eq!(
        c["preferred_username"],
        "service-account-spiffe://demo.example.com/agent/reviewer-ops"
    );
    assert_eq!(c["azp"], OPS);
    assert_eq!(c["client_id"], OPS);
    assert_eq!(c["typ"], "Bearer");
    assert!(c.get("groups").is_none());
    // Stable across tokens and restarts: derived from the client id.
    let again = Harness::start()
        .await
        .client_credentials(OPS, OPS_SECRET)
        .await;
    assert_eq!(claims(&again)["sub"], sa);
    assert_ne!(derived_service_account_id(GENERAL).to_string(), sa);
}

#[tokio::test]
async fn client_credentials_needs_a_service_account() {
    let h = Harness::start().await;
    assert_refused(
        &h.token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "no-direct"),
            ("client_secret", "no-direct-secret"),
        ])
        .await,
        401,
        "unauthorized_client",
        "Client not enabled to retrieve service account",
    );
}

#[tokio::test]
async fn grant_type_refusals_come_before_client_authentication() {
    let h = Harness::start().await;
    assert_refused(
        &h.token(&[("client_id", OPS), ("client_secret", "wrong")])
            .await,
        400,
        "invalid_request",
        "Missing form parameter: grant_type",
    );
    assert_refused(
        &h.token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "nobody"),
        ])
        .await,
        400,
        "unsupported_grant_type",
        "Unsupported grant_type",
    );
    assert_refused(
        &h.token(&[
            ("grant_type", "client_credentials"),
            ("client_id", OPS),
            ("client_secret", OPS_SECRET),
            ("scope", "openid"),
            ("scope", "documents.read"),
        ])
        .await,
        400,
        "invalid_request",
        "duplicated parameter",
    );
}

#[tokio::test]
async fn the_document_service_has_a_service_account_but_logs_no_one_in() {
    let h = Harness::start().await;
    let token = h.client_credentials(DOCS, DOCS_SECRET).await;
    assert_eq!(
        claims(&token)["preferred_username"],
        "service-account-spiffe://demo.example.com/service/document-service"
    );
    let got = h
        .token(&[
            ("grant_type", "password"),
            ("client_id", DOCS),
            ("client_secret", DOCS_SECRET),
            ("username", "alice"),
            ("password", "alice123"),
        ])
        .await;
    assert_refused(
        &got,
        400,
        "unauthorized_client",
        "Client not allowed for direct access grants",
    );
}
