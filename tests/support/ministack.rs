//! MiniStack for the tests: the library's launcher and seeding
//! (`actbridge_devkit::ministack`, also used by `actbridge demo`) on a free port, with
//! panicking helpers; and [`StsRecorder`], a recording proxy in front of its STS.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use actbridge_devkit::ministack as lib;
use axum::body::Body;
use http::{Request, Response};

pub use actbridge_devkit::ministack::{
    AwsCreds, BUCKET, DOCUMENTS, REGION, ROLE_ARN, document_body, xml_text,
};

use super::net::free_port;

/// The MiniStack launcher: `$ACTBRIDGE_MINISTACK`, else the one `make ministack` installs.
pub fn ministack_binary() -> PathBuf {
    if let Ok(p) = std::env::var("ACTBRIDGE_MINISTACK") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/ministack");
    if p.exists() {
        return p;
    }
    panic!(
        "MiniStack not found: run `make ministack` (installs ministack into .venv) or set ACTBRIDGE_MINISTACK"
    );
}

/// A plain client: no system proxy, loopback only.
fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A signed Query-API POST; panics when it cannot be sent.
pub async fn query_api(
    endpoint: &str,
    service: &str,
    creds: &AwsCreds,
    params: &[(&str, &str)],
) -> (u16, String) {
    lib::query_api(endpoint, service, creds, params)
        .await
        .unwrap()
}

/// A running, seeded MiniStack on a free port; killed on drop.
pub struct MiniStack {
    pub port: u16,
    inner: lib::MiniStack,
}

impl MiniStack {
    /// Starts and seeds MiniStack (see [`lib::MiniStack::start`]).
    pub async fn start() -> MiniStack {
        let inner = lib::MiniStack::start(&ministack_binary(), free_port())
            .await
            .unwrap_or_else(|e| panic!("MiniStack: {e}"));
        MiniStack {
            port: inner.port,
            inner,
        }
    }

    /// `http://127.0.0.1:PORT`, the endpoint of every service (IAM, STS, S3).
    pub fn endpoint(&self) -> String {
        self.inner.endpoint()
    }

    /// MiniStack's log so far.
    pub fn log(&self) -> String {
        self.inner.log()
    }

    /// GET an object, path-style, signed with `creds`: (status, body text).
    pub async fn get_object(&self, creds: &AwsCreds, key: &str) -> (u16, String) {
        self.inner.get_object(creds, key).await.unwrap()
    }

    /// ListObjectsV2 of [`BUCKET`] with `prefix`, signed: (status, body text).
    pub async fn list_objects(&self, creds: &AwsCreds, prefix: &str) -> (u16, String) {
        self.inner.list_objects(creds, prefix).await.unwrap()
    }

    /// AssumeRole of [`ROLE_ARN`] directly at MiniStack, signed with the root credentials,
    /// with an optional inline session policy; panics unless it succeeds.
    pub async fn assume_role(&self, policy: Option<&str>) -> AwsCreds {
        self.assume_role_at(&self.endpoint(), policy).await
    }

    /// As [`MiniStack::assume_role`], but sent to `sts_endpoint` (e.g. a [`StsRecorder`]).
    pub async fn assume_role_at(&self, sts_endpoint: &str, policy: Option<&str>) -> AwsCreds {
        let mut params = vec![
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", ROLE_ARN),
            ("RoleSessionName", "actbridge-tests"),
        ];
        params.extend(policy.map(|p| ("Policy", p)));
        let (status, body) = query_api(sts_endpoint, "sts", &AwsCreds::root(), &params).await;
        assert_eq!(status, 200, "AssumeRole: {body}");
        let field = |tag| xml_text(&body, tag).expect(tag).to_string();
        AwsCreds {
            access_key_id: field("AccessKeyId"),
            secret_access_key: field("SecretAccessKey"),
            session_token: Some(field("SessionToken")),
        }
    }
}

#[derive(Default)]
struct RecorderState {
    calls: Mutex<Vec<BTreeMap<String, String>>>,
    forced: Mutex<Option<(u16, &'static str)>>,
}

/// A recording HTTP proxy in front of MiniStack's STS: forwards every request unchanged
/// (method, path, headers including `Host` and the signature, body) and returns MiniStack's
/// answer unchanged, recording each request's form parameters. MiniStack checks a
/// signature against the `Host` it receives, which is the one the client signed for: this
/// proxy's `127.0.0.1:PORT`. Stopped on drop.
pub struct StsRecorder {
    pub port: u16,
    state: Arc<RecorderState>,
    task: tokio::task::JoinHandle<()>,
}

impl StsRecorder {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: &MiniStack) -> StsRecorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(RecorderState::default());
        let (st, upstream) = (state.clone(), upstream.endpoint());
        // The connections live in the accept task's JoinSet: aborting the task closes them all.
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            let http = client();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (st, upstream, http) = (st.clone(), upstream.clone(), http.clone());
                let service = hyper::service::service_fn(move |req| {
                    forward(st.clone(), http.clone(), upstream.clone(), req)
                });
                connections.spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        StsRecorder { port, state, task }
    }

    /// `http://127.0.0.1:PORT`, for actbridge's `sts_endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The form parameters of every request received so far (forced errors included), in order.
    pub fn calls(&self) -> Vec<BTreeMap<String, String>> {
        self.state.calls.lock().unwrap().clone()
    }

    /// From now on answer every request with this status and an AWS-style XML
    /// `ErrorResponse` with this code, without forwarding; `None` forwards again.
    pub fn force_error(&self, status: Option<(u16, &'static str)>) {
        *self.state.forced.lock().unwrap() = status;
    }

    /// Stops listening and closes open connections: afterwards connections are refused,
    /// as when STS is down.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for StsRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Headers of one hop, not forwarded (the framing is redone on each side).
const HOP_BY_HOP: [&str; 4] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
];

async fn forward(
    state: Arc<RecorderState>,
    http: reqwest::Client,
    upstream: String,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(Body::new(body), usize::MAX)
        .await
        .unwrap_or_default();
    let form = url::form_urlencoded::parse(&body).into_owned().collect();
    state.calls.lock().unwrap().push(form);
    let forced = *state.forced.lock().unwrap();
    if let Some((status, code)) = forced {
        let kind = if status >= 500 { "Receiver" } else { "Sender" };
        let xml = format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>{kind}</Type>\
             <Code>{code}</Code><Message>{code} (forced by the test)</Message></Error>\
             <RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
        );
        let resp = Response::builder()
            .status(status)
            .header("content-type", "text/xml")
            .body(Body::from(xml))
            .unwrap();
        return Ok(resp);
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers;
    for hop in HOP_BY_HOP {
        headers.remove(hop);
    }
    // `Host` stays as sent: the HTTP client keeps an explicit one.
    let answer = http
        .request(parts.method, format!("{upstream}{path}"))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let resp = match answer {
        Ok(a) => {
            let mut resp = Response::builder().status(a.status());
            for (k, v) in a.headers() {
                if !HOP_BY_HOP.contains(&k.as_str()) {
                    resp = resp.header(k, v);
                }
            }
            resp.body(Body::from(a.bytes().await.unwrap_or_default()))
        }
        Err(e) => Response::builder()
            .status(502)
            .body(Body::from(format!("StsRecorder: upstream failed: {e}"))),
    };
    Ok(resp.unwrap())
}
