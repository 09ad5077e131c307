//! Two HTTP listeners. The admin listener (`listen.admin`): `/healthz` (the process is
//! up), `/readyz` (every issuer's keys have loaded, so requests can be decided) and
//! `/metrics` (Prometheus; see docs/observability.md), open, for the kubelet and
//! Prometheus on the pod network. And, with `admin_api` configured, the authenticated
//! admin API ([`auth`]) on a loopback listener of its own (`admin_api.listen`):
//! `/revocations` ([`revocations`]) and `/approvals` ([`approvals`]).

mod approvals;
mod auth;
pub mod client;
mod revocations;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::config::AdminApiConfig;
use crate::pipeline::Pipeline;

/// What the admin routes read.
#[derive(Clone)]
pub struct AdminState {
    /// The decision core: readiness, metrics and the caches a revocation empties.
    pub pipeline: Arc<Pipeline>,
    /// The stores the admin API changes: the deny list and the held approvals.
    pub state: crate::state::State,
    /// Where admin actions are audited, when configured.
    pub audit: Option<Arc<crate::audit::AuditLog>>,
    /// Who may use the admin API; `None` = its routes answer 404.
    pub api: Option<AdminApiConfig>,
    /// The workload identity, when configured: not ready until an SVID is held.
    pub identity: Option<Arc<crate::spiffe::WorkloadIdentity>>,
}

/// The probes and metrics (`listen.admin`).
pub fn probes_router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The admin API (`admin_api.listen`).
pub fn api_router(state: AdminState) -> Router {
    Router::new()
        .route("/approvals", get(approvals::list))
        .route("/approvals/{id}/approve", post(approvals::approve))
        .route("/approvals/{id}/deny", post(approvals::deny))
        .route(
            "/revocations",
            get(revocations::list)
                .post(revocations::add)
                .delete(revocations::remove),
        )
        .with_state(state)
}

async fn metrics(State(s): State<AdminState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.pipeline.metrics().encode(),
    )
}

async fn readyz(State(s): State<AdminState>) -> (StatusCode, &'static str) {
    if s.identity.as_ref().is_some_and(|id| !id.is_ready()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no valid X.509-SVID from the SPIFFE Workload API\n",
        );
    }
    if s.pipeline.verifier().is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: issuer keys have not loaded\n",
        )
    }
}

/// Serves `router` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
