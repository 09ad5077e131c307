//! Pending human approvals through the admin API:
//!
//! ```text
//! GET  /approvals              → 200 {"approvals": [{id, user, actors, direction, route,
//!                                   method, authority, path, reason, asked_at, expires_at}]}
//! POST /approvals/{id}/approve → 204; the held request goes on
//! POST /approvals/{id}/deny    → 204; the held request gets 403 approval_denied
//! ```
//!
//! 404 for an unknown (or already decided, or timed-out) id, or when approvals are not
//! configured. Every decision is audited with the approver's name before it is taken.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AdminState;
use super::auth::{admin, error};
use crate::pipeline::DecideError;

pub(super) async fn list(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = admin(&state, &headers).await {
        return r;
    }
    let Some(approvals) = state.pipeline.approvals() else {
        return error(StatusCode::NOT_FOUND, "not_found");
    };
    Json(serde_json::json!({ "approvals": approvals.list() })).into_response()
}

pub(super) async fn approve(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    decide(state, headers, &id, true).await
}

pub(super) async fn deny(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    decide(state, headers, &id, false).await
}

async fn decide(state: AdminState, headers: HeaderMap, id: &str, approve: bool) -> Response {
    let who = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(approvals) = state.pipeline.approvals() else {
        return error(StatusCode::NOT_FOUND, "not_found");
    };
    match approvals.decide(id, approve, &who.name) {
        Ok(()) => {
            tracing::warn!(id, admin = %who.name, approve, "approval decided");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(DecideError::NotFound) => error(StatusCode::NOT_FOUND, "not_found"),
        Err(DecideError::Unaudited) => error(StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"),
    }
}
