//! Client authentication with a SPIFFE JWT-SVID as the client assertion (RFC 7523 §2.2
//! with the SPIFFE JWT-SVID profile): for clients registered with `jwt_svid: true`, whose
//! `client_id` is their SPIFFE ID.
//!
//! Rules: `sub` = the client's SPIFFE ID (in the realm's trust domain); the signature
//! checks against a key of the trust domain's JWT bundle (a JWKS, by `kid`, which a
//! JWT-SVID must carry), in an algorithm the JWT-SVID profile allows (RS*, PS*, ES256,
//! ES384); `aud` = the token endpoint or the issuer (one value); `exp` required and in
//! the future; `iat`/`nbf` not in the future. No `jti` is required: a JWT-SVID is a
//! short-lived bearer credential of the Workload API, bound to this audience, and
//! SPIRE issues none.
//!
//! The bundle (`spiffe.jwt_bundle` in the realm file) is a JWKS file, read at start and
//! again when a `kid` is unknown; an http(s) URL (SPIRE's bundle endpoint or OIDC
//! discovery provider `/keys`); or a SPIFFE Workload API endpoint (`unix:///…`,
//! `tcp://…`: `FetchJWTBundles` through the `spiffe` crate, when the token service runs
//! next to a SPIRE agent). The last two are fetched on first use; all are fetched again
//! when a `kid` is unknown, at most once a second.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Map, Value};

use super::claims::now;
use super::refusal::Refusal;
use super::service::TokenService;

/// Tolerated clock difference for `iat` / `nbf` in the future.
const CLOCK_SKEW: u64 = 5;
/// Least time between two reloads of the bundle.
const MIN_RELOAD: Duration = Duration::from_secs(1);

/// Where the trust domain's JWT keys come from.
#[derive(Debug)]
enum Source {
    File(PathBuf),
    Url(url::Url),
    WorkloadApi(String),
}

/// The trust domain's JWT bundle: its keys by `kid`.
pub(crate) struct JwtBundle {
    trust_domain: String,
    source: Source,
    keys: ArcSwap<HashMap<String, DecodingKey>>,
    last_load: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for JwtBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtBundle")
            .field("trust_domain", &self.trust_domain)
            .field("source", &self.source)
            .field("keys", &self.keys.load().len())
            .finish()
    }
}

/// The JWT keys of a JWKS document (keys marked `use: x509-svid` are left out).
fn parse(json: &[u8]) -> Result<HashMap<String, DecodingKey>, String> {
    let set: JwkSet = serde_json::from_slice(json).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = HashMap::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        if matches!(&jwk.common.public_key_use, Some(PublicKeyUse::Other(u)) if u == "x509-svid") {
            continue;
        }
        let kid = jwk
            .common
            .key_id
            .clone()
            .ok_or_else(|| format!("keys[{i}] has no kid (a JWT-SVID names its key)"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("keys[{i}] ({kid}): {e}"))?;
        keys.insert(kid, key);
    }
    Ok(keys)
}

impl JwtBundle {
    /// `location`: a JWKS file path or an http(s) URL. A file is read now, so that a bad
    /// one stops the start.
    pub(crate) fn new(trust_domain: &str, location: &str) -> Result<JwtBundle, String> {
        let source = match url::Url::parse(location) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Source::Url(u),
            Ok(u) if matches!(u.scheme(), "unix" | "tcp") => {
                Source::WorkloadApi(location.to_string())
            }
            _ => Source::File(PathBuf::from(location)),
        };
        let keys = match &source {
            Source::File(p) => {
                let bytes =
                    std::fs::read(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
                parse(&bytes).map_err(|e| format!("`{}`: {e}", p.display()))?
            }
            Source::Url(_) | Source::WorkloadApi(_) => HashMap::new(),
        };
        Ok(JwtBundle {
            trust_domain: trust_domain.to_string(),
            source,
            keys: ArcSwap::from_pointee(keys),
            last_load: tokio::sync::Mutex::new(None),
        })
    }

    /// The trust domain whose keys these are.
    pub(crate) fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The key `kid`, reloading the bundle once if it is unknown.
    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(k) = self.keys.load().get(kid) {
            return Some(k.clone());
        }
        let mut last = self.last_load.lock().await;
        if last.is_none_or(|t| t.elapsed() >= MIN_RELOAD) {
            *last = Some(Instant::now());
            match self.load().await {
                Ok(keys) => self.keys.store(Arc::new(keys)),
                Err(e) => {
                    tracing::warn!(source = ?self.source, error = %e, "SPIFFE JWT bundle not reloaded")
                }
            }
        }
        self.keys.load().get(kid).cloned()
    }

    async fn load(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let bytes = match &self.source {
            Source::WorkloadApi(endpoint) => {
                let fetch = from_workload_api(endpoint, &self.trust_domain);
                return tokio::time::timeout(Duration::from_secs(5), fetch)
                    .await
                    .map_err(|_| format!("the Workload API at {endpoint} did not answer in 5s"))?;
            }
            Source::File(p) => tokio::fs::read(p).await.map_err(|e| e.to_string())?,
            Source::Url(u) => reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("actbridge-sts/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| e.to_string())?
                .get(u.clone())
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| e.to_string())?
                .bytes()
                .await
                .map_err(|e| e.to_string())?
                .to_vec(),
        };
        parse(&bytes)
    }
}

/// The trust domain's JWT keys from the Workload API's `FetchJWTBundles`.
async fn from_workload_api(
    endpoint: &str,
    trust_domain: &str,
) -> Result<HashMap<String, DecodingKey>, String> {
    let client = spiffe::WorkloadApiClient::connect_to(endpoint)
        .await
        .map_err(|e| format!("Workload API at {endpoint}: {e}"))?;
    let set = client
        .fetch_jwt_bundles()
        .await
        .map_err(|e| format!("Workload API at {endpoint}: {e}"))?;
    let td = spiffe::TrustDomain::new(trust_domain).map_err(|e| e.to_string())?;
    let bundle = set
        .get(&td)
        .ok_or_else(|| format!("the Workload API has no JWT bundle for {trust_domain}"))?;
    let mut keys = HashMap::new();
    for authority in bundle.jwt_authorities() {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_slice(authority.jwk_json())
            .map_err(|e| format!("JWT authority {}: {e}", authority.key_id()))?;
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| format!("JWT authority {}: {e}", authority.key_id()))?;
        keys.insert(authority.key_id().to_string(), key);
    }
    Ok(keys)
}

fn refuse(why: impl Into<String>) -> Refusal {
    Refusal::ClientAssertion(why.into())
}

/// Verifies `assertion` (header already decoded) as a JWT-SVID for `client_id`.
pub(crate) async fn verify(
    svc: &TokenService,
    client_id: &str,
    assertion: &str,
    header: &Header,
) -> Result<(), Refusal> {
    let bundle = svc
        .realm()
        .jwt_bundle()
        .ok_or_else(|| refuse("SPIFFE JWT-SVID authentication is not configured"))?;
    if !matches!(
        header.alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
    ) {
        return Err(refuse("Invalid signature algorithm"));
    }
    let failed = || {
        refuse(
            "Client authentication with signed JWT failed: Signature on JWT token failed validation",
        )
    };
    let kid = header.kid.as_deref().ok_or_else(failed)?;
    let Some(key) = bundle.key(kid).await else {
        tracing::debug!(%client_id, %kid, "JWT-SVID signed with a key not in the trust domain's bundle");
        return Err(failed());
    };
    let mut validation = Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(assertion, &key, &validation)
        .map_err(|e| {
            tracing::debug!(%client_id, error = %e, "JWT-SVID signature refused");
            failed()
        })?
        .claims;
    if claims.get("sub").and_then(Value::as_str) != Some(client_id) {
        return Err(refuse("Token sub claim does not name the client"));
    }
    super::client_assertion::check_audience(svc, &claims)?;
    let now = now();
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or_else(|| refuse("Token exp claim is required"))?;
    if exp <= now {
        return Err(refuse("Token is not active"));
    }
    let future = |c: &str| {
        claims
            .get(c)
            .and_then(Value::as_u64)
            .is_some_and(|t| t > now + CLOCK_SKEW)
    };
    if future("nbf") {
        return Err(refuse("Token is not active"));
    }
    if future("iat") {
        return Err(refuse("Token was issued in the future"));
    }
    Ok(())
}
