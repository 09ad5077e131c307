//! [`TokenService`]: the realm, the signing key and the counters behind the HTTP routes,
//! and serving with graceful shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::client_assertion::ReplayCache;
use super::error::StsError;
use super::grants::Grant;
use super::http;
use super::keys::SigningKey;
use super::realm::Realm;
use super::revoked::{MAX_REVOKED, RevokedTokens};

/// Request counters of a [`TokenService`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StsStats {
    /// `password` grant requests received (answered or refused).
    pub password: u64,
    /// `client_credentials` grant requests received (answered or refused).
    pub client_credentials: u64,
    /// Token-exchange requests received (answered or refused).
    pub token_exchange: u64,
    /// Introspection requests received (RFC 7662; answered or refused).
    pub introspection: u64,
    /// Revocation requests received (RFC 7009; answered or refused).
    pub revocation: u64,
    /// Error responses sent, on any path.
    pub refused: u64,
}

#[derive(Default)]
struct Counters {
    password: AtomicU64,
    client_credentials: AtomicU64,
    token_exchange: AtomicU64,
    introspection: AtomicU64,
    revocation: AtomicU64,
    refused: AtomicU64,
}

/// The embedded token service: one realm, one RS256 signing key, Keycloak's paths.
pub struct TokenService {
    realm: Realm,
    public_url: String,
    key: SigningKey,
    replay: ReplayCache,
    revoked: RevokedTokens,
    counters: Counters,
    unavailable: AtomicBool,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.issuer())
            .field("kid", &self.key.kid())
            .field("realm", &self.realm)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// `public_url` is the base URL clients use (e.g. `http://127.0.0.1:8180`); the issuer is
    /// `{public_url}/realms/{realm}`. `signing_key_pem`: `None` = generate an RSA-2048 key at
    /// start; otherwise an RSA private key in PEM (PKCS#8 or PKCS#1).
    pub fn new(
        realm: Realm,
        public_url: &str,
        signing_key_pem: Option<&[u8]>,
    ) -> Result<Arc<TokenService>, StsError> {
        let bad_url = |reason: &str| StsError::PublicUrl {
            url: public_url.to_string(),
            reason: reason.into(),
        };
        let url = url::Url::parse(public_url).map_err(|e| bad_url(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(bad_url("must be an absolute http(s) URL with a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad_url("must not have a query or fragment"));
        }
        let key = match signing_key_pem {
            Some(pem) => SigningKey::from_pem(pem)?,
            None => SigningKey::generate()?,
        };
        Ok(Arc::new(TokenService {
            realm,
            public_url: public_url.trim_end_matches('/').to_string(),
            key,
            replay: ReplayCache::new(),
            revoked: RevokedTokens::new(MAX_REVOKED),
            counters: Counters::default(),
            unavailable: AtomicBool::new(false),
        }))
    }

    /// `{public_url}/realms/{realm}`.
    pub fn issuer(&self) -> String {
        format!("{}/realms/{}", self.public_url, self.realm.name)
    }

    /// `{issuer}/protocol/openid-connect/token`.
    pub fn token_endpoint(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer())
    }

    /// `{issuer}/protocol/openid-connect/token/introspect` (RFC 7662).
    pub fn introspection_endpoint(&self) -> String {
        format!("{}/introspect", self.token_endpoint())
    }

    /// `{issuer}/protocol/openid-connect/revoke` (RFC 7009).
    pub fn revocation_endpoint(&self) -> String {
        format!("{}/protocol/openid-connect/revoke", self.issuer())
    }

    /// `{issuer}/protocol/openid-connect/certs`.
    pub fn jwks_uri(&self) -> String {
        format!("{}/protocol/openid-connect/certs", self.issuer())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> StsStats {
        let c = &self.counters;
        StsStats {
            password: c.password.load(Ordering::Relaxed),
            client_credentials: c.client_credentials.load(Ordering::Relaxed),
            token_exchange: c.token_exchange.load(Ordering::Relaxed),
            introspection: c.introspection.load(Ordering::Relaxed),
            revocation: c.revocation.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
        }
    }

    /// Sign arbitrary claims with the service key (RS256, kid set). For tests and demo
    /// tooling only: the claims are taken as given, nothing is added or checked.
    pub fn sign_claims(&self, claims: &serde_json::Value) -> String {
        self.key
            .try_sign(claims)
            .expect("RS256 signing with the key validated at start cannot fail for JSON claims")
    }

    /// Test switch: while on, the token endpoint answers 503
    /// `{"error":"temporarily_unavailable",...}` (counted as refused), as an outage would.
    pub fn set_unavailable(&self, on: bool) {
        self.unavailable.store(on, Ordering::Relaxed);
    }

    /// All HTTP paths (discovery, JWKS, token, introspection and revocation endpoints).
    pub fn router(self: &Arc<Self>) -> axum::Router {
        http::router(Arc::clone(self))
    }

    /// Serve until `shutdown` is cancelled; in-flight requests finish (graceful).
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        tracing::info!(%addr, issuer = %self.issuer(), kid = %self.key.kid(), "token service listening");
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await?;
        tracing::info!(%addr, "token service stopped");
        Ok(())
    }

    pub(crate) fn realm(&self) -> &Realm {
        &self.realm
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    pub(crate) fn replay_cache(&self) -> &ReplayCache {
        &self.replay
    }

    pub(crate) fn revoked(&self) -> &RevokedTokens {
        &self.revoked
    }

    pub(crate) fn is_unavailable(&self) -> bool {
        self.unavailable.load(Ordering::Relaxed)
    }

    pub(crate) fn count_grant(&self, grant: Grant) {
        let counter = match grant {
            Grant::Password => &self.counters.password,
            Grant::ClientCredentials => &self.counters.client_credentials,
            Grant::TokenExchange => &self.counters.token_exchange,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_introspection(&self) {
        self.counters.introspection.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_revocation(&self) {
        self.counters.revocation.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_refused(&self) {
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
    }
}
