//! One issuer's signing keys: fetched from its JWKS URI (or found by OIDC discovery),
//! held behind an `ArcSwap` so the request path reads them without a lock, refreshed in
//! the background, and re-fetched on an unknown `kid` at most once per configured
//! interval. Keys not re-fetched successfully within `jwks_max_age` are no longer
//! trusted: an issuer that stays unreachable cannot keep a key it has since removed
//! (rotated out after a compromise, say) in use here forever.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, jwk::KeyAlgorithm};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::config::{IssuerConfig, JwksSource};
use crate::http_client;

/// Largest JWKS or discovery document accepted.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// A usable verification key.
pub(super) struct KeyEntry {
    pub key: DecodingKey,
    /// The family the key belongs to (RSA, EC, OKP).
    pub family: jsonwebtoken::AlgorithmFamily,
    /// The JWK's own `alg`, when it pins one.
    pub alg: Option<Algorithm>,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<KeyEntry>>,
    /// When the set was fetched (`None`: never).
    loaded_at: Option<Instant>,
}

/// Why a JWKS fetch failed (logged; callers see [`super::VerifyError::KeysUnavailable`]).
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The HTTP request failed.
    #[error("request to {url} failed: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The document did not parse or broke a rule.
    #[error("document from {url} is invalid: {reason}")]
    Invalid {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// The signing keys of one issuer.
pub struct JwksStore {
    issuer: String,
    source: JwksSource,
    http: reqwest::Client,
    keys: ArcSwap<KeySet>,
    refetch_gate: tokio::sync::Mutex<Option<Instant>>,
    min_refetch: Duration,
    /// Bound of a whole re-fetch made while a request waits (discovery included).
    fetch_timeout: Duration,
    refresh_interval: Duration,
    max_age: Duration,
}

impl JwksStore {
    /// The issuer these keys are for.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// How long ago the keys were last fetched; `None` before the first fetch.
    pub fn age(&self) -> Option<Duration> {
        self.keys.load().loaded_at.map(|t| t.elapsed())
    }

    /// A store for `cfg`; nothing is fetched until [`JwksStore::refresh`] runs.
    pub fn new(cfg: &IssuerConfig) -> Self {
        JwksStore {
            issuer: cfg.issuer.clone(),
            source: cfg.jwks.clone(),
            http: http_client::build(cfg.jwks_timeout),
            keys: ArcSwap::from_pointee(KeySet::default()),
            refetch_gate: tokio::sync::Mutex::new(None),
            min_refetch: cfg.jwks_min_refetch_interval,
            fetch_timeout: cfg.jwks_timeout,
            refresh_interval: cfg.jwks_refresh_interval,
            max_age: cfg.jwks_max_age,
        }
    }

    /// How many usable keys a JWKS document holds, read exactly as [`JwksStore::refresh`]
    /// reads it, or why it is refused. For the fuzz target `peer` and tests.
    pub fn parse_jwks_document(body: &[u8]) -> Result<usize, String> {
        parse_jwks(body).map(|set| set.keys.len())
    }

    /// The `jwks_uri` of an OIDC discovery document for `issuer`, read exactly as
    /// [`JwksStore::refresh`] reads it, or why it is refused. For the fuzz target `peer`.
    pub fn parse_discovery_document(body: &[u8], issuer: &str) -> Result<String, String> {
        parse_discovery(body, issuer)
    }

    /// Whether keys are loaded and younger than `jwks_max_age`.
    pub fn is_loaded(&self) -> bool {
        self.keys.load().fresh(self.max_age)
    }

    /// The key for `kid`, if the keys are loaded and not past `jwks_max_age`.
    pub(super) fn lookup(&self, kid: &str) -> Option<Arc<KeyEntry>> {
        let set = self.keys.load();
        if !set.fresh(self.max_age) {
            return None;
        }
        set.keys.get(kid).cloned()
    }

    /// Returns the key for `kid`, re-fetching the JWKS once if it is unknown and the
    /// last re-fetch is older than the minimum interval. `Err(true)` means the keys are
    /// unavailable (never loaded, or past `jwks_max_age`), `Err(false)` that the kid is
    /// simply unknown. The wait (for another request's re-fetch too) and the re-fetch
    /// (discovery included) are bounded by `jwks_timeout` as a whole.
    pub(super) async fn key_or_refetch(&self, kid: &str) -> Result<Arc<KeyEntry>, bool> {
        if let Some(k) = self.lookup(kid) {
            return Ok(k);
        }
        match tokio::time::timeout(self.fetch_timeout, self.refetch_for(kid)).await {
            Ok(found) => found,
            Err(_) => {
                tracing::warn!(issuer = %self.issuer, "JWKS re-fetch for an unknown kid timed out");
                self.lookup(kid).ok_or_else(|| !self.is_loaded())
            }
        }
    }

    async fn refetch_for(&self, kid: &str) -> Result<Arc<KeyEntry>, bool> {
        let mut last = self.refetch_gate.lock().await;
        if let Some(k) = self.lookup(kid) {
            return Ok(k);
        }
        if last.is_some_and(|t| t.elapsed() < self.min_refetch) {
            return Err(!self.is_loaded());
        }
        *last = Some(Instant::now());
        if let Err(e) = self.refresh().await {
            tracing::warn!(issuer = %self.issuer, error = %e, "JWKS re-fetch for an unknown kid failed");
        }
        drop(last);
        self.lookup(kid).ok_or_else(|| !self.is_loaded())
    }

    /// Fetches the JWKS now and swaps it in. On failure the previous keys stay.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        let jwks_uri = match &self.source {
            JwksSource::Uri(u) => u.to_string(),
            JwksSource::Discovery(d) => self.discover(d.as_str()).await?,
        };
        let body = self.get(&jwks_uri).await?;
        let set = parse_jwks(&body).map_err(|reason| JwksError::Invalid {
            url: jwks_uri.clone(),
            reason,
        })?;
        let n = set.keys.len();
        self.keys.store(Arc::new(set));
        tracing::debug!(issuer = %self.issuer, keys = n, "JWKS loaded");
        Ok(n)
    }

    async fn discover(&self, url: &str) -> Result<String, JwksError> {
        let body = self.get(url).await?;
        parse_discovery(&body, &self.issuer).map_err(|reason| JwksError::Invalid {
            url: url.to_string(),
            reason,
        })
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, JwksError> {
        crate::telemetry::metrics::timed("jwks", self.fetch(url)).await
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, JwksError> {
        let fail = |reason: String| JwksError::Fetch {
            url: url.to_string(),
            reason,
        };
        let resp = http_client::traced(self.http.get(url))
            .send()
            .await
            .map_err(|e| fail(http_client::describe(&e)))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status())));
        }
        http_client::read_limited(resp, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| fail(e.to_string()))
    }

    /// Refreshes every `jwks_refresh_interval` (sooner, at the re-fetch interval, while
    /// no keys have loaded yet) until `shutdown`.
    pub async fn run_refresh(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let wait = match self.refresh().await {
                Ok(_) => self.refresh_interval,
                Err(e) if self.is_loaded() => {
                    tracing::warn!(issuer = %self.issuer, error = %e, "JWKS refresh failed; keeping the previous keys");
                    self.min_refetch.min(self.refresh_interval)
                }
                Err(e) => {
                    tracing::warn!(issuer = %self.issuer, error = %e, max_age = ?self.max_age, "JWKS refresh failed and no keys younger than jwks_max_age are held: this issuer's tokens are refused");
                    self.min_refetch.min(self.refresh_interval)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Reads an OIDC discovery document: its `jwks_uri`, when its `issuer` is `issuer`.
fn parse_discovery(body: &[u8], issuer: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let d: Discovery = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    // OpenID Connect Discovery §4.3: the issuer in the document must be identical.
    if d.issuer != issuer {
        return Err(format!(
            "issuer `{}` differs from the configured `{issuer}`",
            d.issuer
        ));
    }
    Ok(d.jwks_uri)
}

/// Parses a JWKS, keeping the signature keys it can use. Keys without `kid`, encryption
/// keys and symmetric (`oct`) keys are skipped: an HMAC secret never comes from a JWKS.
fn parse_jwks(body: &[u8]) -> Result<KeySet, String> {
    #[derive(Deserialize)]
    struct Doc {
        keys: Vec<serde_json::Value>,
    }
    let doc: Doc = serde_json::from_slice(body).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = HashMap::new();
    for v in doc.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(v) else {
            tracing::debug!("skipping a JWK of an unsupported type");
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if matches!(
            jwk.common.public_key_use,
            Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
        ) {
            continue;
        }
        let family = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => jsonwebtoken::AlgorithmFamily::Rsa,
            AlgorithmParameters::EllipticCurve(_) => jsonwebtoken::AlgorithmFamily::Ec,
            AlgorithmParameters::OctetKeyPair(_) => jsonwebtoken::AlgorithmFamily::Ed,
            _ => continue,
        };
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a: KeyAlgorithm| Algorithm::from_str(&a.to_string()).ok());
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            tracing::debug!(kid, "skipping a JWK that does not load");
            continue;
        };
        keys.insert(kid, Arc::new(KeyEntry { key, family, alg }));
    }
    Ok(KeySet {
        keys,
        loaded_at: Some(Instant::now()),
    })
}

impl KeySet {
    /// Loaded, and fetched no longer than `max_age` ago.
    fn fresh(&self, max_age: Duration) -> bool {
        self.loaded_at.is_some_and(|t| t.elapsed() <= max_age)
    }
}
