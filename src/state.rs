//! The stores a security promise rests on, apart from the decision flow that consults
//! them: the single-use memory ([`replay`]), token custody ([`custody`]), the deny list
//! ([`revocations`]) and the requests held for a person ([`approvals`]).
//!
//! The decision core ([`crate::pipeline`]) reads and records through them; the admin API
//! ([`crate::admin`]) reaches the deny list and the approvals directly. Each store is in
//! this process's memory (the deny list also in its file), or with `state.redis` shared
//! by every replica through Redis ([`redis`], kept in step by [`fleet`]); none of them
//! knows of the pipeline, Envoy or HTTP.

pub mod approvals;
pub mod custody;
pub mod fleet;
pub mod rate_limits;
pub mod redis;
pub mod replay;
pub mod revocations;

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;

pub use approvals::Approvals;
pub use custody::Custody;
pub use replay::{ReplayGuard, SingleUse};
pub use revocations::DenyList;

/// Every store, shared by the decision core and the admin API.
#[derive(Clone)]
pub struct State {
    /// The `(iss, jti)` of single-use tokens already presented: in memory, or in the
    /// Redis the replicas share (`state.redis`).
    pub replay: Arc<SingleUse>,
    /// Placeholders handed to the app and the tokens they stand for
    /// (`inbound.custody`).
    pub custody: Option<Arc<Custody>>,
    /// The deny list, checked on every request after verification.
    pub revocations: Arc<DenyList>,
    /// Requests held for a person (`approvals`).
    pub approvals: Option<Arc<Approvals>>,
    /// Per-identity rate limits (`rate_limits`), their buckets in the shared Redis when
    /// there is one.
    pub rate_limits: Option<Arc<rate_limits::RateLimiter>>,
    /// The Redis the replicas share (`state.redis`), whose events [`fleet::follow`]
    /// follows.
    pub redis: Option<Arc<redis::SharedRedis>>,
}

impl State {
    /// Empty stores sized by `cfg`, with `revocations` as the deny list, reading the
    /// system clock.
    pub fn new(cfg: &Config, revocations: Arc<DenyList>) -> State {
        State::with_clock(cfg, revocations, Clock::system())
    }

    /// [`State::new`], the single-use memory and custody reading expiries by `clock` (a
    /// test moves a manual one instead of sleeping).
    pub fn with_clock(cfg: &Config, revocations: Arc<DenyList>, clock: Clock) -> State {
        let redis = cfg
            .redis
            .as_ref()
            .map(|r| Arc::new(redis::SharedRedis::new(r)));
        State::assemble(cfg, revocations, redis, clock)
    }

    /// The stores of `cfg`: the deny list read from `cfg.revocation`'s file (none:
    /// empty, kept in memory only) — with `state.redis`, the list the replicas share,
    /// the file this replica's copy of it.
    pub fn load(cfg: &Config) -> Result<State, revocations::RevocationError> {
        let file = cfg.revocation.as_ref().map(|r| r.file.as_path());
        let redis = cfg
            .redis
            .as_ref()
            .map(|r| Arc::new(redis::SharedRedis::new(r)));
        let list = match &redis {
            Some(redis) => DenyList::shared(file, redis.clone())?,
            None => DenyList::load(file)?,
        };
        Ok(State::assemble(cfg, Arc::new(list), redis, Clock::system()))
    }

    fn assemble(
        cfg: &Config,
        revocations: Arc<DenyList>,
        redis: Option<Arc<redis::SharedRedis>>,
        clock: Clock,
    ) -> State {
        State {
            replay: Arc::new(match &redis {
                Some(redis) => SingleUse::Shared(redis.clone()),
                None => {
                    SingleUse::Memory(ReplayGuard::new(cfg.replay_cache_entries, clock.clone()))
                }
            }),
            custody: cfg.inbound.custody_entries.map(|n| {
                Arc::new(match &redis {
                    Some(redis) => Custody::shared(n, clock, redis.clone()),
                    None => Custody::new(n, clock),
                })
            }),
            revocations,
            approvals: cfg.approvals.as_ref().map(|a| {
                Arc::new(match &redis {
                    Some(redis) => Approvals::shared(a.timeout, a.max_pending, redis.clone()),
                    None => Approvals::new(a.timeout, a.max_pending),
                })
            }),
            rate_limits: cfg
                .rate_limits
                .as_ref()
                .map(|r| Arc::new(rate_limits::RateLimiter::new(r, redis.clone()))),
            redis,
        }
    }
}
