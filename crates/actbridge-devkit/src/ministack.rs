//! MiniStack (PyPI `ministack`), the AWS emulator that enforces STS session policies,
//! started with `AUTH=true` and seeded with the demo world: the role actbridge assumes
//! and the bucket with DEMO.md's seven documents. Used by `actbridge demo` and by the
//! integration tests; its own requests are SigV4-signed with `aws-sigv4`.
//!
//! Under `AUTH=true` MiniStack verifies the SigV4 signature of IAM-user and STS-session
//! keys (against the `Host` it receives), never that of its root keys (`test`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use http::Request;

/// The demo bucket.
pub const BUCKET: &str = "zt-demo-documents";
/// The role actbridge assumes for the documents.
pub const ROLE_ARN: &str = "arn:aws:iam::000000000000:role/actbridge-documents";
/// The only region used.
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

type Result<T> = std::result::Result<T, String>;

/// AWS credentials; `session_token` for STS session credentials.
#[derive(Clone)]
pub struct AwsCreds {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token (STS sessions).
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCreds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCreds")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
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

/// A plain client: no system proxy, loopback only.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap_or_default()
}

/// `request` signed with SigV4 for `service` (S3 gets `x-amz-content-sha256` and its
/// single-encoded, unnormalised path); a session token travels as `x-amz-security-token`.
fn signed(
    creds: &AwsCreds,
    service: &str,
    mut request: Request<Vec<u8>>,
) -> Result<reqwest::Request> {
    let identity = aws_credential_types::Credentials::new(
        &creds.access_key_id,
        &creds.secret_access_key,
        creds.session_token.clone(),
        None,
        "actbridge-demo",
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
        .map_err(|e| e.to_string())?
        .into();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.uri().to_string(),
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    instructions.apply_to_request_http1x(&mut request);
    reqwest::Request::try_from(request).map_err(|e| e.to_string())
}

/// Sends `request` and returns (status, body text).
async fn send(request: reqwest::Request) -> Result<(u16, String)> {
    let resp = client()
        .execute(request)
        .await
        .map_err(|e| format!("request to MiniStack: {e}"))?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.map_err(|e| e.to_string())?))
}

/// A signed Query-API POST (`application/x-www-form-urlencoded`) of `params` to `endpoint`
/// for `service` (`sts`, `iam`). Returns (status, body text).
pub async fn query_api(
    endpoint: &str,
    service: &str,
    creds: &AwsCreds,
    params: &[(&str, &str)],
) -> Result<(u16, String)> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let request = Request::post(format!("{endpoint}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.into_bytes())
        .map_err(|e| e.to_string())?;
    send(signed(creds, service, request)?).await
}

/// The text of the first `<tag>…</tag>` in `xml`.
pub fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..end])
}

/// A running MiniStack (`AUTH=true`, only IAM, STS and S3, nothing persisted); killed on
/// drop, its files in a temporary directory removed.
pub struct MiniStack {
    /// Its port on 127.0.0.1 (every service).
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl MiniStack {
    /// Starts `binary` (the `ministack` launcher) on `port` and seeds it:
    /// - role [`ROLE_ARN`], trusting account 000000000000 (`sts:AssumeRole`,
    ///   `sts:TagSession`, `sts:SetSourceIdentity`), with an inline policy allowing
    ///   `s3:GetObject` on the bucket's objects and `s3:ListBucket` on the bucket;
    /// - bucket [`BUCKET`] holding the seven [`DOCUMENTS`] (body: [`document_body`]).
    pub async fn start(binary: &Path, port: u16) -> Result<MiniStack> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(dir.path().join("ministack.log")).map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .env("AUTH", "true")
            .env("BIND_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", port.to_string())
            .env("SERVICES", "iam,sts,s3")
            // The root credentials are read from these; the caller's own must not leak in.
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
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let ms = MiniStack { port, child, dir };
        ms.wait_ready(Duration::from_secs(30)).await?;
        ms.seed().await?;
        Ok(ms)
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let url = format!("{}/_ministack/ready", self.endpoint());
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let answer = client()
                .get(&url)
                .timeout(Duration::from_millis(500))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err(format!("MiniStack did not become ready:\n{}", self.log()))
    }

    async fn seed(&self) -> Result<()> {
        let root = AwsCreds::root();
        let role_name = ROLE_ARN.rsplit('/').next().unwrap_or_default();
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
            let (status, body) = query_api(&self.endpoint(), "iam", &root, &params).await?;
            if status != 200 {
                return Err(format!("IAM {}: {status} {body}", params[0].1));
            }
        }
        self.put(&root, &format!("/{BUCKET}"), Vec::new()).await?;
        for (id, key, first_line) in DOCUMENTS {
            let body = document_body(id, first_line).into_bytes();
            self.put(&root, &format!("/{BUCKET}/{key}"), body).await?;
        }
        Ok(())
    }

    async fn put(&self, creds: &AwsCreds, path: &str, body: Vec<u8>) -> Result<()> {
        let request = Request::put(format!("{}{path}", self.endpoint()))
            .body(body)
            .map_err(|e| e.to_string())?;
        match send(signed(creds, "s3", request)?).await? {
            (200, _) => Ok(()),
            (status, text) => Err(format!("S3 PUT {path}: {status} {text}")),
        }
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
    pub async fn get_object(&self, creds: &AwsCreds, key: &str) -> Result<(u16, String)> {
        let request = Request::get(format!("{}/{BUCKET}/{key}", self.endpoint()))
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        send(signed(creds, "s3", request)?).await
    }

    /// ListObjectsV2 of [`BUCKET`] with `prefix`, path-style, signed. Returns (status, body).
    pub async fn list_objects(&self, creds: &AwsCreds, prefix: &str) -> Result<(u16, String)> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("list-type", "2")
            .append_pair("prefix", prefix)
            .finish();
        let request = Request::get(format!("{}/{BUCKET}?{query}", self.endpoint()))
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        send(signed(creds, "s3", request)?).await
    }
}

impl Drop for MiniStack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
