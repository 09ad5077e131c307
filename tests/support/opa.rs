//! An OPA server for tests: OPA's Data API (`POST /v1/data/{path}` with `{"input": …}`)
//! answered as OPA documents it — `{"result": …}`, no `result` when the rule is
//! undefined, and `{"code": "internal_error", "message": …}` with 500 on an evaluation
//! error — evaluating the repository's `policies/` (OPA itself does not install here).

use std::path::Path;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct Inner {
    engine: Mutex<regorus::Engine>,
    calls: AtomicUsize,
    /// When non-zero, every request is answered with this status (an outage).
    forced_status: AtomicU16,
}

/// A running OPA emulator.
pub struct Opa {
    pub url: String,
    inner: Arc<Inner>,
    stop: CancellationToken,
}

impl Opa {
    /// Serves the policy in `dir` (serving modules and data, as actbridge loads them).
    pub async fn start(dir: &Path) -> Opa {
        let mut engine = regorus::Engine::new();
        for sub in ["actbridge", "data"] {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(&path).unwrap();
                if name.ends_with(".rego") && !name.ends_with("_test.rego") {
                    engine.add_policy(name, text).unwrap();
                } else if name.ends_with(".yaml") {
                    let data: Value = serde_yaml_ng::from_str(&text).unwrap();
                    engine
                        .add_data(serde_json::from_value(data).unwrap())
                        .unwrap();
                }
            }
        }
        let inner = Arc::new(Inner {
            engine: Mutex::new(engine),
            calls: AtomicUsize::new(0),
            forced_status: AtomicU16::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let app = axum::Router::new()
            .route("/v1/data/{*path}", post(data_api))
            .with_state(inner.clone());
        let stop = CancellationToken::new();
        let sd = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { sd.cancelled().await })
                .await
                .unwrap();
        });
        Opa { url, inner, stop }
    }

    /// How many Data API requests arrived.
    pub fn calls(&self) -> usize {
        self.inner.calls.load(Ordering::SeqCst)
    }

    /// Answers every request with `status` from now on (0 = normal service).
    pub fn force_status(&self, status: u16) {
        self.inner.forced_status.store(status, Ordering::SeqCst);
    }
}

impl Drop for Opa {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn data_api(
    State(inner): State<Arc<Inner>>,
    UrlPath(path): UrlPath<String>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    inner.calls.fetch_add(1, Ordering::SeqCst);
    let forced = inner.forced_status.load(Ordering::SeqCst);
    if forced != 0 {
        let status = StatusCode::from_u16(forced).unwrap();
        return (
            status,
            Json(json!({"code": "unavailable", "message": "forced"})),
        );
    }
    let rule = format!("data.{}", path.trim_matches('/').replace('/', "."));
    let mut engine = inner.engine.lock().unwrap().clone();
    engine.set_input(serde_json::from_value(body["input"].clone()).unwrap());
    match engine.eval_rule(rule) {
        Ok(regorus::Value::Undefined) => (StatusCode::OK, Json(json!({}))),
        Ok(v) => (
            StatusCode::OK,
            Json(json!({ "result": serde_json::to_value(&v).unwrap() })),
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"code": "internal_error", "message": e.to_string()})),
        ),
    }
}
