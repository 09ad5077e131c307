//! A small chat API in the style of Slack's Web API, for the `filter` backend: it
//! accepts one service token (`Authorization: Bearer …`) with no scoping at all, so
//! whoever holds it may post anywhere — which is why actbridge holds it and filters.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const SERVICE_TOKEN: &str = "xoxb-demo-service-token";

#[derive(Default)]
struct Seen {
    /// Every request's `authorization`.
    authorizations: Vec<String>,
    /// Posted messages: (channel, text).
    messages: Vec<(String, String)>,
}

pub struct ChatApi {
    pub port: u16,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl ChatApi {
    pub async fn start() -> ChatApi {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = axum::Router::new()
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/conversations.history", get(history))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ChatApi { port, seen, task }
    }

    /// How many requests reached the API.
    pub fn requests(&self) -> usize {
        self.seen.lock().unwrap().authorizations.len()
    }

    /// Every request's `authorization`.
    pub fn authorizations(&self) -> Vec<String> {
        self.seen.lock().unwrap().authorizations.clone()
    }

    /// The posted messages.
    pub fn messages(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().messages.clone()
    }
}

impl Drop for ChatApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn authorized(seen: &Mutex<Seen>, headers: &HeaderMap) -> bool {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let ok = auth == format!("Bearer {SERVICE_TOKEN}");
    seen.lock().unwrap().authorizations.push(auth);
    ok
}

async fn post_message(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    if !authorized(&seen, &headers) {
        return Json(json!({"ok": false, "error": "invalid_auth"}));
    }
    let channel = body["channel"].as_str().unwrap_or_default().to_string();
    let text = body["text"].as_str().unwrap_or_default().to_string();
    seen.lock().unwrap().messages.push((channel.clone(), text));
    Json(json!({"ok": true, "channel": channel, "ts": "1764000000.000100"}))
}

async fn history(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Json<Value> {
    if !authorized(&seen, &headers) {
        return Json(json!({"ok": false, "error": "invalid_auth"}));
    }
    let channel = q.get("channel").cloned().unwrap_or_default();
    let messages: Vec<Value> = seen
        .lock()
        .unwrap()
        .messages
        .iter()
        .filter(|(c, _)| *c == channel)
        .map(|(_, t)| json!({"type": "message", "text": t}))
        .collect();
    Json(json!({"ok": true, "messages": messages}))
}
