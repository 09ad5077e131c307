//! Wall-clock seconds since the Unix epoch, the unit of JWT time claims: the system's
//! ([`now_secs`]), or, where a store's expiry is tested, a [`Clock`] that a test moves by
//! hand instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The clock a store reads its expiries by: the system's, or a manual one (tests).
#[derive(Clone, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: seconds since the epoch, moved by hand.
    manual: Option<Arc<AtomicU64>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            None => f.write_str("Clock(system)"),
            Some(at) => write!(f, "Clock(manual at {})", at.load(Ordering::Relaxed)),
        }
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that reads `at` until [`Clock::advance`] moves it.
    pub fn manual(at: u64) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicU64::new(at))),
        }
    }

    /// Seconds since the Unix epoch.
    pub fn now_secs(&self) -> u64 {
        match &self.manual {
            None => now_secs(),
            Some(at) => at.load(Ordering::Relaxed),
        }
    }

    /// Moves a manual clock `secs` forward (every copy of it); the system clock cannot
    /// be moved, and is left as it is.
    pub fn advance(&self, secs: u64) {
        if let Some(at) = &self.manual {
            at.fetch_add(secs, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_every_copy_sees_it() {
        let clock = Clock::manual(1_000);
        let copy = clock.clone();
        assert_eq!(clock.now_secs(), 1_000);
        copy.advance(61);
        assert_eq!(clock.now_secs(), 1_061);
        let system = Clock::system();
        system.advance(1_000_000);
        assert!(
            system.now_secs().abs_diff(now_secs()) <= 1,
            "the system clock is not moved"
        );
    }
}
