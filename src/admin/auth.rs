//! Who may use the admin API: a bearer token from one of the configured issuers, with
//! one of `admin_api.audiences` and one of `admin_api.roles` (realm roles, `roles` or
//! `groups`). Refusals are terse: 401 for a missing or bad token, 403 for a token
//! without an admin role, 404 when the admin API is not configured.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AdminState;
use crate::jwt::AudienceProfile;

/// An authenticated admin.
#[derive(Debug, Clone)]
pub(super) struct Admin {
    /// `preferred_username`, else `sub`.
    pub name: String,
    /// Their token's fingerprint (for the audit log).
    pub fingerprint: String,
}

/// A JSON error answer: `{"error": "…"}` with `status`.
pub(super) fn error(status: StatusCode, error: &'static str) -> Response {
    let mut r = (status, axum::Json(serde_json::json!({ "error": error }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"actbridge-admin\""),
        );
    }
    r
}

/// Authenticates the caller of an admin route.
pub(super) async fn admin(state: &AdminState, headers: &HeaderMap) -> Result<Admin, Response> {
    let Some(api) = &state.api else {
        return Err(error(StatusCode::NOT_FOUND, "not_found"));
    };
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let token = match (values.next(), values.next()) {
        (Some(v), None) => v
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_string()),
        _ => None,
    };
    let Some(token) = token else {
        return Err(error(StatusCode::UNAUTHORIZED, "invalid_token"));
    };
    let verified = match state
        .pipeline
        .verifier()
        .verify(&token, AudienceProfile::Admin)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(error = %e, "admin API: token refused");
            return Err(error(StatusCode::UNAUTHORIZED, "invalid_token"));
        }
    };
    let name = verified
        .username
        .clone()
        .or_else(|| verified.subject.clone())
        .unwrap_or_default();
    let is_admin = verified
        .roles
        .iter()
        .chain(&verified.groups)
        .any(|r| api.roles.contains(r));
    if !is_admin {
        tracing::warn!(user = %name, "admin API: token without an admin role refused");
        return Err(error(StatusCode::FORBIDDEN, "insufficient_role"));
    }
    Ok(Admin {
        name,
        fingerprint: verified.fingerprint.clone(),
    })
}
