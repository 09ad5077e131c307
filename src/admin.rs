//! The admin HTTP listener: `/healthz` (the process is up) and `/readyz` (every
//! issuer's keys have loaded, so requests can be decided). Keep it on loopback.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::jwt::Verifier;

/// The admin routes.
pub fn router(verifier: Arc<Verifier>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .route("/readyz", get(readyz))
        .with_state(verifier)
}

async fn readyz(State(v): State<Arc<Verifier>>) -> (StatusCode, &'static str) {
    if v.is_ready() {
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
    verifier: Arc<Verifier>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(verifier))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
