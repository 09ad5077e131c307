//! When the reaper runs next: every `reaper_interval`, and at the expiry of each role
//! this process minted, so a session held open is cut at its role's `VALID UNTIL`, not up
//! to `reaper_interval` later. Roles of an earlier run, and roles a woken pass could not
//! end, are the periodic pass's.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// At most this many expiries are remembered; beyond, a role waits for the periodic
/// pass (the catalogue would be in trouble long before).
const CAPACITY: usize = 100_000;

/// A role the pass did not see (the server's clock a little behind actbridge's) is
/// looked for again until this long after its expiry.
const GRACE: u64 = 10;

/// Passes are at least this far apart, so that a role the server does not yet see as
/// expired is not looked for in a busy loop.
pub(super) const MIN_GAP: Duration = Duration::from_millis(500);

/// The expiries (Unix seconds) of the roles this process minted and no pass has ended.
#[derive(Debug, Default)]
pub(super) struct Expiries {
    due: Mutex<BTreeSet<(u64, String)>>,
    /// Woken when an expiry earlier than every other is added.
    earlier: tokio::sync::Notify,
}

impl Expiries {
    fn due(&self) -> std::sync::MutexGuard<'_, BTreeSet<(u64, String)>> {
        self.due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers that `role` expires at `at`.
    pub(super) fn add(&self, at: u64, role: String) {
        let mut due = self.due();
        if due.len() >= CAPACITY {
            return;
        }
        let earliest = due.first().is_none_or(|(first, _)| at < *first);
        due.insert((at, role));
        if earliest {
            self.earlier.notify_one();
        }
    }

    /// The earliest expiry remembered, as Unix seconds.
    pub(super) fn first(&self) -> Option<u64> {
        self.due().first().map(|(at, _)| *at)
    }

    /// Resolves when an earlier expiry is added (a permit is kept if no one waits).
    pub(super) async fn earlier_added(&self) {
        self.earlier.notified().await;
    }

    /// After a pass that started at `now` (Unix seconds): forgets the roles it ended
    /// (dropped, or failed to drop: the periodic pass retries those) and those expired
    /// more than [`GRACE`] ago.
    pub(super) fn settle(&self, now: u64, ended: &[String]) {
        self.due()
            .retain(|(at, role)| at.saturating_add(GRACE) > now && !ended.contains(role));
    }
}

/// How long from now until Unix second `at` (zero if past).
pub(super) fn until(at: u64) -> Duration {
    (SystemTime::UNIX_EPOCH + Duration::from_secs(at))
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_earlier_expiry_wakes_the_reaper_and_a_later_one_does_not() {
        let e = Expiries::default();
        e.add(100, "a".into());
        tokio::time::timeout(Duration::from_millis(50), e.earlier_added())
            .await
            .expect("the first expiry wakes");
        e.add(200, "b".into());
        assert!(
            tokio::time::timeout(Duration::from_millis(50), e.earlier_added())
                .await
                .is_err(),
            "a later expiry does not"
        );
        e.add(50, "c".into());
        tokio::time::timeout(Duration::from_millis(50), e.earlier_added())
            .await
            .expect("an earlier one does");
        assert_eq!(e.first(), Some(50));
    }

    #[test]
    fn a_pass_forgets_what_it_ended_and_what_is_long_past() {
        let e = Expiries::default();
        for (at, r) in [(100, "ended"), (101, "unseen"), (80, "old"), (500, "later")] {
            e.add(at, r.into());
        }
        e.settle(102, &["ended".into()]);
        assert_eq!(e.first(), Some(101), "`unseen` is looked for again");
        e.settle(120, &[]);
        assert_eq!(
            e.first(),
            Some(500),
            "past the grace, the periodic pass has it"
        );
    }

    #[test]
    fn until_is_zero_for_the_past() {
        assert_eq!(until(0), Duration::ZERO);
        let next = crate::clock::now_secs() + 10;
        assert!((Duration::from_secs(8)..=Duration::from_secs(10)).contains(&until(next)));
    }
}
