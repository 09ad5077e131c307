//! Keeping this replica in step with the others through the shared Redis: one task
//! subscribed to the events channel reads the deny list again when a change is
//! announced (`revocations`) and wakes the holder of a request another replica decided
//! (`approval:<id>`). Pub/sub delivers at most once, so the deny list is also read
//! every `state.redis.sync_interval`, and at each (re)subscription.
//!
//! How stale the deny list can be: a change is enforced by every replica within a
//! round trip of its announcement (well under a second) while the events connection
//! is up; within `sync_interval` if an announcement is lost; and while Redis does not
//! answer, the last list synced is enforced, its age growing in
//! `actbridge_revocations_sync_age_seconds` (a warning is logged when syncing starts to
//! fail, and when it works again).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::approvals::{Approvals, DECIDED};
use super::redis::SharedRedis;
use super::revocations::{CHANGED, DenyList};

/// Pause between two attempts to (re)subscribe.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// Follows the other replicas until `shutdown`. `forget_cached` is called whenever the
/// deny list changed, as the admin API does for a change made here: nothing verified,
/// exchanged or minted before a revocation is served from a cache after it.
pub async fn follow(
    redis: Arc<SharedRedis>,
    revocations: Arc<DenyList>,
    approvals: Option<Arc<Approvals>>,
    sync_interval: Duration,
    forget_cached: impl Fn() + Send,
    shutdown: CancellationToken,
) {
    let mut sync = Sync {
        list: &revocations,
        failing: false,
        forget_cached: &forget_cached,
    };
    loop {
        match redis.subscribe().await {
            Ok(mut events) => {
                // Subscribed first, then read: no change announced in between is missed.
                sync.now().await;
                let mut every = tokio::time::interval(sync_interval);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                every.tick().await;
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        event = events.next() => {
                            let Some(event) = event else {
                                tracing::warn!("the shared state's events connection was lost: reconnecting");
                                break;
                            };
                            let event: String = event.get_payload().unwrap_or_default();
                            if event == CHANGED {
                                sync.now().await;
                            } else if let (Some(id), Some(a)) = (event.strip_prefix(DECIDED), &approvals) {
                                a.decided_elsewhere(id);
                            }
                        }
                        _ = every.tick() => sync.now().await,
                    }
                }
            }
            Err(e) => sync.failed(&e.to_string()),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RESUBSCRIBE_AFTER) => {}
        }
    }
}

/// Reads the deny list again, logging when that starts and stops failing.
struct Sync<'a, F> {
    list: &'a DenyList,
    failing: bool,
    forget_cached: &'a F,
}

impl<F: Fn()> Sync<'_, F> {
    async fn now(&mut self) {
        match self.list.sync().await {
            Ok(changed) => {
                if changed {
                    (self.forget_cached)();
                }
                if self.failing {
                    self.failing = false;
                    tracing::info!("the shared deny list is synced again");
                }
            }
            Err(e) => self.failed(&e.to_string()),
        }
    }

    fn failed(&mut self, why: &str) {
        if !self.failing {
            self.failing = true;
            let age = self.list.staleness().unwrap_or_default();
            tracing::warn!(
                error = why,
                synced_secs_ago = age.as_secs(),
                "the shared deny list cannot be synced: enforcing the last list synced"
            );
        }
    }
}
