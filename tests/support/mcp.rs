//! An MCP server of the tests' own (Streamable HTTP transport, MCP 2025-11-25): POST
//! `/mcp` takes one JSON-RPC message or a batch; tools `read_document`, `search`,
//! `delete_document` and `send_message`. It records every message it receives with the
//! bearer token that came with it. A request with `x-test-sse: 1` is answered as an
//! event stream (`text/event-stream`), otherwise as `application/json`; one with
//! `x-test-garbage: 1` gets a 200 whose JSON body is cut short.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The tools the server offers.
pub const TOOLS: [&str; 4] = ["read_document", "search", "delete_document", "send_message"];

/// One message the server received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub tool: Option<String>,
    pub arguments: Value,
    /// The bearer token of the HTTP request (empty when none).
    pub bearer: String,
}

/// A running MCP server.
pub struct McpServer {
    pub port: u16,
    calls: Arc<Mutex<Vec<Call>>>,
    stop: CancellationToken,
}

impl McpServer {
    pub async fn start() -> McpServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let app = Router::new()
            .route("/mcp", post(handle))
            .with_state(calls.clone());
        let s = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await
                .unwrap();
        });
        McpServer { port, calls, stop }
    }

    /// Every message received so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn handle(
    State(calls): State<Arc<Mutex<Vec<Call>>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "the server got a body that is not JSON",
        )
            .into_response();
    };
    let answers: Vec<Value> = match &msg {
        Value::Array(items) => items
            .iter()
            .filter_map(|m| answer(m, &bearer, &calls))
            .collect(),
        m => answer(m, &bearer, &calls).into_iter().collect(),
    };
    if answers.is_empty() {
        return StatusCode::ACCEPTED.into_response();
    }
    let out = match msg {
        Value::Array(_) => Value::Array(answers),
        _ => answers.into_iter().next().unwrap(),
    };
    if headers.get("x-test-garbage").is_some() {
        let text = serde_json::to_string(&out).unwrap();
        let cut = text[..text.len() / 2].to_string();
        return ([(header::CONTENT_TYPE, "application/json")], cut).into_response();
    }
    if headers.get("x-test-sse").is_some() {
        let stream = format!(
            "event: message\nid: 1\ndata: {}\n\n",
            serde_json::to_string(&out).unwrap()
        );
        return ([(header::CONTENT_TYPE, "text/event-stream")], stream).into_response();
    }
    axum::Json(out).into_response()
}

/// Records `m` and returns its response (`None` for a notification).
fn answer(m: &Value, bearer: &str, calls: &Mutex<Vec<Call>>) -> Option<Value> {
    let method = m["method"].as_str().unwrap_or("").to_string();
    let tool = m["params"]["name"].as_str().map(str::to_string);
    calls.lock().unwrap().push(Call {
        method: method.clone(),
        tool: tool.clone(),
        arguments: m["params"]["arguments"].clone(),
        bearer: bearer.to_string(),
    });
    let id = m.get("id")?.clone();
    let result = match method.as_str() {
        "initialize" => json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": "mcp-documents", "version": "1.0.0"},
        }),
        "tools/list" => json!({
            "tools": TOOLS.iter().map(|t| json!({
                "name": t,
                "description": format!("the {t} tool"),
                "inputSchema": {"type": "object"},
            })).collect::<Vec<_>>(),
        }),
        "tools/call" => json!({
            "content": [{"type": "text", "text": format!("called {}", tool.unwrap_or_default())}],
            "isError": false,
        }),
        _ => {
            return Some(
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}}),
            );
        }
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}
