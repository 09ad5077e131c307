//! Token custody: the app behind the inbound listener holds an opaque, random placeholder
//! instead of the user's token; the real token never leaves actbridge, and the agent's
//! outbound requests present the placeholder, which is resolved back here.
//!
//! A placeholder is bound to one token for that token's life. It resolves only on this
//! sidecar's outbound exchange routes; presented inbound, forwarded by a passthrough route,
//! unknown here or past the token's `exp`, it is refused.
//!
//! With `state.redis` every entry is also kept, sealed, in the Redis the pod's actbridge
//! processes share ([`shared`]): a placeholder handed out by one resolves at another.
//! Redis not answering refuses the request (503 `custody_unavailable`): a placeholder
//! that cannot be shared is not handed out, and one not known here is not called
//! unknown while Redis cannot say.

mod shared;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::jwt::VerifiedToken;
use crate::state::redis::{SharedRedis, SharedStateError};
use shared::SharedCustody;

/// Every placeholder starts with this, so it can be told from a JWT at a glance (a JWT
/// never contains `~`; the rest is base64url of 32 random bytes).
const PREFIX: &str = "actbridge~";

/// A real token in custody and the placeholder that stands for it.
struct Held {
    token: String,
    placeholder: String,
    expires_at: u64,
    /// The caller's verified token the held one came from (itself, or the token it was
    /// exchanged from): a revocation of the caller's token, user or agents reaches the
    /// placeholder too.
    origin: Arc<VerifiedToken>,
}

/// A placeholder resolved: the token it stands for, and the caller's token it came from.
pub struct Resolved {
    pub token: String,
    pub origin: Arc<VerifiedToken>,
}

/// A placeholder this sidecar did not hand out, or whose token has expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the placeholder is unknown or expired")]
pub struct PlaceholderUnknown;

/// Why custody could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustodyError {
    /// The placeholder is unknown or expired.
    #[error("{0}")]
    Unknown(#[from] PlaceholderUnknown),
    /// The shared custody (Redis) did not answer.
    #[error("{0}")]
    Unavailable(SharedStateError),
}

/// Entries are evicted when the token they hold expires (by `clock`); a lookup checks
/// the expiry itself too, so a clock moved by hand is obeyed at once.
struct UntilExp {
    clock: Clock,
}

impl<K> moka::Expiry<K, Arc<Held>> for UntilExp {
    fn expire_after_create(&self, _: &K, v: &Arc<Held>, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs(
            v.expires_at.saturating_sub(self.clock.now_secs()),
        ))
    }
}

/// The placeholders handed out and the tokens they stand for. Keys are SHA-256 digests;
/// neither map is keyed by a raw token or placeholder.
pub struct Custody {
    clock: Clock,
    by_placeholder: moka::sync::Cache<[u8; 32], Arc<Held>>,
    /// The same entries by token, so a repeated token gets the same placeholder.
    by_token: moka::sync::Cache<[u8; 32], Arc<Held>>,
    /// The Redis the pod's actbridge processes share, when `state.redis` is set.
    shared: Option<Arc<SharedRedis>>,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl Custody {
    /// A custody holding at most `capacity` tokens. When full, the least useful entries
    /// are evicted: their placeholders stop resolving (refused, never let through).
    /// Expiry is read by `clock`.
    pub fn new(capacity: u64, clock: Clock) -> Self {
        let cache = || {
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExp {
                    clock: clock.clone(),
                })
                .build()
        };
        Custody {
            by_placeholder: cache(),
            by_token: cache(),
            clock,
            shared: None,
        }
    }

    /// [`Custody::new`], every entry also sealed in `redis` for the other processes.
    pub fn shared(capacity: u64, clock: Clock, redis: Arc<SharedRedis>) -> Self {
        Custody {
            shared: Some(redis),
            ..Custody::new(capacity, clock)
        }
    }

    /// Whether `presented` is a placeholder (of this or any other actbridge).
    pub fn is_placeholder(presented: &str) -> bool {
        presented.starts_with(PREFIX)
    }

    /// Whether a raw header value carries a placeholder anywhere.
    pub fn appears_in(value: &[u8]) -> bool {
        value.windows(PREFIX.len()).any(|w| w == PREFIX.as_bytes())
    }

    /// The placeholder for `token`, which expires at `expires_at` and was derived from
    /// the caller's verified `origin` (shared: sealed in Redis before it is handed out).
    pub async fn placeholder_for(
        &self,
        token: &str,
        expires_at: u64,
        origin: &Arc<VerifiedToken>,
    ) -> Result<String, CustodyError> {
        let token_key = digest(token);
        // Reused only while it still resolves (the other map may have evicted it).
        if let Some(held) = self.by_token.get(&token_key)
            && held.expires_at > self.clock.now_secs()
            && self.by_placeholder.contains_key(&digest(&held.placeholder))
        {
            return Ok(held.placeholder.clone());
        }
        let held = Arc::new(Held {
            token: token.to_string(),
            placeholder: format!(
                "{PREFIX}{}",
                URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
            ),
            expires_at,
            origin: origin.clone(),
        });
        if let Some(redis) = &self.shared {
            SharedCustody(redis)
                .put(&held.placeholder, token, origin, expires_at)
                .await
                .map_err(CustodyError::Unavailable)?;
        }
        self.by_placeholder
            .insert(digest(&held.placeholder), held.clone());
        self.by_token.insert(token_key, held.clone());
        Ok(held.placeholder.clone())
    }

    /// The real token behind a placeholder, and its origin — here, or shared, at the
    /// process that handed it out; unknown or expired → refused.
    pub async fn resolve(&self, placeholder: &str) -> Result<Resolved, CustodyError> {
        let now = self.clock.now_secs();
        if let Some(held) = self.by_placeholder.get(&digest(placeholder)) {
            return match held.expires_at > now {
                true => Ok(Resolved {
                    token: held.token.clone(),
                    origin: held.origin.clone(),
                }),
                false => Err(PlaceholderUnknown.into()),
            };
        }
        let Some(redis) = &self.shared else {
            return Err(PlaceholderUnknown.into());
        };
        match SharedCustody(redis)
            .get(placeholder)
            .await
            .map_err(CustodyError::Unavailable)?
        {
            // Redis drops the entry at the token's `exp`; checked here too, by our clock.
            Some((token, expires_at, origin)) if expires_at > now => Ok(Resolved { token, origin }),
            _ => Err(PlaceholderUnknown.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::now_secs;

    fn origin() -> Arc<VerifiedToken> {
        Arc::new(VerifiedToken {
            issuer: "i".into(),
            subject: Some("alice-id".into()),
            username: Some("alice".into()),
            audiences: vec![],
            authorized_party: None,
            scopes: vec![],
            groups: vec![],
            roles: vec![],
            expires_at: now_secs() + 60,
            issued_at: None,
            token_id: Some("jti-1".into()),
            actors: vec![],
            actors_nest: true,
            fingerprint: "fp".into(),
        })
    }

    #[tokio::test]
    async fn a_placeholder_resolves_to_its_token_until_exp_and_is_reused() {
        let c = Custody::new(100, Clock::system());
        let exp = now_secs() + 60;
        let p = c
            .placeholder_for("real.jwt.token", exp, &origin())
            .await
            .unwrap();
        assert!(Custody::is_placeholder(&p));
        assert!(!p.contains("real"));
        assert!(p.len() > PREFIX.len() + 40, "32 random bytes");
        let resolved = c.resolve(&p).await.ok().unwrap();
        assert_eq!(resolved.token, "real.jwt.token");
        assert_eq!(resolved.origin.token_id.as_deref(), Some("jti-1"));
        assert_eq!(
            c.placeholder_for("real.jwt.token", exp, &origin())
                .await
                .unwrap(),
            p,
            "reused"
        );
        let other = c
            .placeholder_for("another.jwt.token", exp, &origin())
            .await
            .unwrap();
        assert_ne!(other, p);
        assert_eq!(
            c.resolve(&other).await.ok().unwrap().token,
            "another.jwt.token"
        );
    }

    #[tokio::test]
    async fn a_placeholder_stops_resolving_when_its_token_expires_and_is_not_reused() {
        let clock = Clock::manual(1_800_000_000);
        let c = Custody::new(100, clock.clone());
        let exp = clock.now_secs() + 3;
        let p = c
            .placeholder_for("short.jwt.token", exp, &origin())
            .await
            .unwrap();
        assert!(c.resolve(&p).await.is_ok());
        clock.advance(2);
        assert!(c.resolve(&p).await.is_ok(), "still inside the token's life");
        clock.advance(1);
        assert!(
            matches!(c.resolve(&p).await, Err(CustodyError::Unknown(_))),
            "dies at exp"
        );
        let renewed = c
            .placeholder_for("short.jwt.token", clock.now_secs() + 60, &origin())
            .await
            .unwrap();
        assert_ne!(renewed, p, "a dead placeholder is not handed out again");
        assert!(c.resolve(&renewed).await.is_ok());
    }

    #[tokio::test]
    async fn unknown_and_expired_placeholders_are_refused() {
        let c = Custody::new(100, Clock::system());
        assert!(matches!(
            c.resolve("actbridge~not-one-of-ours").await,
            Err(CustodyError::Unknown(_))
        ));
        let expired = c
            .placeholder_for("old.jwt.token", now_secs() - 1, &origin())
            .await
            .unwrap();
        assert!(matches!(
            c.resolve(&expired).await,
            Err(CustodyError::Unknown(_))
        ));
        assert!(!Custody::is_placeholder("eyJhbGciOi.x.y"));
        assert!(Custody::appears_in(b"Bearer actbridge~abc"));
        assert!(Custody::appears_in(b"Basic x, Bearer actbridge~abc"));
        assert!(!Custody::appears_in(b"Bearer eyJ.x.y"));
    }
}
