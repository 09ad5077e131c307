//! The access tokens revoked at `/revoke` (RFC 7009): each `jti` is kept until the token
//! would have expired anyway (at least 10 s, as Keycloak's `revokeAccessToken`), and a
//! token whose `jti` is kept here is invalid everywhere the service verifies tokens
//! (introspection, token exchange).
//!
//! Bounded: when full of live entries a new revocation is refused (the client is told to
//! retry) rather than an older one forgotten, which would make a revoked token valid again.

use std::collections::HashMap;
use std::sync::Mutex;

/// Revocations kept at most.
pub(crate) const MAX_REVOKED: usize = 100_000;
/// The shortest time a revocation is kept (Keycloak: `Math.max(exp - now + 1, 10)`).
const MIN_KEEP_SECS: u64 = 10;

/// The revoked `jti`s, each with the second it may be forgotten.
pub(crate) struct RevokedTokens {
    until: Mutex<HashMap<String, u64>>,
    capacity: usize,
}

/// The set is full of live revocations.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Full;

impl RevokedTokens {
    pub(crate) fn new(capacity: usize) -> Self {
        RevokedTokens {
            until: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Revokes `jti` of a token that expires at `exp`, as of `now`.
    pub(crate) fn revoke(&self, jti: &str, exp: u64, now: u64) -> Result<(), Full> {
        let keep_until = exp.saturating_add(1).max(now.saturating_add(MIN_KEEP_SECS));
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        if !until.contains_key(jti) && until.len() >= self.capacity {
            until.retain(|_, u| *u > now);
            if until.len() >= self.capacity {
                return Err(Full);
            }
        }
        let entry = until.entry(jti.to_string()).or_insert(0);
        *entry = (*entry).max(keep_until);
        Ok(())
    }

    /// Whether `jti` is revoked at `now`.
    pub(crate) fn is_revoked(&self, jti: &str, now: u64) -> bool {
        let until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        until.get(jti).is_some_and(|u| *u > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_until_exp_and_at_least_ten_seconds() {
        let r = RevokedTokens::new(10);
        r.revoke("a", 1_000, 500).unwrap();
        assert!(r.is_revoked("a", 1_000));
        assert!(!r.is_revoked("a", 1_001));
        assert!(!r.is_revoked("b", 500));
        // An already expired token is still kept for 10 s.
        r.revoke("old", 100, 500).unwrap();
        assert!(r.is_revoked("old", 509));
        assert!(!r.is_revoked("old", 510));
    }

    #[test]
    fn a_full_set_refuses_rather_than_forgets_a_live_revocation() {
        let r = RevokedTokens::new(1);
        r.revoke("a", 1_000, 500).unwrap();
        assert_eq!(r.revoke("b", 1_000, 500), Err(Full));
        assert!(r.is_revoked("a", 600));
        // Revoking the same token again needs no room.
        assert_eq!(r.revoke("a", 1_000, 500), Ok(()));
        // Once the live entry has lapsed there is room again.
        assert_eq!(r.revoke("b", 2_000, 1_001), Ok(()));
    }

    #[test]
    fn a_token_expiring_at_the_end_of_time_is_kept_without_overflow() {
        let r = RevokedTokens::new(10);
        r.revoke("forever", u64::MAX, 500).unwrap();
        assert!(r.is_revoked("forever", u64::MAX - 1));
        r.revoke("late clock", 0, u64::MAX).unwrap();
        assert!(!r.is_revoked("late clock", u64::MAX));
    }
}
