//! The stores a security promise rests on, apart from the decision flow that consults
//! them: the single-use memory ([`replay`]), token custody ([`custody`]), the deny list
//! ([`revocations`]) and the requests held for a person ([`approvals`]).
//!
//! The decision core ([`crate::pipeline`]) reads and records through them; the admin API
//! ([`crate::admin`]) reaches the deny list and the approvals directly. Each store is in
//! this process's memory (the deny list also in its file); none of them knows of the
//! pipeline, Envoy or HTTP.

pub mod approvals;
pub mod custody;
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
        State {
            replay: Arc::new(match &cfg.redis {
                Some(redis) => SingleUse::Shared(Arc::new(redis::SharedRedis::new(redis))),
                None => {
                    SingleUse::Memory(ReplayGuard::new(cfg.replay_cache_entries, clock.clone()))
                }
            }),
            custody: cfg
                .inbound
                .custody_entries
                .map(|n| Arc::new(Custody::new(n, clock))),
            revocations,
            approvals: cfg
                .approvals
                .as_ref()
                .map(|a| Arc::new(Approvals::new(a.timeout, a.max_pending))),
        }
    }

    /// [`State::new`] with the deny list read from `cfg.revocation`'s file (none: empty,
    /// kept in memory only).
    pub fn load(cfg: &Config) -> Result<State, revocations::RevocationError> {
        let file = cfg.revocation.as_ref().map(|r| r.file.as_path());
        Ok(State::new(cfg, Arc::new(DenyList::load(file)?)))
    }
}
