//! A small chat API in the style of Slack's Web API, for the `filter` backend: it
//! accepts one service token (`Authorization: Bearer …`) with no scoping at all, so
//! whoever holds it may post anywhere — which is why actbridge holds it and filters.
//!
//! Like Slack, it takes its arguments from the query string and the body together, the
//! body as JSON or a form by its `Content-Type` (and, with none, by sniffing). How it
//! reads a name given more than once is [`Reading`]: the first value, the last, or every
//! value under any spelling a lenient framework accepts (`Channel`, `channel[]`, `;` as a
//! separator). It records every channel it acted on, which is what the filter's
//! differential tests compare with what the filter judged.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const SERVICE_TOKEN: &str = "xoxb-demo-service-token";

/// How the API reads an argument given more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// The first value (exact name, `&` only).
    First,
    /// The last value (exact name, `&` only): what most frameworks' maps keep.
    Last,
    /// Every value, under any case, with a `[…]` suffix, split on `&` and `;`.
    All,
}

#[derive(Default)]
struct Seen {
    /// Every request's `authorization`.
    authorizations: Vec<String>,
    /// Posted messages: (channel, text).
    messages: Vec<(String, String)>,
    /// Every channel an authorised request acted on (posted to or read).
    channels: Vec<String>,
}

struct Api {
    reading: Reading,
    seen: Mutex<Seen>,
}

pub struct ChatApi {
    pub port: u16,
    api: Arc<Api>,
    task: tokio::task::JoinHandle<()>,
}

impl ChatApi {
    pub async fn start() -> ChatApi {
        Self::start_reading(Reading::Last).await
    }

    pub async fn start_reading(reading: Reading) -> ChatApi {
        let api = Arc::new(Api {
            reading,
            seen: Mutex::default(),
        });
        let app = axum::Router::new()
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/conversations.history", get(history))
            .with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ChatApi { port, api, task }
    }

    /// How many requests reached the API.
    pub fn requests(&self) -> usize {
        self.api.seen.lock().unwrap().authorizations.len()
    }

    /// Every request's `authorization`.
    pub fn authorizations(&self) -> Vec<String> {
        self.api.seen.lock().unwrap().authorizations.clone()
    }

    /// The posted messages.
    pub fn messages(&self) -> Vec<(String, String)> {
        self.api.seen.lock().unwrap().messages.clone()
    }

    /// Every channel an authorised request acted on, in order.
    pub fn channels_acted_on(&self) -> Vec<String> {
        self.api.seen.lock().unwrap().channels.clone()
    }
}

impl Drop for ChatApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Api {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let ok = auth == format!("Bearer {SERVICE_TOKEN}");
        self.seen.lock().unwrap().authorizations.push(auth);
        ok
    }

    /// The arguments: the query's, then the body's.
    fn arguments(
        &self,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Vec<(String, Value)> {
        let mut args = self.pairs(query.unwrap_or_default());
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let text = String::from_utf8_lossy(body);
        let json = || json_entries(body);
        args.extend(if content_type.starts_with("application/json") {
            json().unwrap_or_default()
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            self.pairs(&text)
        } else {
            // No declared type: sniffed.
            json().unwrap_or_else(|| self.pairs(&text))
        });
        args
    }

    /// `a=b&…` decoded as a form, split as this API's reading does.
    fn pairs(&self, raw: &str) -> Vec<(String, Value)> {
        let separators: &[char] = if self.reading == Reading::All {
            &['&', ';']
        } else {
            &['&']
        };
        raw.split(separators)
            .filter(|p| !p.is_empty())
            .map(|part| {
                let (k, v) = part.split_once('=').unwrap_or((part, ""));
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(&s.replace('+', " "))
                        .decode_utf8_lossy()
                        .into_owned()
                };
                (decode(k), Value::String(decode(v)))
            })
            .collect()
    }

    /// The values of argument `name` as this API reads them.
    fn values(&self, args: &[(String, Value)], name: &str) -> Vec<String> {
        let matching = args.iter().filter(|(k, _)| match self.reading {
            Reading::All => k.split('[').next().unwrap_or(k).eq_ignore_ascii_case(name),
            _ => k == name,
        });
        let strings: Vec<String> = matching
            .flat_map(|(_, v)| match v {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        match self.reading {
            Reading::First => strings.into_iter().take(1).collect(),
            Reading::Last => strings.into_iter().last().into_iter().collect(),
            Reading::All => strings,
        }
    }

    fn acted_on(&self, channels: &[String]) {
        self.seen
            .lock()
            .unwrap()
            .channels
            .extend_from_slice(channels);
    }
}

/// A JSON object's entries in the order written, duplicates kept; `None` when the body
/// is not a JSON object.
fn json_entries(body: &[u8]) -> Option<Vec<(String, Value)>> {
    struct Entries(Vec<(String, Value)>);
    impl<'de> serde::Deserialize<'de> for Entries {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Entries;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Entries, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, v)) = m.next_entry::<String, Value>()? {
                        out.push((k, v));
                    }
                    Ok(Entries(out))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_slice::<Entries>(body).ok().map(|e| e.0)
}

async fn post_message(
    State(api): State<Arc<Api>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Json<Value> {
    if !api.authorized(&headers) {
        return Json(json!({"ok": false, "error": "invalid_auth"}));
    }
    let args = api.arguments(query.as_deref(), &headers, &body);
    let channels = api.values(&args, "channel");
    let text = api.values(&args, "text").join(" ");
    api.acted_on(&channels);
    let Some(first) = channels.first().cloned() else {
        return Json(json!({"ok": false, "error": "channel_not_found"}));
    };
    let mut seen = api.seen.lock().unwrap();
    for c in &channels {
        seen.messages.push((c.clone(), text.clone()));
    }
    Json(json!({"ok": true, "channel": first, "ts": "1764000000.000100"}))
}

async fn history(
    State(api): State<Arc<Api>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Json<Value> {
    if !api.authorized(&headers) {
        return Json(json!({"ok": false, "error": "invalid_auth"}));
    }
    let args = api.arguments(query.as_deref(), &headers, &body);
    let channels = api.values(&args, "channel");
    api.acted_on(&channels);
    let messages: Vec<Value> = api
        .seen
        .lock()
        .unwrap()
        .messages
        .iter()
        .filter(|(c, _)| channels.contains(c))
        .map(|(_, t)| json!({"type": "message", "text": t}))
        .collect();
    Json(json!({"ok": true, "messages": messages}))
}
