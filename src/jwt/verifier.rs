//! The verifier: picks the issuer and key, checks signature, algorithm, issuer,
//! audience, token type and times, and caches the result by a SHA-256 of the token so a repeated
//! token costs a hash and a lookup, never past its `exp`.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::jwks::JwksStore;
use super::{VerifiedToken, VerifyError, segments};
use crate::clock::now_secs;
use crate::config::{Config, IssuerConfig, TokenTypes};
use crate::telemetry::metrics::CacheStats;

/// Which audience list a token is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudienceProfile {
    /// A caller's token on a request entering the pod: the issuer's `audiences`.
    Inbound,
    /// The agent's own token on an outbound request: `outbound.subject_audiences`.
    Outbound,
    /// An operator's token on the admin API: `admin_api.audiences`.
    Admin,
}

struct IssuerEntry {
    cfg: IssuerConfig,
    jwks: Arc<JwksStore>,
    /// One validation per allowed algorithm (jsonwebtoken wants every algorithm of a
    /// validation to be of the key's family), per audience profile.
    inbound: HashMap<Algorithm, Validation>,
    outbound: HashMap<Algorithm, Validation>,
    admin: HashMap<Algorithm, Validation>,
}

/// Verifies bearer tokens against the configured issuers.
pub struct Verifier {
    issuers: HashMap<String, IssuerEntry>,
    cache: Option<moka::sync::Cache<[u8; 32], Arc<Cached>>>,
    /// Hits and misses of `cache` (a miss is a full verification; an error a refusal).
    cache_stats: Arc<CacheStats>,
    max_bytes: usize,
    max_chain: usize,
}

/// A cached verification: the token and the last second it is still acceptable.
struct Cached {
    token: Arc<VerifiedToken>,
    valid_until: u64,
}

struct UntilValid;

impl moka::Expiry<[u8; 32], Arc<Cached>> for UntilValid {
    fn expire_after_create(&self, _: &[u8; 32], v: &Arc<Cached>, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs(
            v.valid_until.saturating_sub(now_secs()),
        ))
    }
}

impl Verifier {
    /// Builds the verifier (no network I/O; keys load through [`Verifier::jwks_stores`]).
    pub fn new(cfg: &Config) -> Verifier {
        let outbound_aud = cfg.outbound.as_ref().map(|o| o.subject_audiences.clone());
        let admin_aud = cfg.admin_api.as_ref().map(|a| a.audiences.clone());
        let issuers = cfg
            .issuers
            .iter()
            .map(|ic| {
                let entry = IssuerEntry {
                    cfg: ic.clone(),
                    jwks: Arc::new(JwksStore::new(ic)),
                    inbound: validations(ic, &ic.audiences),
                    outbound: outbound_aud
                        .as_deref()
                        .map(|a| validations(ic, a))
                        .unwrap_or_default(),
                    admin: admin_aud
                        .as_deref()
                        .map(|a| validations(ic, a))
                        .unwrap_or_default(),
                };
                (ic.issuer.clone(), entry)
            })
            .collect();
        let cache = (cfg.verified_cache_entries > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(cfg.verified_cache_entries)
                .expire_after(UntilValid)
                .build()
        });
        Verifier {
            issuers,
            cache,
            cache_stats: CacheStats::shared(),
            max_bytes: cfg.max_token_bytes,
            max_chain: cfg.max_actor_chain,
        }
    }

    /// Forgets every cached verification.
    pub fn forget_cached(&self) {
        if let Some(c) = &self.cache {
            c.invalidate_all();
        }
    }

    /// Hits and misses of the verified-token cache (errors = refused tokens).
    pub fn cache_stats(&self) -> &Arc<CacheStats> {
        &self.cache_stats
    }

    /// The per-issuer key stores (for the background refresh tasks and readiness).
    pub fn jwks_stores(&self) -> impl Iterator<Item = &Arc<JwksStore>> {
        self.issuers.values().map(|e| &e.jwks)
    }

    /// True while every issuer holds keys fetched within its `jwks_max_age`.
    pub fn is_ready(&self) -> bool {
        self.issuers.values().all(|e| e.jwks.is_loaded())
    }

    /// Whether `token` claims (unverified) to come from a trusted issuer: a user's token,
    /// which must never leave the pod as it is. Signature and times are not checked — an
    /// expired or forged copy of a user token is not forwarded either.
    pub fn names_trusted_issuer(&self, token: &str) -> bool {
        token.len() <= self.max_bytes
            && segments::peek(token)
                .ok()
                .and_then(|p| p.iss)
                .is_some_and(|iss| self.issuers.contains_key(&iss))
    }

    /// Verifies `token` for `profile`.
    pub async fn verify(
        &self,
        token: &str,
        profile: AudienceProfile,
    ) -> Result<Arc<VerifiedToken>, VerifyError> {
        if token.len() > self.max_bytes {
            return Err(VerifyError::TooLarge {
                limit: self.max_bytes,
            });
        }
        let digest = cache_key(token, profile);
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(&digest)) {
            self.cache_stats.hit();
            if now_secs() > hit.valid_until {
                return Err(VerifyError::Expired);
            }
            return Ok(hit.token.clone());
        }
        self.cache_stats.miss();
        crate::fault::point("verify");
        let (token, leeway) = self
            .verify_uncached(token, profile, &digest)
            .await
            .inspect_err(|_| self.cache_stats.error())?;
        if let Some(cache) = &self.cache {
            let valid_until = token.expires_at.saturating_add(leeway);
            cache.insert(
                digest,
                Arc::new(Cached {
                    token: token.clone(),
                    valid_until,
                }),
            );
        }
        Ok(token)
    }

    async fn verify_uncached(
        &self,
        token: &str,
        profile: AudienceProfile,
        digest: &[u8; 32],
    ) -> Result<(Arc<VerifiedToken>, u64), VerifyError> {
        let peeked = segments::peek(token)?;
        let issuer = peeked
            .iss
            .as_deref()
            .and_then(|iss| self.issuers.get(iss))
            .ok_or(VerifyError::UntrustedIssuer)?;
        let alg = Algorithm::from_str(&peeked.header.alg)
            .ok()
            .filter(|a| issuer.cfg.algorithms.contains(a))
            .ok_or_else(|| VerifyError::AlgorithmNotAllowed(printable(&peeked.header.alg)))?;
        header_type(peeked.header.typ.as_ref(), &issuer.cfg.token_types)?;
        let validation = match profile {
            AudienceProfile::Inbound => issuer.inbound.get(&alg),
            AudienceProfile::Outbound => issuer.outbound.get(&alg),
            AudienceProfile::Admin => issuer.admin.get(&alg),
        }
        .ok_or(VerifyError::WrongAudience)?;
        let kid = peeked
            .header
            .kid
            .as_deref()
            .ok_or(VerifyError::MissingKeyId)?;
        let key = issuer
            .jwks
            .key_or_refetch(kid)
            .await
            .map_err(|unavailable| {
                if unavailable {
                    VerifyError::KeysUnavailable
                } else {
                    VerifyError::UnknownKeyId(printable(kid))
                }
            })?;
        if alg.family() != key.family || key.alg.is_some_and(|a| a != alg) {
            return Err(VerifyError::KeyAlgorithmMismatch {
                kid: printable(kid),
                alg: printable(&peeked.header.alg),
            });
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)
            .map_err(map_error)?;
        // Signed by the issuer: now its claim `typ` can be believed.
        token_class(&data.claims, &issuer.cfg.token_types)?;
        let fingerprint = hex::encode(&digest[..8]);
        let verified = VerifiedToken::from_claims(
            &data.claims,
            (&issuer.cfg.actors, self.max_chain),
            fingerprint,
        )?;
        let leeway = issuer.cfg.leeway.as_secs();
        if verified
            .issued_at
            .is_some_and(|iat| iat > now_secs().saturating_add(leeway))
        {
            return Err(VerifyError::NotYetValid);
        }
        Ok((Arc::new(verified), leeway))
    }
}

/// The JOSE header's `typ`, read before the signature: absent, or a value the issuer's
/// `token_types.header` lists. Another kind of JWT (a logout token, a DPoP proof, a
/// security event token) is refused whoever signed it (RFC 8725 §3.11, RFC 9068 §4).
fn header_type(typ: Option<&Value>, types: &TokenTypes) -> Result<(), VerifyError> {
    match typ {
        None => Ok(()),
        Some(Value::String(t)) if types.accepts_header(t) => Ok(()),
        Some(Value::String(t)) => Err(VerifyError::TypeNotAccepted(printable(t))),
        Some(_) => Err(VerifyError::Malformed("header typ is not a string")),
    }
}

/// The payload's `typ` claim, read from verified claims only: absent (issuers other than
/// Keycloak do not write it), or a class the issuer's `token_types.claim` lists. Keycloak
/// signs its ID, refresh, offline and logout tokens with the access tokens' key, often
/// with the same `aud`; only `Bearer` is an access token (explicit typing, RFC 8725
/// §3.11).
fn token_class(claims: &Map<String, Value>, types: &TokenTypes) -> Result<(), VerifyError> {
    match claims.get("typ") {
        None => Ok(()),
        Some(Value::String(t)) if types.accepts_claim(t) => Ok(()),
        Some(Value::String(t)) => Err(VerifyError::ClassNotAccepted(printable(t))),
        Some(_) => Err(VerifyError::InvalidClaim("typ")),
    }
}

/// Validations for each allowed algorithm; none when no audience is accepted (then every
/// token is refused with a wrong audience).
fn validations(ic: &IssuerConfig, audiences: &[String]) -> HashMap<Algorithm, Validation> {
    if audiences.is_empty() {
        return HashMap::new();
    }
    ic.algorithms
        .iter()
        .map(|alg| (*alg, validation(ic, *alg, audiences)))
        .collect()
}

fn validation(ic: &IssuerConfig, alg: Algorithm, audiences: &[String]) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = ic.leeway.as_secs();
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = true;
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    v.set_issuer(&[&ic.issuer]);
    v.set_audience(audiences);
    v
}

fn map_error(e: jsonwebtoken::errors::Error) -> VerifyError {
    match e.kind() {
        ErrorKind::InvalidSignature => VerifyError::BadSignature,
        ErrorKind::ExpiredSignature => VerifyError::Expired,
        ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
        ErrorKind::InvalidIssuer => VerifyError::UntrustedIssuer,
        ErrorKind::InvalidAudience => VerifyError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) => VerifyError::InvalidClaim(match c.as_str() {
            "exp" => "exp",
            "iss" => "iss",
            "aud" => "aud",
            _ => "registered claim",
        }),
        ErrorKind::InvalidClaimFormat(c) => VerifyError::InvalidClaim(match c.as_str() {
            "exp" => "exp",
            "nbf" => "nbf",
            _ => "registered claim",
        }),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName => VerifyError::AlgorithmNotAllowed("mismatch".into()),
        ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_)
        | ErrorKind::InvalidToken => VerifyError::Malformed("does not decode"),
        _ => VerifyError::BadSignature,
    }
}

/// The cache key: SHA-256 over the profile and the token. The raw token is never a key.
fn cache_key(token: &str, profile: AudienceProfile) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([profile as u8]);
    h.update(token.as_bytes());
    h.finalize().into()
}

/// Keeps attacker-chosen strings (kid, alg) short and printable before they reach logs.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}
