//! The deny list through the admin API:
//!
//! ```text
//! GET    /revocations                          → 200 {"revocations": […]}
//! POST   /revocations {"kind","value","reason"} → 201 the entry (kind: user, agent, token, issued_before)
//! DELETE /revocations?kind=agent&value=…       → 204, or 404 when there was none
//! ```
//!
//! A change is written to the revocation file (with `state.redis`: to the list every
//! replica shares, 503 `state_unavailable` when Redis does not answer) before it takes
//! effect, audited with the admin's identity, and drops every cached verification, exchanged token and backend
//! credential; the next request is checked against the new list.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AdminState;
use super::auth::{Admin, admin, error};
use crate::audit::AdminRecord;
use crate::state::revocations::{Revocation, RevocationError, RevocationKind};

/// The body of `POST /revocations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewRevocation {
    kind: RevocationKind,
    value: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The query of `DELETE /revocations`.
#[derive(Debug, Deserialize)]
pub(super) struct Which {
    kind: RevocationKind,
    value: String,
}

pub(super) async fn list(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = admin(&state, &headers).await {
        return r;
    }
    let all = state.state.revocations.list();
    Json(serde_json::json!({ "revocations": all })).into_response()
}

pub(super) async fn add(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Result<Json<NewRevocation>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let who = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Ok(Json(body)) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let entry = Revocation {
        kind: body.kind,
        value: body.value,
        reason: body.reason,
        by: who.name.clone(),
        at: 0,
    };
    if entry.validate().is_err() {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    if !audited(&state, &who, "revoke", &entry) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable");
    }
    match state.state.revocations.add(entry.clone()).await {
        Ok(()) => {
            state.pipeline.forget_cached();
            tracing::warn!(admin = %who.name, kind = ?entry.kind, value = %entry.value, "revoked");
            (StatusCode::CREATED, Json(entry)).into_response()
        }
        Err(RevocationError::Invalid(_)) => error(StatusCode::BAD_REQUEST, "invalid_request"),
        Err(e @ RevocationError::Unavailable(_)) => {
            tracing::error!(error = %e, "revocation not made: the shared deny list is unavailable");
            error(StatusCode::SERVICE_UNAVAILABLE, "state_unavailable")
        }
        Err(e) => {
            tracing::error!(error = %e, "revocation not kept");
            error(StatusCode::INTERNAL_SERVER_ERROR, "not_kept")
        }
    }
}

pub(super) async fn remove(
    State(state): State<AdminState>,
    headers: HeaderMap,
    query: Result<Query<Which>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let who = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Ok(Query(which)) = query else {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let entry = Revocation {
        kind: which.kind,
        value: which.value,
        reason: None,
        by: who.name.clone(),
        at: 0,
    };
    if !audited(&state, &who, "unrevoke", &entry) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable");
    }
    match state
        .state
        .revocations
        .remove(entry.kind, &entry.value)
        .await
    {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "not_found"),
        Err(e @ RevocationError::Unavailable(_)) => {
            tracing::error!(error = %e, "revocation change not made: the shared deny list is unavailable");
            error(StatusCode::SERVICE_UNAVAILABLE, "state_unavailable")
        }
        Err(e) => {
            tracing::error!(error = %e, "revocation change not kept");
            error(StatusCode::INTERNAL_SERVER_ERROR, "not_kept")
        }
    }
}

/// Audits the action first: an action that cannot be audited is not taken.
fn audited(state: &AdminState, who: &Admin, action: &str, entry: &Revocation) -> bool {
    let Some(log) = &state.audit else {
        return true;
    };
    let kind = serde_json::to_value(entry.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    log.submit_admin(AdminRecord {
        admin: who.name.clone(),
        token: who.fingerprint.clone(),
        action: action.to_string(),
        target: format!("{kind} {}", entry.value),
        reason: entry.reason.clone(),
    })
    .is_ok()
}
