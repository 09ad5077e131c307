//! A contract-faithful stand-in for the GitHub REST API, for the `github_app` backend:
//! `POST /app/installations/{id}/access_tokens` authenticates the App JWT (RS256 with the
//! App's public key, `iss` = the App id, at most 10 minutes of life) and mints a token
//! restricted to the requested repositories and permissions (422 for more than the
//! installation has); `GET /repos/{owner}/{repo}/contents/{path}` honours only those
//! repositories; `DELETE /installation/token` revokes the token it is called with (204),
//! as GitHub's self-revocation does. Errors use GitHub's `{"message", "documentation_url"}`
//! shape.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde_json::{Value, json};

pub const APP_ID: u64 = 424242;
pub const INSTALLATION_ID: u64 = 7777;
pub const OWNER: &str = "demo-org";
/// The installation's repositories: one per department.
pub const REPOSITORIES: [(&str, &str); 4] = [
    ("engineering", "engineering-docs"),
    ("finance", "finance-reports"),
    ("admin", "admin-runbooks"),
    ("hr", "hr-handbook"),
];
const DOCS: &str = "https://docs.github.com/rest";

struct Minted {
    repositories: BTreeSet<String>,
    expires: SystemTime,
}

#[derive(Default)]
struct Recorded {
    /// Bodies of the token requests that were authenticated.
    token_requests: Vec<Value>,
    /// The `traceparent` of each of those (`None`: it had none).
    token_request_traceparents: Vec<Option<String>>,
    /// `authorization` of every contents request.
    content_authorizations: Vec<String>,
}

struct Peer {
    decoding: DecodingKey,
    minted: Mutex<HashMap<String, Minted>>,
    recorded: Mutex<Recorded>,
    forced: Mutex<Option<u16>>,
}

/// The running stand-in; stopped on drop.
pub struct GithubApi {
    pub port: u16,
    /// PEM file of the App's private key (PKCS#8), for actbridge's config.
    pub key_file: PathBuf,
    peer: Arc<Peer>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl GithubApi {
    pub async fn start() -> GithubApi {
        let pem = actbridge_sts::pem::fresh_rsa_private_key().unwrap();
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("github-app.pem");
        std::fs::write(&key_file, pem).unwrap();
        let peer = Arc::new(Peer {
            decoding: DecodingKey::from_jwk(&jwk).unwrap(),
            minted: Mutex::default(),
            recorded: Mutex::default(),
            forced: Mutex::default(),
        });
        let app = axum::Router::new()
            .route("/app/installations/{id}/access_tokens", post(access_tokens))
            .route("/repos/{owner}/{repo}/contents/{*path}", get(contents))
            .route("/installation/token", delete(revoke))
            .with_state(peer.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        GithubApi {
            port,
            key_file,
            peer,
            task,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bodies of the authenticated token requests so far.
    pub fn token_requests(&self) -> Vec<Value> {
        self.peer.recorded.lock().unwrap().token_requests.clone()
    }

    /// The `traceparent` of each authenticated token request so far.
    pub fn token_request_traceparents(&self) -> Vec<Option<String>> {
        self.peer
            .recorded
            .lock()
            .unwrap()
            .token_request_traceparents
            .clone()
    }

    /// The `authorization` of every contents request so far.
    pub fn content_authorizations(&self) -> Vec<String> {
        self.peer
            .recorded
            .lock()
            .unwrap()
            .content_authorizations
            .clone()
    }

    /// The tokens minted so far.
    pub fn minted_tokens(&self) -> Vec<String> {
        self.peer.minted.lock().unwrap().keys().cloned().collect()
    }

    /// From now on answer token requests with this status (GitHub's error shape).
    pub fn force_status(&self, status: Option<u16>) {
        *self.peer.forced.lock().unwrap() = status;
    }

    /// Stops listening (connections refused afterwards).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for GithubApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, message: &str) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(json!({"message": message, "documentation_url": DOCS})),
    )
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get("authorization")?.to_str().ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("token "))
}

async fn access_tokens(
    State(peer): State<Arc<Peer>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    validation.set_issuer(&[APP_ID.to_string()]);
    validation.validate_aud = false;
    let claims = bearer(&headers)
        .and_then(|jwt| jsonwebtoken::decode::<Value>(jwt, &peer.decoding, &validation).ok())
        .map(|d| d.claims);
    let Some(claims) = claims else {
        return error(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
        );
    };
    let life = claims["exp"].as_u64().unwrap_or(0) - claims["iat"].as_u64().unwrap_or(0);
    if life > 600 {
        return error(
            StatusCode::UNAUTHORIZED,
            "'Expiration time' claim ('exp') is too far in the future",
        );
    }
    if let Some(status) = *peer.forced.lock().unwrap() {
        let status = StatusCode::from_u16(status).unwrap();
        return error(
            status,
            "Forced by the test (repository secret-name leaked?)",
        );
    }
    if id != INSTALLATION_ID {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    {
        let mut recorded = peer.recorded.lock().unwrap();
        recorded.token_requests.push(body.clone());
        recorded.token_request_traceparents.push(
            headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        );
    }
    let installed: BTreeSet<&str> = REPOSITORIES.iter().map(|(_, r)| *r).collect();
    let asked: Vec<String> = body["repositories"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if asked.is_empty() || asked.iter().any(|r| !installed.contains(r.as_str())) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "There is at least one repository that does not exist or is not accessible to the parent installation.",
        );
    }
    let granted = BTreeMap::from([("contents", "read"), ("metadata", "read")]);
    let permissions = body["permissions"].as_object().cloned().unwrap_or_default();
    if permissions
        .iter()
        .any(|(k, v)| granted.get(k.as_str()) != v.as_str().as_ref())
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The permissions requested are not granted to this installation.",
        );
    }
    let token = format!("ghs_{}", uuid::Uuid::new_v4().simple());
    let expires = SystemTime::now() + Duration::from_secs(3600);
    peer.minted.lock().unwrap().insert(
        token.clone(),
        Minted {
            repositories: asked.iter().cloned().collect(),
            expires,
        },
    );
    let expires_at = aws_sdk_sts::primitives::DateTime::from(expires)
        .fmt(aws_sdk_sts::primitives::DateTimeFormat::DateTime)
        .unwrap();
    (
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "expires_at": expires_at,
            "permissions": permissions,
            "repository_selection": "selected",
            "repositories": asked.iter().map(|r| json!({
                "name": r, "full_name": format!("{OWNER}/{r}"), "private": true,
            })).collect::<Vec<_>>(),
        })),
    )
}

/// `DELETE /installation/token`: the token in `Authorization` stops working at once.
async fn revoke(State(peer): State<Arc<Peer>>, headers: HeaderMap) -> StatusCode {
    let revoked = bearer(&headers).and_then(|t| peer.minted.lock().unwrap().remove(t));
    match revoked {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::UNAUTHORIZED,
    }
}

async fn contents(
    State(peer): State<Arc<Peer>>,
    Path((owner, repo, path)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    peer.recorded
        .lock()
        .unwrap()
        .content_authorizations
        .push(auth);
    let allowed = {
        let minted = peer.minted.lock().unwrap();
        match bearer(&headers).and_then(|t| minted.get(t)) {
            Some(m) if m.expires > SystemTime::now() => Some(m.repositories.contains(&repo)),
            _ => None,
        }
    };
    match allowed {
        None => error(StatusCode::UNAUTHORIZED, "Bad credentials"),
        // GitHub answers 404, not 403, for a repository the token cannot see.
        Some(false) => error(StatusCode::NOT_FOUND, "Not Found"),
        Some(true) if owner != OWNER || path != "README.md" => {
            error(StatusCode::NOT_FOUND, "Not Found")
        }
        Some(true) => {
            let text = format!("# {repo}\n");
            (
                StatusCode::OK,
                Json(json!({
                    "type": "file", "name": "README.md", "path": "README.md",
                    "encoding": "base64",
                    "content": base64::engine::general_purpose::STANDARD.encode(text),
                })),
            )
        }
    }
}
