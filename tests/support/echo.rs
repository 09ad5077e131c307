//! An upstream of the tests' own: records every request it receives and answers 200
//! with a JSON echo of method, path and headers.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use tokio_util::sync::CancellationToken;

/// One request the upstream saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// All values of header `name`.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single value of header `name`, if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).first().copied()
    }

    /// The token of the `authorization: Bearer …` header; panics if there is none.
    pub fn bearer(&self) -> &str {
        self.header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .expect("a bearer authorization header")
    }
}

/// A running echo upstream.
pub struct Echo {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: CancellationToken,
}

impl Echo {
    pub async fn start() -> Echo {
        Self::start_at("127.0.0.1:0").await
    }

    /// The upstream listening on `addr` (port 0 = a free one).
    pub async fn start_at(addr: &str) -> Echo {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let app = Router::new().fallback(record).with_state(seen.clone());
        let s = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await
                .unwrap();
        });
        Echo { port, seen, stop }
    }

    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The number of requests seen.
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn record(
    State(seen): State<Arc<Mutex<Vec<Seen>>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> String {
    let s = Seen {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    seen.lock().unwrap().push(s);
    "{\"echo\":true}".to_string()
}
