//! A budget for a per-request log line: a flood of requests (a scanner, a hostile agent)
//! must not fill the disk through the log. At most `per_second` lines are written each
//! second; the rest are counted, and the next line written says how many were left out.
//! Metrics and the audit log still see every decision.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(super) struct LogBudget {
    per_second: u32,
    state: Mutex<Window>,
}

struct Window {
    started: Instant,
    written: u32,
    left_out: u64,
}

impl LogBudget {
    pub(super) fn new(per_second: u32) -> Self {
        LogBudget {
            per_second,
            state: Mutex::new(Window {
                started: Instant::now(),
                written: 0,
                left_out: 0,
            }),
        }
    }

    /// `Some(n)` when this line may be written (`n`: lines left out before it), `None`
    /// when it is over the budget (and counted).
    pub(super) fn admit(&self) -> Option<u64> {
        let mut w = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if w.started.elapsed() >= Duration::from_secs(1) {
            w.started = Instant::now();
            w.written = 0;
        }
        if w.written >= self.per_second {
            w.left_out = w.left_out.saturating_add(1);
            return None;
        }
        w.written += 1;
        Some(std::mem::take(&mut w.left_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_over_the_budget_are_counted_and_reported_by_the_next_one() {
        let b = LogBudget::new(3);
        assert_eq!(b.admit(), Some(0));
        assert_eq!(b.admit(), Some(0));
        assert_eq!(b.admit(), Some(0));
        for _ in 0..5 {
            assert_eq!(b.admit(), None);
        }
        b.state.lock().unwrap().started -= Duration::from_secs(2);
        assert_eq!(b.admit(), Some(5), "the next line says what was left out");
        assert_eq!(b.admit(), Some(0));
    }
}
