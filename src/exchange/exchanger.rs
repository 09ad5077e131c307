//! The exchange itself: the RFC 8693 request, actbridge's actor token, and the cache of
//! exchanged tokens (moka, single-flight: concurrent identical requests share one call).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::ExchangeError;
use super::token_client::{TokenClient, TokenResponse};
use crate::clock::now_secs;
use crate::config::{ACCESS_TOKEN_TYPE, ExchangeTarget, OutboundConfig};

const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Lifetime assumed when a token response has no `expires_in` (nothing is cached past it).
const DEFAULT_LIFETIME_SECS: u64 = 60;

/// A token obtained from the token service.
#[derive(Clone)]
pub struct IssuedToken {
    /// The token. Never log it.
    pub access_token: String,
    /// When it expires (seconds since the epoch).
    pub expires_at: u64,
    /// How long the cache may keep it.
    cache_for: Duration,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("access_token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl IssuedToken {
    /// The token of a checked response, as of `now`: it expires `expires_in` (default
    /// `DEFAULT_LIFETIME_SECS`) from now, never past `subject_expires_at`. The cache
    /// keeps it for the earlier of `expires_at − skew` and 80 % of its life. All
    /// arithmetic saturates: no answer and no clock makes it overflow.
    pub(super) fn new(
        resp: TokenResponse,
        now: u64,
        subject_expires_at: Option<u64>,
        skew: Duration,
    ) -> IssuedToken {
        let life = resp.expires_in.unwrap_or(DEFAULT_LIFETIME_SECS);
        let mut expires_at = now.saturating_add(life);
        if let Some(cap) = subject_expires_at {
            expires_at = expires_at.min(cap);
        }
        let remaining = Duration::from_secs(expires_at.saturating_sub(now));
        let life = Duration::from_secs(life);
        let cache_for = remaining.saturating_sub(skew).min(life - life / 5);
        IssuedToken {
            access_token: resp.access_token,
            expires_at,
            cache_for,
        }
    }

    /// How long the exchanged-token cache may keep it.
    pub fn cache_for(&self) -> Duration {
        self.cache_for
    }
}

struct CacheFor;

impl<K> moka::Expiry<K, Arc<IssuedToken>> for CacheFor {
    fn expire_after_create(&self, _: &K, v: &Arc<IssuedToken>, _: Instant) -> Option<Duration> {
        Some(v.cache_for)
    }
}

/// Exchanges agents' tokens for destination tokens.
pub struct Exchanger {
    client: TokenClient,
    skew: Duration,
    cache: moka::future::Cache<[u8; 32], Arc<IssuedToken>>,
    /// Hits and misses of `cache`; a miss is one call to the token service.
    stats: Arc<crate::telemetry::metrics::CacheStats>,
    actor: moka::future::Cache<(), Arc<IssuedToken>>,
    /// `outbound.send_actor_token`: whether naming this agent sends its own token as
    /// `actor_token` (a token service that records only the requester needs none).
    send_actor_token: bool,
}

impl Exchanger {
    /// Builds the exchanger from the outbound config.
    pub fn new(cfg: &OutboundConfig) -> Exchanger {
        Exchanger {
            client: TokenClient::new(
                cfg.token_endpoint.clone(),
                cfg.client.clone(),
                cfg.token_timeout,
                cfg.token_endpoint_spiffe_id.as_deref(),
            ),
            skew: cfg.cache_expiry_skew,
            cache: moka::future::Cache::builder()
                .max_capacity(cfg.cache_max_entries)
                .expire_after(CacheFor)
                .build(),
            stats: crate::telemetry::metrics::CacheStats::shared(),
            actor: moka::future::Cache::builder()
                .max_capacity(1)
                .expire_after(CacheFor)
                .build(),
            send_actor_token: cfg.send_actor_token,
        }
    }

    /// The workload identity for mTLS to the token endpoint (`outbound.tls`).
    pub fn use_identity(&self, identity: Arc<crate::spiffe::WorkloadIdentity>) {
        self.client.use_identity(identity);
    }

    /// Forgets every exchanged token (the actor token too).
    pub fn forget_cached(&self) {
        self.cache.invalidate_all();
        self.actor.invalidate_all();
    }

    /// Hits and misses of the exchanged-token cache; a miss is one token-service call.
    pub fn cache_stats(&self) -> &Arc<crate::telemetry::metrics::CacheStats> {
        &self.stats
    }

    /// A token for `target` on behalf of the holder of `subject_token` (which expires at
    /// `subject_expires_at`). With `name_actor` (the issued token is to name this agent as
    /// the newest actor) and `outbound.send_actor_token`, actbridge's own
    /// client-credentials token is sent as `actor_token`; a token service that records
    /// the requester (`azp`) names the agent without it.
    /// Served from the cache when possible; concurrent identical requests wait for one
    /// exchange.
    pub async fn exchange(
        &self,
        subject_token: &str,
        subject_expires_at: u64,
        target: &ExchangeTarget,
        name_actor: bool,
    ) -> Result<Arc<IssuedToken>, ExchangeError> {
        let key = self.cache_key(subject_token, target, name_actor);
        self.stats
            .get_or_mint(
                &self.cache,
                key,
                self.exchange_fresh(subject_token, subject_expires_at, target, name_actor),
            )
            .await
            .map_err(|e: Arc<ExchangeError>| (*e).clone())
    }

    /// A token for `target` obtained now, for one use: never served from nor stored in
    /// the cache (a single-use tool token must carry a `jti` of its own).
    pub async fn exchange_fresh(
        &self,
        subject_token: &str,
        subject_expires_at: u64,
        target: &ExchangeTarget,
        name_actor: bool,
    ) -> Result<Arc<IssuedToken>, ExchangeError> {
        crate::fault::point("exchange");
        let resp = self
            .exchange_uncached(subject_token, target, name_actor)
            .await?;
        Ok(Arc::new(self.issued(resp, Some(subject_expires_at))))
    }

    async fn exchange_uncached(
        &self,
        subject_token: &str,
        target: &ExchangeTarget,
        name_actor: bool,
    ) -> Result<TokenResponse, ExchangeError> {
        let mut form: Vec<(&'static str, String)> = vec![
            ("grant_type", TOKEN_EXCHANGE_GRANT.into()),
            ("subject_token", subject_token.into()),
            ("subject_token_type", ACCESS_TOKEN_TYPE.into()),
            ("requested_token_type", target.requested_token_type.clone()),
            ("audience", target.audience.clone()),
        ];
        if !target.scopes.is_empty() {
            form.push(("scope", target.scopes.join(" ")));
        }
        if name_actor && self.send_actor_token {
            let actor = self.actor_token().await?;
            form.push(("actor_token", actor.access_token.clone()));
            form.push(("actor_token_type", ACCESS_TOKEN_TYPE.into()));
        }
        let resp = self.client.request(form).await?;
        // RFC 8693 §2.2.1: `issued_token_type` says what was issued; anything but what
        // was asked for must not be forwarded as if it were.
        match resp.issued_token_type.as_deref() {
            Some(t) if t != target.requested_token_type => {
                Err(ExchangeError::InvalidResponse(format!(
                    "issued_token_type `{}` differs from the requested type",
                    t.chars().take(80).collect::<String>()
                )))
            }
            _ => Ok(resp),
        }
    }

    /// actbridge's own client-credentials token, cached and renewed before it expires.
    async fn actor_token(&self) -> Result<Arc<IssuedToken>, ExchangeError> {
        self.actor
            .try_get_with((), async {
                let resp = self
                    .client
                    .request(vec![("grant_type", "client_credentials".into())])
                    .await?;
                Ok(Arc::new(self.issued(resp, None)))
            })
            .await
            .map_err(|e: Arc<ExchangeError>| (*e).clone())
    }

    fn issued(&self, resp: TokenResponse, subject_expires_at: Option<u64>) -> IssuedToken {
        IssuedToken::new(resp, now_secs(), subject_expires_at, self.skew)
    }

    /// SHA-256 over everything that changes the issued token; the raw token is never a key.
    fn cache_key(
        &self,
        subject_token: &str,
        target: &ExchangeTarget,
        name_actor: bool,
    ) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [
            subject_token,
            &target.audience,
            &target.scopes.join(" "),
            &target.requested_token_type,
            if name_actor {
                self.client.client_id()
            } else {
                ""
            },
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }
}
