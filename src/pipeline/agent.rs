//! This sidecar's own agent: whether an exchange names it as the newest actor, and the
//! chain the next hop will therefore see (which is the chain the policy judges).

use std::sync::Arc;

use super::Refusal;
use super::judge::chain_of;
use crate::config::{ACCESS_TOKEN_TYPE, ExchangeTarget, OutboundConfig};
use crate::exchange::Exchanger;
use crate::jwt::{Actor, VerifiedToken};
use crate::policy::ActorInput;

/// The agent this sidecar serves (its OAuth client) and its exchanger, shared by the
/// inbound delegation and the outbound exchange.
pub(super) struct OwnAgent {
    client_id: String,
    send_actor_token: bool,
    pub exchanger: Arc<Exchanger>,
    /// What an inbound delegation asks for: a token for this agent itself.
    pub delegation_target: ExchangeTarget,
}

impl OwnAgent {
    pub(super) fn new(cfg: &OutboundConfig) -> Self {
        OwnAgent {
            client_id: cfg.client.client_id.clone(),
            send_actor_token: cfg.send_actor_token,
            exchanger: Arc::new(Exchanger::new(cfg)),
            delegation_target: ExchangeTarget {
                audience: cfg.client.client_id.clone(),
                scopes: Vec::new(),
                requested_token_type: ACCESS_TOKEN_TYPE.to_string(),
            },
        }
    }

    /// The agent's client id (its SPIFFE ID).
    pub(super) fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Whether exchanging `t` adds this agent as the newest actor: the newest actor is
    /// not already this agent (a chain never names the same agent twice in a row), and
    /// the token service records it — always where it records the client that asks
    /// (`azp`), else only when actor tokens are sent. For a token without an actor there,
    /// `when_direct` decides: an inbound delegation names the agent, an outbound direct
    /// use does not (the destination then sees the user alone).
    pub(super) fn adds_itself(&self, t: &VerifiedToken, when_direct: bool) -> bool {
        let newest_is_other =
            |newest: &Actor| newest.client_id.as_deref() != Some(self.client_id());
        if !t.actors_nest {
            return t.actors.first().is_none_or(newest_is_other);
        }
        self.send_actor_token
            && match t.actors.first() {
                None => when_direct,
                Some(newest) => newest_is_other(newest),
            }
    }

    /// [`Self::adds_itself`] for a token about to be exchanged, refused when the token
    /// service records only the client that asks (`azp`) and `t` names another agent:
    /// the new token would name this agent alone, and the destination would never learn
    /// of the other. A chain of several agents needs a token service that nests `act`.
    pub(super) fn adds_itself_exchanging(
        &self,
        t: &VerifiedToken,
        when_direct: bool,
    ) -> Result<bool, Refusal> {
        if !t.actors_nest
            && let Some(other) = t
                .actors
                .iter()
                .filter_map(|a| a.client_id.as_deref().or(a.sub.as_deref()))
                .find(|id| *id != self.client_id())
        {
            return Err(Refusal::ChainNotRecordable(other.to_string()));
        }
        Ok(self.adds_itself(t, when_direct))
    }

    /// The chain the next hop will see, newest first: this agent (when added) before the
    /// verified chain.
    pub(super) fn next_chain(&self, t: &VerifiedToken, adds_itself: bool) -> Vec<ActorInput> {
        let mut chain = chain_of(t);
        if adds_itself {
            chain.insert(
                0,
                ActorInput::from(&Actor {
                    sub: None,
                    client_id: Some(self.client_id.clone()),
                }),
            );
        }
        chain
    }
}
