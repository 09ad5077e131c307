//! Per-identity rate limits (`rate_limits`): for each limit that applies to a request,
//! one bucket per value of its parts (user, agent, route, tool), kept by GCRA — a
//! bucket is one "theoretical arrival time" (TAT): a request is let through when the TAT
//! is at most `interval × (burst − 1)` ahead of now, and moves it one `interval` on.
//! Every bucket a request touches is checked first and moved only when all let it
//! through, so a refused request uses up nothing.
//!
//! With `state.redis` the buckets are in Redis, all of a request's in one script (one
//! round trip, atomic, timed by Redis' own clock so replicas with drifting clocks agree);
//! else they are this process's, at most [`MAX_LOCAL_BUCKETS`] at a time (a bucket whose
//! TAT has passed is the same as none, so only those are dropped to make room). When
//! the buckets cannot be read, `rate_limits.on_unavailable` decides.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::redis::{SharedRedis, SharedStateError};
use crate::config::{Dimension, LimitConfig, OnUnavailable, RateLimitsConfig};

/// The most buckets this process keeps without Redis.
pub const MAX_LOCAL_BUCKETS: usize = 100_000;

/// Checks every bucket (KEYS, with ARGV the pairs interval, tolerance in µs) and moves
/// them all, or none: `{0, 0}` let through, else `{i, wait µs}` for the limit that is
/// furthest over.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
local worst, wait = 0, 0
for i, key in ipairs(KEYS) do
  local tau = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  tats[i] = tat
  local over = tat - now - tau
  if over > wait then worst, wait = i, over end
end
if worst > 0 then return {worst, math.ceil(wait)} end
for i, key in ipairs(KEYS) do
  local next = tats[i] + tonumber(ARGV[2 * i - 1])
  redis.call('SET', key, string.format('%.0f', next), 'PX', math.ceil((next - now) / 1000) + 1000)
end
return {0, 0}
";

/// Who is calling, as the limits see it.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The route (`inbound` for inbound).
    pub route: &'a str,
    /// The user: `preferred_username`, else `sub`.
    pub user: Option<&'a str>,
    /// The agent acting: the newest of the chain the destination sees.
    pub agent: Option<&'a str>,
    /// The MCP tool of a `tools/call`.
    pub tool: Option<&'a str>,
}

impl Caller<'_> {
    fn part(&self, d: Dimension) -> Option<&str> {
        match d {
            Dimension::User => self.user,
            Dimension::Agent => self.agent,
            Dimension::Route => Some(self.route),
            Dimension::Tool => self.tool,
        }
    }
}

/// Why a request is not let through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimited {
    /// A limit is used up.
    #[error("rate limit `{limit}` exceeded")]
    Exceeded {
        /// The limit's name.
        limit: String,
        /// When the request would be let through.
        retry_after: Duration,
    },
    /// The buckets could not be read, and `on_unavailable` is `refuse`.
    #[error("the rate limits cannot be checked: {0}")]
    Unavailable(SharedStateError),
}

/// The limits and their buckets.
pub struct RateLimiter {
    limits: Vec<LimitConfig>,
    on_unavailable: OnUnavailable,
    buckets: Buckets,
    /// Refusals per limit, in the order of `limits`.
    refused: Vec<AtomicU64>,
    /// Requests let through unchecked (`on_unavailable: allow`).
    unchecked: AtomicU64,
    /// When an unchecked request was last logged (so an outage logs once a minute).
    last_warned: Mutex<Option<Instant>>,
}

enum Buckets {
    /// This process's: the TAT of each bucket.
    Local(Mutex<HashMap<[u8; 16], Instant>>),
    /// The Redis every replica shares.
    Shared(Arc<SharedRedis>),
}

impl RateLimiter {
    /// The limits of `cfg`, their buckets in `redis` when given.
    pub fn new(cfg: &RateLimitsConfig, redis: Option<Arc<SharedRedis>>) -> RateLimiter {
        RateLimiter {
            refused: cfg.limits.iter().map(|_| AtomicU64::new(0)).collect(),
            limits: cfg.limits.clone(),
            on_unavailable: cfg.on_unavailable,
            buckets: match redis {
                Some(r) => Buckets::Shared(r),
                None => Buckets::Local(Mutex::new(HashMap::new())),
            },
            unchecked: AtomicU64::new(0),
            last_warned: Mutex::new(None),
        }
    }

    /// Lets `who` through, or says which limit it is over and for how long.
    pub async fn check(&self, who: &Caller<'_>) -> Result<(), RateLimited> {
        let applying: Vec<(usize, [u8; 16])> = self
            .limits
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                l.routes
                    .as_ref()
                    .is_none_or(|r| r.iter().any(|r| r == who.route))
            })
            .filter_map(|(i, l)| bucket_of(l, who).map(|b| (i, b)))
            .collect();
        if applying.is_empty() {
            return Ok(());
        }
        let outcome = match &self.buckets {
            Buckets::Local(table) => self.take_local(table, &applying),
            Buckets::Shared(redis) => self.take_shared(redis, &applying).await,
        };
        match outcome {
            Ok(None) => Ok(()),
            Ok(Some((i, retry_after))) => {
                self.refused[i].fetch_add(1, Ordering::Relaxed);
                Err(RateLimited::Exceeded {
                    limit: self.limits[i].name.clone(),
                    retry_after,
                })
            }
            Err(e) if self.on_unavailable == OnUnavailable::Allow => {
                self.unchecked.fetch_add(1, Ordering::Relaxed);
                self.warn_unchecked(&e);
                Ok(())
            }
            Err(e) => Err(RateLimited::Unavailable(e)),
        }
    }

    /// (limit name, requests refused by it) for each limit, and the requests let through
    /// unchecked.
    pub fn counts(&self) -> (Vec<(String, u64)>, u64) {
        let per_limit = self
            .limits
            .iter()
            .zip(&self.refused)
            .map(|(l, n)| (l.name.clone(), n.load(Ordering::Relaxed)))
            .collect();
        (per_limit, self.unchecked.load(Ordering::Relaxed))
    }

    fn take_local(
        &self,
        table: &Mutex<HashMap<[u8; 16], Instant>>,
        applying: &[(usize, [u8; 16])],
    ) -> Result<Option<(usize, Duration)>, SharedStateError> {
        let now = Instant::now();
        let mut table = table.lock().unwrap_or_else(|p| p.into_inner());
        let mut worst: Option<(usize, Duration)> = None;
        let mut tats = Vec::with_capacity(applying.len());
        for (i, bucket) in applying {
            let l = &self.limits[*i];
            let tat = table.get(bucket).copied().unwrap_or(now).max(now);
            let over = (tat - now).saturating_sub(tolerance(l));
            if !over.is_zero() && worst.is_none_or(|(_, w)| over > w) {
                worst = Some((*i, over));
            }
            tats.push(tat);
        }
        if worst.is_some() {
            return Ok(worst);
        }
        let new = applying
            .iter()
            .filter(|(_, b)| !table.contains_key(b))
            .count();
        if table.len() + new > MAX_LOCAL_BUCKETS {
            table.retain(|_, tat| *tat > now);
            if table.len() + new > MAX_LOCAL_BUCKETS {
                return Err(SharedStateError::Unavailable(format!(
                    "{MAX_LOCAL_BUCKETS} rate-limit buckets are in use"
                )));
            }
        }
        for ((i, bucket), tat) in applying.iter().zip(tats) {
            table.insert(*bucket, tat + self.limits[*i].interval);
        }
        Ok(None)
    }

    async fn take_shared(
        &self,
        redis: &SharedRedis,
        applying: &[(usize, [u8; 16])],
    ) -> Result<Option<(usize, Duration)>, SharedStateError> {
        let script = redis::Script::new(GCRA);
        let mut call = script.prepare_invoke();
        for (i, bucket) in applying {
            let l = &self.limits[*i];
            call.key(redis.key(&format!("rate:{}:{}", l.name, hex::encode(bucket))))
                .arg(micros(l.interval))
                .arg(micros(tolerance(l)));
        }
        let (which, wait_us): (usize, u64) = redis.run_script(&call).await?;
        Ok(which
            .checked_sub(1)
            .and_then(|k| applying.get(k))
            .map(|(i, _)| (*i, Duration::from_micros(wait_us))))
    }

    fn warn_unchecked(&self, e: &SharedStateError) {
        let mut last = self.last_warned.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            *last = Some(Instant::now());
            tracing::warn!(error = %e, "rate limits cannot be checked: letting requests through unchecked (rate_limits.on_unavailable: allow)");
        }
    }
}

/// How far ahead of now a bucket's TAT may be: `interval × (burst − 1)`.
fn tolerance(l: &LimitConfig) -> Duration {
    l.interval.saturating_mul(l.burst.saturating_sub(1))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The bucket of `who` under `l` (SHA-256 of the limit's name and each part, length-
/// prefixed, cut to 128 bits), or `None` when a part is missing.
fn bucket_of(l: &LimitConfig, who: &Caller<'_>) -> Option<[u8; 16]> {
    let mut h = Sha256::new();
    for part in std::iter::once(Some(l.name.as_str())).chain(l.per.iter().map(|d| who.part(*d))) {
        let part = part?;
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut bucket = [0u8; 16];
    bucket.copy_from_slice(&digest[..16]);
    Some(bucket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per: Vec<Dimension>, interval_ms: u64, burst: u32) -> RateLimiter {
        RateLimiter::new(
            &RateLimitsConfig {
                on_unavailable: OnUnavailable::Refuse,
                limits: vec![LimitConfig {
                    name: "l".into(),
                    per,
                    interval: Duration::from_millis(interval_ms),
                    burst,
                    routes: Some(vec!["r".into()]),
                }],
            },
            None,
        )
    }

    fn caller<'a>(user: &'a str, tool: Option<&'a str>) -> Caller<'a> {
        Caller {
            route: "r",
            user: Some(user),
            agent: None,
            tool,
        }
    }

    #[tokio::test]
    async fn a_burst_then_the_rate_each_bucket_its_own() {
        let l = limiter(vec![Dimension::User], 200, 3);
        for _ in 0..3 {
            assert_eq!(l.check(&caller("alice", None)).await, Ok(()));
        }
        match l.check(&caller("alice", None)).await {
            Err(RateLimited::Exceeded { limit, retry_after }) => {
                assert_eq!(limit, "l");
                assert!(
                    retry_after > Duration::from_millis(100)
                        && retry_after <= Duration::from_millis(200),
                    "{retry_after:?}"
                );
            }
            other => panic!("the fourth at once: {other:?}"),
        }
        assert_eq!(
            l.check(&caller("bob", None)).await,
            Ok(()),
            "bob has his own bucket"
        );
        tokio::time::sleep(Duration::from_millis(210)).await;
        assert_eq!(
            l.check(&caller("alice", None)).await,
            Ok(()),
            "one interval later"
        );
        assert_eq!(l.counts().0, vec![("l".to_string(), 1)]);
    }

    #[tokio::test]
    async fn a_limit_counts_only_requests_that_have_its_parts_on_its_routes() {
        let l = limiter(vec![Dimension::Tool], 60_000, 1);
        assert_eq!(l.check(&caller("alice", None)).await, Ok(()));
        assert_eq!(
            l.check(&caller("alice", None)).await,
            Ok(()),
            "no tool: not counted"
        );
        assert_eq!(l.check(&caller("alice", Some("search"))).await, Ok(()));
        assert!(
            l.check(&caller("bob", Some("search"))).await.is_err(),
            "per tool, whoever calls"
        );
        let elsewhere = Caller {
            route: "other",
            ..caller("bob", Some("search"))
        };
        assert_eq!(l.check(&elsewhere).await, Ok(()), "another route");
    }
}
