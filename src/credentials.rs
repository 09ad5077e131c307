//! Credential backends: for destinations that do not accept actbridge's JWTs, a
//! short-lived credential scoped to the grant (the user's permissions ∩ every agent's)
//! replaces the agent's token.
//!
//! One seam, a closed enum with one match per operation: a backend reads the request
//! ([`Backend::scope`], so the policy judges what it touches), then either applies its
//! credential to the request ([`Backend::apply`]) or hands it out ([`Backend::vend`]).
//! Every backend refuses a request outside the grant before it calls anything. The
//! pipeline never sees a backend's secrets except inside the header values or vended
//! body it forwards.

mod aws_sts;
mod error;
mod filter;
mod github_app;
mod grantee;
mod postgres;
mod ssh_cert;

pub use error::CredentialError;
pub use grantee::Grantee;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderName, HeaderValue};

use crate::config::{BackendConfig, CredentialConfig};

/// An AWS STS `AssumeRole` answer's `<Expiration>` text read exactly as the `aws_sts`
/// backend reads it (the SDK's own timestamp parser, then actbridge's bound), as of
/// `now`: the session's life, or the typed error the mint would fail with. The rest of
/// the XML is the SDK's to parse. For the fuzz target `peer` and tests.
///
/// ```text
/// 2026-12-07T15:00:00Z (now + 1 h)   → Ok(3600 s)
/// 9999-12-31T23:59:59Z               → Err(InvalidResponse): beyond 12 h + 5 min
/// ```
pub fn parse_sts_expiration(text: &str, now: SystemTime) -> Result<Duration, CredentialError> {
    aws_sts::parse_expiration(text, now)
}

/// GitHub's answer (HTTP `status`, `body`) to an installation-token request for
/// `repositories` (lower case) with `permissions`, read exactly as the `github_app`
/// backend reads it, as of `now`: the token's life, or the typed error the mint would
/// fail with. For the fuzz target `peer` and tests.
///
/// ```text
/// 201 {"token":"ghs_…","expires_at":"2026-12-07T15:00:00Z","repositories":[{"name":"docs"}]} → Ok
/// 201 {…,"expires_at":"99999-01-01T00:00:00Z",…}                                           → Err(InvalidResponse)
/// ```
pub fn parse_github_token_response(
    status: u16,
    body: &[u8],
    repositories: &[String],
    permissions: &BTreeMap<String, String>,
    now: SystemTime,
) -> Result<Duration, CredentialError> {
    github_app::parse_token_answer(status, body, repositories, permissions, now)
}

/// The outbound request as a backend sees it.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:authority` (lower case).
    pub authority: &'a str,
    /// `:path`, query string included, exactly as Envoy forwards it (signatures cover
    /// these bytes).
    pub path: &'a str,
    /// The path as every upstream reads it: decoded, no query (`http_path::CanonicalPath`;
    /// the pipeline refused every spelling with another reading before a backend sees it).
    pub canonical_path: &'a str,
    /// Names of the request's headers (lower case).
    pub header_names: &'a [&'a str],
    /// Every `content-type` value, as sent.
    pub content_types: &'a [&'a [u8]],
    /// Every `content-encoding` value, as sent.
    pub content_encodings: &'a [&'a [u8]],
    /// Whether a body follows the headers.
    pub has_body: bool,
}

impl<'a> HttpRequest<'a> {
    /// A request with no body and no headers, for tests and benchmarks (`path` must be
    /// canonical already: it is also taken as the decoded path, query excluded).
    pub fn bare(method: &'a str, authority: &'a str, path: &'a str) -> HttpRequest<'a> {
        HttpRequest {
            method,
            authority,
            path,
            canonical_path: path.split_once('?').map_or(path, |(p, _)| p),
            header_names: &[],
            content_types: &[],
            content_encodings: &[],
            has_body: false,
        }
    }
}

/// What a request touches, as the policy is told (`input.action`, `input.resource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `read`, `list`, `write` or `delete`.
    pub action: &'static str,
    /// The resource's path segments (S3: the object key or list prefix; GitHub: the
    /// repository and the rest of the path).
    pub resource: Vec<String>,
    /// The backend's own name for the resource (S3: the key or list prefix; GitHub: the
    /// repository).
    object: String,
}

/// Header changes a backend asks for on the outbound request.
#[derive(Debug, Default)]
pub struct HeaderChanges {
    /// Set (replacing).
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Removed.
    pub remove: Vec<HeaderName>,
    /// What to do if the upstream answers 401 to the credential set here.
    pub on_rejected: Option<OnRejected>,
}

/// What a backend does when the upstream answers 401 to a request carrying its
/// credential: the credential was revoked or rotated upstream, so the backend forgets
/// it and the next request mints a new one instead of failing until it expires.
#[derive(Clone)]
pub struct OnRejected(Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>);

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl OnRejected {
    pub(crate) fn new(f: impl Fn() -> BoxFuture<'static, ()> + Send + Sync + 'static) -> Self {
        OnRejected(Arc::new(f))
    }

    /// Forgets the rejected credential.
    pub async fn fire(&self) {
        (self.0)().await
    }
}

impl fmt::Debug for OnRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnRejected")
    }
}

/// What a vending request asks for (the body of `POST /credentials`, past its
/// `target_service`).
#[derive(Debug, Clone, Copy)]
pub struct VendAsk<'a> {
    /// What the caller will do: `read` (S3, GitHub) or `login` (SSH).
    pub action: &'a str,
    /// The caller's public key (SSH only).
    pub public_key: Option<&'a str>,
}

/// The action a method performs, as the policy is told (`read`, `delete`, `write`; the
/// same reading as the policy input's for other routes).
pub(crate) fn action_of(method: &str) -> &'static str {
    match method {
        "GET" | "HEAD" | "OPTIONS" => "read",
        "DELETE" => "delete",
        _ => "write",
    }
}

/// What `grant` maps to through a backend's configured `map` (grant entry → names):
/// sorted, deduplicated, and never empty (a grant that maps to nothing is refused
/// before the backend is called).
pub(crate) fn mapped(
    grant: &[String],
    map: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<Vec<String>, CredentialError> {
    let names: std::collections::BTreeSet<&String> =
        grant.iter().filter_map(|g| map.get(g)).flatten().collect();
    if names.is_empty() {
        return Err(CredentialError::NothingGranted);
    }
    Ok(names.into_iter().cloned().collect())
}

/// A vended credential: the JSON object returned to the caller. Never logged.
pub struct Vended(pub serde_json::Value);

impl fmt::Debug for Vended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vended([redacted])")
    }
}

/// One configured backend.
pub enum Backend {
    /// AWS STS session credentials with an inline session policy.
    AwsSts(aws_sts::AwsSts),
    /// GitHub App installation tokens for the grant's repositories.
    GithubApp(github_app::GithubApp),
    /// SSH user certificates with the grant's principals (vending only).
    SshCert(ssh_cert::SshCert),
    /// Dynamic PostgreSQL roles (vending only).
    Postgres(postgres::Postgres),
    /// A filtering proxy injecting a service token into allowed requests.
    Filter(filter::Filter),
}

impl Backend {
    /// The backend's kind as the policy sees it (`input.backend`).
    pub fn kind(&self) -> &'static str {
        match self {
            Backend::AwsSts(_) => "aws_sts",
            Backend::GithubApp(_) => "github_app",
            Backend::SshCert(_) => "ssh_cert",
            Backend::Postgres(_) => "postgres",
            Backend::Filter(_) => "filter",
        }
    }

    /// Forgets every cached credential: the next request mints a new one. (A PostgreSQL
    /// role already handed out stays valid until its `VALID UNTIL`; the reaper drops it.)
    pub fn forget_cached(&self) {
        match self {
            Backend::AwsSts(b) => b.forget_cached(),
            Backend::GithubApp(b) => b.forget_cached(),
            Backend::SshCert(b) => b.forget_cached(),
            Backend::Postgres(b) => b.forget_cached(),
            Backend::Filter(_) => {}
        }
    }

    /// The backend's credential cache (a miss is one mint from its upstream); `None` for
    /// `filter`, which mints nothing.
    pub fn cache_stats(&self) -> Option<&Arc<crate::telemetry::metrics::CacheStats>> {
        match self {
            Backend::AwsSts(b) => Some(b.cache_stats()),
            Backend::GithubApp(b) => Some(b.cache_stats()),
            Backend::SshCert(b) => Some(b.cache_stats()),
            Backend::Postgres(b) => Some(b.cache_stats()),
            Backend::Filter(_) => None,
        }
    }

    /// What `req` touches; refuses requests the backend cannot scope.
    pub fn scope(&self, req: &HttpRequest<'_>) -> Result<Scope, CredentialError> {
        match self {
            Backend::AwsSts(b) => b.scope(req),
            Backend::GithubApp(b) => b.scope(req),
            Backend::Filter(b) => b.scope(req),
            Backend::SshCert(_) | Backend::Postgres(_) => Err(not_applied()),
        }
    }

    /// When equipping `req` needs its body: the largest body accepted.
    pub fn body_limit(&self, req: &HttpRequest<'_>) -> Option<usize> {
        match self {
            Backend::Filter(b) => b.body_limit(req),
            _ => None,
        }
    }

    /// What a vending request touches; refuses what the backend does not vend.
    pub fn vend_scope(&self, ask: &VendAsk<'_>) -> Result<Scope, CredentialError> {
        if ask.public_key.is_some() && !matches!(self, Backend::SshCert(_)) {
            return Err(CredentialError::BadVendRequest(
                "`public_key` is only for SSH".into(),
            ));
        }
        match self {
            Backend::AwsSts(b) => b.vend_scope(ask.action),
            Backend::GithubApp(b) => b.vend_scope(ask.action),
            Backend::SshCert(b) => b.vend_scope(ask),
            Backend::Postgres(b) => b.vend_scope(ask.action),
            Backend::Filter(_) => Err(CredentialError::BadVendRequest(
                "this service's token is never handed out".into(),
            )),
        }
    }

    /// The header changes that make `req` carry `who`'s credential (AWS: a SigV4
    /// signature; GitHub: a bearer installation token; filter: the service token, if a
    /// rule allows the request). `body` is the request body when
    /// [`Backend::body_limit`] asked for it.
    pub async fn apply(
        &self,
        who: &Grantee<'_>,
        req: &HttpRequest<'_>,
        scope: &Scope,
        body: Option<&[u8]>,
    ) -> Result<HeaderChanges, CredentialError> {
        crate::fault::point(&format!("credential:{}", self.kind()));
        match self {
            Backend::AwsSts(b) => b.sign(who, req, scope).await,
            Backend::GithubApp(b) => b.inject(who, scope).await,
            Backend::Filter(b) => b.apply(who, req, scope, body),
            Backend::SshCert(_) | Backend::Postgres(_) => Err(not_applied()),
        }
    }

    /// A credential for `who`, handed to the caller.
    pub async fn vend(
        &self,
        who: &Grantee<'_>,
        ask: &VendAsk<'_>,
    ) -> Result<Vended, CredentialError> {
        crate::fault::point(&format!("credential:{}", self.kind()));
        match self {
            Backend::AwsSts(b) => b.vend(who).await,
            Backend::GithubApp(b) => b.vend(who).await,
            Backend::SshCert(b) => b.vend(who, ask).await,
            Backend::Postgres(b) => b.vend(who).await,
            Backend::Filter(_) => Err(not_applied()),
        }
    }

    /// The backend's background work until `shutdown` (the PostgreSQL reaper); returns
    /// at once for backends that have none.
    pub async fn run_maintenance(&self, shutdown: tokio_util::sync::CancellationToken) {
        if let Backend::Postgres(b) = self {
            b.run_reaper(shutdown).await;
        }
    }
}

/// A backend that only vends was asked to equip a request (config validation prevents
/// such a route).
fn not_applied() -> CredentialError {
    CredentialError::Unsupported("this credential is only vended".into())
}

/// The configured backends, by name.
#[derive(Default)]
pub struct Credentials {
    backends: HashMap<String, Arc<Backend>>,
}

impl Credentials {
    /// Builds every backend of `configs`. No network I/O: base credentials are resolved
    /// at the first call.
    pub async fn load(configs: &[CredentialConfig]) -> Credentials {
        let mut backends = HashMap::with_capacity(configs.len());
        for c in configs {
            let backend = match &c.backend {
                BackendConfig::AwsSts(a) => Backend::AwsSts(aws_sts::AwsSts::new(a).await),
                BackendConfig::GithubApp(g) => Backend::GithubApp(github_app::GithubApp::new(g)),
                BackendConfig::SshCert(c) => Backend::SshCert(ssh_cert::SshCert::new(c)),
                BackendConfig::Postgres(c) => Backend::Postgres(postgres::Postgres::new(c)),
                BackendConfig::Filter(c) => Backend::Filter(filter::Filter::new(c)),
            };
            backends.insert(c.name.clone(), Arc::new(backend));
        }
        Credentials { backends }
    }

    /// Every backend, for its background work.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Backend>> {
        self.backends.values()
    }

    /// Every backend with its configured name.
    pub fn named(&self) -> impl Iterator<Item = (&str, &Arc<Backend>)> {
        self.backends.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The backend named `name` (config validation guarantees routes name known ones).
    pub fn get(&self, name: &str) -> Option<&Arc<Backend>> {
        self.backends.get(name)
    }
}
