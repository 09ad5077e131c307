//! Wall-clock seconds since the Unix epoch, the unit of JWT time claims: the system's
//! ([`now_secs`]), or, where a store's expiry is tested, a [`Clock`] that a test moves by
//! hand instead of sleeping; and RFC 3339 UTC times (`2026-11-25T10:15:00Z`) as peers
//! write them ([`rfc3339`], [`parse_rfc3339`]), through `humantime`.

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

/// Unix seconds as RFC 3339 UTC with whole seconds (`2026-11-25T10:15:00Z`); `None`
/// past the year 9999, which RFC 3339 cannot write.
pub fn rfc3339(secs: u64) -> Option<String> {
    use std::fmt::Write;
    let at = UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs))?;
    let mut out = String::new();
    // humantime's Display refuses (fmt::Error) a time past 9999: never a panic here.
    write!(out, "{}", humantime::format_rfc3339_seconds(at)).ok()?;
    Some(out)
}

/// An RFC 3339 UTC time (`2026-11-25T10:00:00Z`, fractions allowed) as a peer wrote it;
/// `None` for anything else (another offset, a year past 9999, garbage).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(s).ok()
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

#[cfg(test)]
mod rfc3339_tests {
    use super::*;

    #[test]
    fn times_are_written_and_read_as_rfc_3339_utc() {
        assert_eq!(
            rfc3339(1_764_000_000).as_deref(),
            Some("2025-11-24T16:00:00Z")
        );
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339(253_402_300_799).as_deref(),
            Some("9999-12-31T23:59:59Z")
        );
        // Out of range: none, never a panic.
        assert_eq!(rfc3339(253_402_300_800), None);
        assert_eq!(rfc3339(u64::MAX), None);
        let t = parse_rfc3339("2026-11-25T10:00:00Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_795_600_800
        );
        assert!(parse_rfc3339("2026-11-25T10:00:00.5Z").is_some());
        for bad in [
            "2026-11-25T10:00:00+01:00",
            "10000-01-01T00:00:00Z",
            "soon",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
