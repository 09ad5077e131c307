//! MiniStack (PyPI `ministack`), the AWS emulator that enforces STS session policies, with
//! `AUTH=true`, seeded with the demo world's role and bucket; and [`StsRecorder`], a
//! recording proxy in front of its STS.
//!
//! MiniStack under `AUTH=true` verifies the SigV4 signature of IAM-user and STS-session keys
//! (against the `Host` it receives), never that of the root keys (`test`, or any 12-digit key).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use axum::body::Body;
use http::{Request, Response};

use super::net::{free_port, wait_http_ok};

/// The demo bucket.
pub const BUCKET: &str = "zt-demo-documents";
/// The role actbridge assumes for the document service.
pub const ROLE_ARN: &str = "arn:aws:iam::000000000000:role/actbridge-documents";
/// The only region the tests use.
pub const REGION: &str = "us-east-1";
/// The demo documents (DEMO.md, "Documents"): id, key, first line.
pub const DOCUMENTS: [(&str, &str, &str); 7] = [
    (
        "DOC-001",
        "engineering/roadmap.md",
        "# Engineering Roadmap 2026",
    ),
    ("DOC-002", "finance/q4-report.md", "# Q4 Financial Report"),
    ("DOC-003", "admin/policies.md", "# Administrative Policies"),
    ("DOC-004", "hr/guidelines.md", "# HR Guidelines"),
    (
        "DOC-005",
        "engineering/budget.md",
        "# Budget Projections 2026",
    ),
    (
        "DOC-006",
        "admin/compliance-audit.md",
        "# Compliance Audit Report",
    ),
    (
        "DOC-007",
        "public/all-hands.md",
        "# All-Hands Meeting Summary",
    ),
];

/// The body of a demo document as seeded.
pub fn document_body(id: &str, first_line: &str) -> String {
    format!("{first_line}\n\nDemo document {id}.\n")
}

/// AWS credentials; `session_token` for STS session credentials.
#[derive(Clone, Debug)]
pub struct AwsCreds {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl AwsCreds {
    /// MiniStack's root credentials (`test`/`test`, account 000000000000).
    pub fn root() -> AwsCreds {
        AwsCreds {
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
            session_token: None,
        }
    }
}

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

/// `request` signed with SigV4 for `service` (S3 gets `x-amz-content-sha256` and its
/// single-encoded, unnormalised path); a session token travels as `x-amz-security-token`.
fn signed(creds: &AwsCreds, service: &str, mut request: Request<Vec<u8>>) -> reqwest::Request {
    let identity = aws_credential_types::Credentials::new(
        &creds.access_key_id,
        &creds.secret_access_key,
        creds.session_token.clone(),
        None,
        "actbridge-tests",
    )
    .into();
    let mut settings = SigningSettings::default();
    if service == "s3" {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name(service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.uri().to_string(),
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut request);
    reqwest::Request::try_from(request).unwrap()
}

/// Sends `request` and returns (status, body text).
async fn send(request: reqwest::Request) -> (u16, String) {
    let resp = client()
        .execute(request)
        .await
        .expect("request to MiniStack");
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// A signed Query-API POST (`application/x-www-form-urlencoded`) of `params` to `endpoint`
/// for `service` (`sts`, `iam`). Returns (status, body text).
pub async fn query_api(
    endpoint: &str,
    service: &str,
    creds: &AwsCreds,
    params: &[(&str, &str)],
) -> (u16, String) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let request = Request::post(format!("{endpoint}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.into_bytes())
        .unwrap();
    send(signed(creds, service, request)).await
}

/// The text of the first `<tag>…</tag>` in `xml`.
pub fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..end])
}

/// A running MiniStack (`AUTH=true`, only IAM, STS and S3, nothing persisted); killed on drop.
pub struct MiniStack {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl MiniStack {
    /// Starts MiniStack (AUTH=true) on a free loopback port and seeds it:
    /// - role [`ROLE_ARN`], trusting account 000000000000 (`sts:AssumeRole`, `sts:TagSession`,
    ///   `sts:SetSourceIdentity`), with an inline policy allowing `s3:GetObject` on
    ///   `arn:aws:s3:::zt-demo-documents/*` and `s3:ListBucket` on the bucket;
    /// - bucket [`BUCKET`] holding the seven [`DOCUMENTS`] (body: [`document_body`]).
    pub async fn start() -> MiniStack {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("ministack.log")).unwrap();
        let child = Command::new(ministack_binary())
            .env("AUTH", "true")
            .env("BIND_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", port.to_string())
            .env("SERVICES", "iam,sts,s3")
            // The root credentials are read from these; a developer's own must not leak in.
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("MINISTACK_ACCOUNT_ID")
            .env_remove("MINISTACK_HOST")
            .env("MINISTACK_REGION", REGION)
            // Nothing persisted, nothing outside the tempdir (the pid file goes to TMPDIR).
            .env("PERSIST_STATE", "0")
            .env("S3_PERSIST", "0")
            .env_remove("LOCALSTACK_PERSISTENCE")
            .env("STATE_DIR", dir.path().join("state"))
            .env("S3_DATA_DIR", dir.path().join("s3"))
            .env("TMPDIR", dir.path())
            // No Docker, no SFTP listener, no IoT mTLS listener on the fixed port 8883.
            .env(
                "DOCKER_HOST",
                format!("unix://{}/no-docker.sock", dir.path().display()),
            )
            .env("SFTP_ENABLED", "0")
            .env("IOT_MTLS_ENABLED", "0")
            .env("LOG_LEVEL", "WARNING")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start ministack");
        let ms = MiniStack { port, child, dir };
        let ready = format!("{}/_ministack/ready", ms.endpoint());
        assert!(
            wait_http_ok(&ready, Duration::from_secs(30)).await,
            "MiniStack did not become ready:\n{}",
            ms.log()
        );
        ms.seed().await;
        ms
    }

    async fn seed(&self) {
        let root = AwsCreds::root();
        let role_name = ROLE_ARN.rsplit('/').next().unwrap();
        let trust = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
                "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
            }],
        })
        .to_string();
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{BUCKET}/*")},
                {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": format!("arn:aws:s3:::{BUCKET}")},
            ],
        })
        .to_string();
        for params in [
            vec![
                ("Action", "CreateRole"),
                ("RoleName", role_name),
                ("AssumeRolePolicyDocument", &trust),
            ],
            vec![
                ("Action", "PutRolePolicy"),
                ("RoleName", role_name),
                ("PolicyName", "documents-read"),
                ("PolicyDocument", &policy),
            ],
        ] {
            let params = [params, vec![("Version", "2010-05-08")]].concat();
            let (status, body) = query_api(&self.endpoint(), "iam", &root, &params).await;
            assert_eq!(status, 200, "IAM {params:?}: {body}");
        }
        self.put(&root, &format!("/{BUCKET}"), Vec::new()).await;
        for (id, key, first_line) in DOCUMENTS {
            let body = document_body(id, first_line).into_bytes();
            self.put(&root, &format!("/{BUCKET}/{key}"), body).await;
        }
    }

    async fn put(&self, creds: &AwsCreds, path: &str, body: Vec<u8>) {
        let request = Request::put(format!("{}{path}", self.endpoint()))
            .body(body)
            .unwrap();
        let (status, text) = send(signed(creds, "s3", request)).await;
        assert_eq!(status, 200, "S3 PUT {path}: {text}");
    }

    /// `http://127.0.0.1:PORT`, the endpoint of every service (IAM, STS, S3).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// MiniStack's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ministack.log")).unwrap_or_default()
    }

    /// GET an object, path-style (`http://127.0.0.1:PORT/BUCKET/KEY`), SigV4-signed with
    /// `creds`. Returns (status, body text).
    pub async fn get_object(&self, creds: &AwsCreds, key: &str) -> (u16, String) {
        let request = Request::get(format!("{}/{BUCKET}/{key}", self.endpoint()))
            .body(Vec::new())
            .unwrap();
        send(signed(creds, "s3", request)).await
    }

    /// ListObjectsV2 of [`BUCKET`] with `prefix`, path-style, signed. Returns (status, body).
    pub async fn list_objects(&self, creds: &AwsCreds, prefix: &str) -> (u16, String) {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("list-type", "2")
            .append_pair("prefix", prefix)
            .finish();
        let request = Request::get(format!("{}/{BUCKET}?{query}", self.endpoint()))
            .body(Vec::new())
            .unwrap();
        send(signed(creds, "s3", request)).await
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

impl Drop for MiniStack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
