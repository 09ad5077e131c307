//! Single-use tokens: a `jti` presented once is refused for as long as the token could
//! still be accepted — by this process ([`ReplayGuard`], in memory), or by every replica
//! ([`SingleUse::Shared`], in the Redis of `state.redis`).
//!
//! The memory is written by hand rather than on moka: a cache may evict an entry under
//! pressure, and an evicted `jti` could be replayed. It never forgets a live entry; when
//! it is full of live entries it refuses new single-use tokens (fail closed) instead. In
//! Redis the first use is one atomic `SET key 1 NX EXAT <exp + 300>`: of two replicas
//! presented the same token at once, exactly one gets `OK`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::redis::{SharedRedis, SharedStateError};
use crate::clock::Clock;
use crate::jwt::VerifiedToken;

/// Entries are kept this long past `exp`: the largest leeway an issuer may configure, so a
/// token still accepted within its leeway is still remembered.
const KEEP_PAST_EXP_SECS: u64 = 300;

/// Why a single-use token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The token has no `jti`, so its use cannot be remembered.
    #[error("the single-use token has no jti")]
    NoTokenId,
    /// The token was presented before.
    #[error("the token was presented before")]
    Replayed,
    /// The memory is full of live entries: no further single-use token is accepted.
    #[error("the single-use memory is full of live entries")]
    MemoryFull,
    /// The shared memory (Redis) did not answer: the use cannot be recorded.
    #[error("{0}")]
    Unavailable(SharedStateError),
}

/// Where single-use tokens are remembered.
pub enum SingleUse {
    /// In this process.
    Memory(ReplayGuard),
    /// In the Redis every replica shares.
    Shared(Arc<SharedRedis>),
}

impl SingleUse {
    /// Records the token's first use; a second presentation, here or at any replica
    /// sharing the store, is refused.
    pub async fn first_use(&self, t: &VerifiedToken) -> Result<(), ReplayError> {
        match self {
            SingleUse::Memory(memory) => memory.first_use(t),
            SingleUse::Shared(redis) => {
                let key = redis.key(&format!("jti:{}", hex::encode(use_key(t)?)));
                let until = t.expires_at.saturating_add(KEEP_PAST_EXP_SECS);
                let set: Option<String> = redis
                    .query(
                        redis::cmd("SET")
                            .arg(&key)
                            .arg(1)
                            .arg("NX")
                            .arg("EXAT")
                            .arg(until),
                    )
                    .await
                    .map_err(ReplayError::Unavailable)?;
                match set {
                    Some(_) => Ok(()),
                    None => Err(ReplayError::Replayed),
                }
            }
        }
    }
}

/// The remembered form of a token's use: SHA-256 of its (length-prefixed) `iss` and its
/// `jti`.
fn use_key(t: &VerifiedToken) -> Result<[u8; 32], ReplayError> {
    let jti = t.token_id.as_deref().ok_or(ReplayError::NoTokenId)?;
    let mut h = Sha256::new();
    h.update((t.issuer.len() as u64).to_be_bytes());
    h.update(t.issuer.as_bytes());
    h.update(jti.as_bytes());
    Ok(h.finalize().into())
}

/// The remembered `(iss, jti)` pairs with the time each may be forgotten.
pub struct ReplayGuard {
    seen: Mutex<HashMap<[u8; 32], u64>>,
    capacity: usize,
    clock: Clock,
}

impl ReplayGuard {
    /// A memory of at most `capacity` live entries, whose expiry is read by `clock`.
    pub fn new(capacity: usize, clock: Clock) -> Self {
        ReplayGuard {
            seen: Mutex::new(HashMap::new()),
            capacity,
            clock,
        }
    }

    /// Records the token's first use; a second presentation is refused.
    pub fn first_use(&self, t: &VerifiedToken) -> Result<(), ReplayError> {
        let key = use_key(t)?;
        let now = self.clock.now_secs();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&until) = seen.get(&key)
            && until > now
        {
            return Err(ReplayError::Replayed);
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, until| *until > now);
            if seen.len() >= self.capacity {
                return Err(ReplayError::MemoryFull);
            }
        }
        // Saturating: `exp` is the peer's number. The verifier bounds it, but a wrapped
        // sum here would make the entry already forgotten and the `jti` replayable.
        seen.insert(key, t.expires_at.saturating_add(KEEP_PAST_EXP_SECS));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(jti: Option<&str>, exp: u64) -> VerifiedToken {
        VerifiedToken {
            issuer: "iss".into(),
            subject: None,
            username: None,
            audiences: Vec::new(),
            authorized_party: None,
            scopes: Vec::new(),
            groups: Vec::new(),
            roles: Vec::new(),
            expires_at: exp,
            issued_at: None,
            token_id: jti.map(str::to_owned),
            actors: Vec::new(),
            actors_nest: true,
            fingerprint: String::new(),
        }
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_second_presentation_is_a_replay() {
        let g = ReplayGuard::new(10, Clock::manual(NOW));
        let t = token(Some("a"), NOW + 30);
        assert_eq!(g.first_use(&t), Ok(()));
        assert_eq!(g.first_use(&t), Err(ReplayError::Replayed));
        assert_eq!(g.first_use(&token(Some("b"), NOW + 30)), Ok(()));
        assert_eq!(
            g.first_use(&token(None, NOW + 30)),
            Err(ReplayError::NoTokenId)
        );
    }

    #[test]
    fn a_token_expiring_at_the_end_of_time_is_remembered() {
        let g = ReplayGuard::new(10, Clock::manual(NOW));
        for (jti, exp) in [
            ("max", u64::MAX),
            ("near", u64::MAX - 10),
            ("edge", u64::MAX - KEEP_PAST_EXP_SECS),
        ] {
            let t = token(Some(jti), exp);
            assert_eq!(g.first_use(&t), Ok(()), "{jti}");
            assert_eq!(g.first_use(&t), Err(ReplayError::Replayed), "{jti}");
        }
    }

    #[test]
    fn a_token_is_remembered_past_its_exp_by_the_largest_leeway_then_forgotten() {
        let clock = Clock::manual(NOW);
        let g = ReplayGuard::new(10, clock.clone());
        let t = token(Some("a"), NOW + 30);
        g.first_use(&t).unwrap();
        clock.advance(30 + KEEP_PAST_EXP_SECS - 1);
        assert_eq!(
            g.first_use(&t),
            Err(ReplayError::Replayed),
            "still within leeway"
        );
        clock.advance(1);
        assert_eq!(
            g.first_use(&t),
            Ok(()),
            "forgotten once no verifier accepts it"
        );
    }

    #[test]
    fn a_full_memory_refuses_new_tokens_until_entries_expire() {
        let clock = Clock::manual(NOW);
        let g = ReplayGuard::new(2, clock.clone());
        g.first_use(&token(Some("a"), NOW + 30)).unwrap();
        g.first_use(&token(Some("b"), NOW + 30)).unwrap();
        assert_eq!(
            g.first_use(&token(Some("c"), NOW + 30)),
            Err(ReplayError::MemoryFull)
        );
        // Entries past expiry (and the leeway) are forgotten to make room.
        clock.advance(30 + KEEP_PAST_EXP_SECS);
        assert_eq!(g.first_use(&token(Some("c"), NOW + 600)), Ok(()));
    }
}
