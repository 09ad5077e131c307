//! The admin HTTP listener: `/healthz` (the process is up), `/readyz` (every issuer's
//! keys have loaded, so requests can be decided) and `/metrics` (Prometheus; see
//! docs/observability.md). Keep it on loopback or the pod network only.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::jwt::Verifier;
use crate::telemetry::metrics::Metrics;

/// What the admin routes read.
#[derive(Clone)]
pub struct AdminState {
    /// Readiness: every issuer's keys loaded.
    pub verifier: Arc<Verifier>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
}

/// The admin routes.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(State(s): State<AdminState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn readyz(State(s): State<AdminState>) -> (StatusCode, &'static str) {
    if s.verifier.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: issuer keys have not loaded\n",
        )
    }
}

/// Serves the admin routes until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
