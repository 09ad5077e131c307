//! RFC 7662 token introspection: the live check, at the issuer, that a token verified
//! locally is still active — so a token revoked at the identity provider (RFC 7009,
//! logout) is refused at once although its signature and `exp` are still good.
//!
//! Only verified tokens are sent (never one that failed local verification), only to
//! their own issuer's endpoint (`issuers[].introspection`). An `active: true` answer may
//! be reused for `cache_ttl` (never past the token's `exp` nor the answer's own, keyed by
//! a SHA-256 of the token); an inactive answer never is. Anything but a well-formed answer is an error
//! the caller refuses on (fail closed).
//!
//! # Layout
//!
//! - `client`: one POST to the endpoint (client authentication as the token client's,
//!   `traceparent`) and the parsing of its answer.
//! - `error`: [`IntrospectError`].

mod client;
mod error;

pub use error::IntrospectError;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::clock::now_secs;
use crate::config::Config;
use crate::jwt::VerifiedToken;
use crate::telemetry::metrics::CacheStats;
use client::IntrospectionClient;

/// The introspection endpoint's answer (HTTP `status`, `body`) about `verified`, read
/// exactly as [`Introspector::check`] reads it, as of `now` (Unix seconds): how long an
/// active answer may be reused at most (before `cache_ttl` applies), or the typed error
/// the check would fail with. For the fuzz target `peer` and tests.
///
/// ```text
/// 200 {"active":true,"exp":1796208300}   → Ok(until the earlier of that and the token's exp)
/// 200 {"active":true,"exp":1e300}        → Err(InvalidResponse)
/// 200 {"active":false}                   → Err(Inactive)
/// ```
pub fn parse_introspection_response(
    status: u16,
    body: &[u8],
    verified: &VerifiedToken,
    now: u64,
) -> Result<Duration, IntrospectError> {
    let answer = client::parse_answer(status, body)?;
    answer.agrees_with(verified)?;
    Ok(answer.reuse_for(verified, now))
}

/// Checks tokens at their issuers' introspection endpoints.
pub struct Introspector {
    issuers: HashMap<String, IssuerCheck>,
    /// Cache hits and misses over all issuers; a miss is one call to an endpoint, an
    /// error a call that got no usable answer.
    stats: Arc<CacheStats>,
}

struct IssuerCheck {
    client: IntrospectionClient,
    cache_ttl: Duration,
    /// Active answers by token hash, each kept for its own time (`Reuse`).
    cache: Option<moka::sync::Cache<[u8; 32], Duration>>,
}

/// An entry lives for the time stored in it.
struct Reuse;

impl moka::Expiry<[u8; 32], Duration> for Reuse {
    fn expire_after_create(&self, _: &[u8; 32], keep: &Duration, _: Instant) -> Option<Duration> {
        Some(*keep)
    }
}

impl Introspector {
    /// The introspector of every issuer with an `introspection` section; `None` when
    /// none has one. No I/O.
    pub fn new(cfg: &Config) -> Option<Introspector> {
        let issuers: HashMap<String, IssuerCheck> = cfg
            .issuers
            .iter()
            .filter_map(|i| Some((i.issuer.clone(), i.introspection.as_ref()?)))
            .map(|(issuer, ic)| {
                let cache = (!ic.cache_ttl.is_zero()).then(|| {
                    moka::sync::Cache::builder()
                        .max_capacity(ic.cache_entries)
                        .expire_after(Reuse)
                        .build()
                });
                let check = IssuerCheck {
                    client: IntrospectionClient::new(ic),
                    cache_ttl: ic.cache_ttl,
                    cache,
                };
                (issuer, check)
            })
            .collect();
        (!issuers.is_empty()).then(|| Introspector {
            issuers,
            stats: CacheStats::shared(),
        })
    }

    /// Hits and misses of the answer caches; misses are calls to the endpoints.
    pub fn cache_stats(&self) -> &Arc<CacheStats> {
        &self.stats
    }

    /// Forgets every reused answer (after a revocation through the admin API).
    pub fn forget_cached(&self) {
        for check in self.issuers.values() {
            if let Some(cache) = &check.cache {
                cache.invalidate_all();
            }
        }
    }

    /// Whether `token`, already verified as `verified`, is active at its issuer, and the
    /// issuer's answer is about the same subject.
    pub async fn check(
        &self,
        token: &str,
        verified: &VerifiedToken,
    ) -> Result<(), IntrospectError> {
        let check = self
            .issuers
            .get(&verified.issuer)
            .ok_or(IntrospectError::NotConfigured)?;
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(cache) = &check.cache
            && cache.contains_key(&key)
        {
            self.stats.hit();
            return Ok(());
        }
        self.stats.miss();
        let answer = check
            .client
            .introspect(token)
            .await
            .inspect_err(|_| self.stats.error())?;
        answer.agrees_with(verified)?;
        if let Some(cache) = &check.cache {
            let keep = check.cache_ttl.min(answer.reuse_for(verified, now_secs()));
            if !keep.is_zero() {
                cache.insert(key, keep);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
