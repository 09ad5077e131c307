//! Pending human approvals through the admin API:
//!
//! ```text
//! GET  /approvals              → 200 {"approvals": [{id, user, actors, direction, route,
//!                                   method, authority, path, reason, asked_at, expires_at}]}
//! POST /approvals/{id}/approve {"digest": "<the listed digest>"}
//!                              → 204; the held request goes on (400 without a digest,
//!                                409 when it is not the held request's)
//! POST /approvals/{id}/deny    → 204; the held request gets 403 approval_denied
//! ```
//!
//! 404 for an unknown (or already decided, or timed-out) id, or when approvals are not
//! configured; 503 `state_unavailable` when the approvals are shared (`state.redis`) and
//! Redis does not answer. Every decision is audited with the approver's name before it is taken.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AdminState;
use super::auth::{admin, error};
use crate::state::approvals::DecideError;

pub(super) async fn list(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = admin(&state, &headers).await {
        return r;
    }
    let Some(approvals) = &state.state.approvals else {
        return error(StatusCode::NOT_FOUND, "not_found");
    };
    match approvals.list().await {
        Ok(all) => Json(serde_json::json!({ "approvals": all })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "pending approvals not listed");
            error(StatusCode::SERVICE_UNAVAILABLE, "state_unavailable")
        }
    }
}

pub(super) async fn approve(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Approval {
        digest: String,
    }
    let digest = serde_json::from_slice::<Approval>(&body)
        .ok()
        .map(|a| a.digest);
    decide(state, headers, &id, true, digest.as_deref()).await
}

pub(super) async fn deny(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    decide(state, headers, &id, false, None).await
}

async fn decide(
    state: AdminState,
    headers: HeaderMap,
    id: &str,
    approve: bool,
    digest: Option<&str>,
) -> Response {
    let who = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(approvals) = &state.state.approvals else {
        return error(StatusCode::NOT_FOUND, "not_found");
    };
    match approvals.decide(id, approve, &who.name, digest).await {
        Ok(()) => {
            tracing::warn!(id, admin = %who.name, approve, "approval decided");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(DecideError::NotFound) => error(StatusCode::NOT_FOUND, "not_found"),
        Err(DecideError::Unaudited) => error(StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"),
        Err(DecideError::DigestRequired) => error(StatusCode::BAD_REQUEST, "digest_required"),
        Err(DecideError::DigestMismatch) => error(StatusCode::CONFLICT, "digest_mismatch"),
        Err(DecideError::Unavailable) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "state_unavailable")
        }
    }
}
