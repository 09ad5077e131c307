//! The HTTP surface, Keycloak's paths under `/realms/{realm}`:
//!
//! ```text
//! GET  /realms/{realm}/.well-known/openid-configuration   discovery
//! GET  /realms/{realm}/protocol/openid-connect/certs       JWKS
//! POST /realms/{realm}/protocol/openid-connect/token       token endpoint (form body)
//! POST /realms/{realm}/protocol/openid-connect/token/introspect   RFC 7662 introspection
//! POST /realms/{realm}/protocol/openid-connect/revoke      RFC 7009 revocation
//! ```
//!
//! An unknown realm answers 404 `{"error":"Realm does not exist", ...}` on every path.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::claims::TokenResponse;
use super::form::Form;
use super::grants::{self, Grant, TOKEN_EXCHANGE};
use super::introspection::introspect;
use super::refusal::{Refusal, no_store};
use super::revocation::revoke;
use super::service::TokenService;

/// All routes, sharing the service.
pub(crate) fn router(svc: Arc<TokenService>) -> Router {
    Router::new()
        .route(
            "/realms/{realm}/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/realms/{realm}/protocol/openid-connect/certs", get(certs))
        .route("/realms/{realm}/protocol/openid-connect/token", post(token))
        .route(
            "/realms/{realm}/protocol/openid-connect/token/introspect",
            post(introspection),
        )
        .route(
            "/realms/{realm}/protocol/openid-connect/revoke",
            post(revocation),
        )
        .with_state(svc)
}

/// Answers a refusal and counts it.
fn refuse(svc: &TokenService, refusal: Refusal) -> Response {
    svc.count_refused();
    tracing::debug!(status = %refusal.status(), error = refusal.code(), reason = %refusal, "token service refused");
    refusal.into_response()
}

async fn discovery(State(svc): State<Arc<TokenService>>, Path(realm): Path<String>) -> Response {
    if realm != svc.realm().name {
        return refuse(&svc, Refusal::RealmNotFound);
    }
    let scopes: BTreeSet<&str> = svc
        .realm()
        .clients
        .values()
        .flat_map(|c| c.scopes.iter().map(String::as_str))
        .collect();
    Json(json!({
        "issuer": svc.issuer(),
        "token_endpoint": svc.token_endpoint(),
        "jwks_uri": svc.jwks_uri(),
        "introspection_endpoint": svc.introspection_endpoint(),
        "revocation_endpoint": svc.revocation_endpoint(),
        "grant_types_supported": ["password", "client_credentials", TOKEN_EXCHANGE],
        "token_endpoint_auth_methods_supported":
            ["private_key_jwt", "client_secret_basic", "client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA"],
        "introspection_endpoint_auth_methods_supported":
            ["private_key_jwt", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported":
            ["private_key_jwt", "client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public"],
        "scopes_supported": scopes,
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "jti", "typ", "azp", "scope", "act",
            "preferred_username", "email", "name", "groups", "client_id"
        ],
    }))
    .into_response()
}

async fn certs(State(svc): State<Arc<TokenService>>, Path(realm): Path<String>) -> Response {
    if realm != svc.realm().name {
        return refuse(&svc, Refusal::RealmNotFound);
    }
    Json(svc.signing_key().jwks()).into_response()
}

async fn token(
    State(svc): State<Arc<TokenService>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match token_request(&svc, &realm, &headers, &body).await {
        Ok(issued) => {
            let mut response = Json(issued).into_response();
            no_store(&mut response);
            response
        }
        Err(refusal) => refuse(&svc, refusal),
    }
}

/// Realm → count → outage switch → grant type → the grant pipeline.
async fn token_request(
    svc: &TokenService,
    realm: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, Refusal> {
    if realm != svc.realm().name {
        return Err(Refusal::RealmNotFound);
    }
    let form = Form::parse(body);
    let grant_type = form.get("grant_type");
    let grant = grant_type.and_then(Grant::parse);
    if let Some(grant) = grant {
        svc.count_grant(grant);
    }
    if svc.is_unavailable() {
        return Err(Refusal::Unavailable);
    }
    if grant_type.is_none() {
        return Err(Refusal::MissingGrantType);
    }
    let grant = grant.ok_or(Refusal::UnsupportedGrantType)?;
    grants::run(svc, grant, &form, authorization(headers)).await
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

async fn introspection(
    State(svc): State<Arc<TokenService>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    svc.count_introspection();
    if realm != svc.realm().name {
        return refuse(&svc, Refusal::RealmNotFound);
    }
    let form = Form::parse(&body);
    match introspect(&svc, &form, authorization(&headers)).await {
        Ok(answer) => {
            let mut response = Json(answer).into_response();
            no_store(&mut response);
            response
        }
        Err(refusal) => refuse(&svc, refusal),
    }
}

async fn revocation(
    State(svc): State<Arc<TokenService>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    svc.count_revocation();
    if realm != svc.realm().name {
        return refuse(&svc, Refusal::RealmNotFound);
    }
    let form = Form::parse(&body);
    match revoke(&svc, &form, authorization(&headers)).await {
        Ok(()) => {
            let mut response = ().into_response();
            no_store(&mut response);
            response
        }
        Err(refusal) => refuse(&svc, refusal),
    }
}
