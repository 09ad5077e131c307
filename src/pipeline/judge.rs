//! Asking the policy: the input document built from the verified token and the route
//! (never from headers or bodies), and the answer turned into a grant or a refusal.

use super::{Refusal, RequestFacts, span};
use crate::jwt::VerifiedToken;
use crate::policy::{ActorInput, PolicyEngine, PolicyInput, UserInput, action_of, resource_of};

/// Where a request is going, as the policy is told.
pub(super) struct Target<'a> {
    /// Route name (`inbound` for inbound).
    pub route: &'a str,
    /// Who serves it: `app`, `token_exchange` or the credential backend's kind.
    pub backend: &'static str,
    /// What the request touches (`action`, `resource`) when a credential backend read it
    /// from the request; otherwise both come from the method and the path.
    pub touches: Option<(&'static str, &'a [String])>,
}

/// What the policy granted.
pub(super) struct Granted {
    /// The grant: never empty.
    pub grant: Vec<String>,
    /// Resources inside the grant the request must still not reach.
    pub exclude: Vec<String>,
}

/// Judges the request. `actors` is the chain the destination will see, newest first.
/// Returns the grant (never empty) only when the policy allowed.
pub(super) async fn judge(
    engine: &PolicyEngine,
    req: &RequestFacts,
    target: &Target<'_>,
    token: &VerifiedToken,
    actors: Vec<ActorInput>,
) -> Result<Granted, Refusal> {
    let path = req.path_only();
    let (action, resource) = match target.touches {
        Some((action, resource)) => (action, resource.to_vec()),
        None => (action_of(&req.method), resource_of(path)?),
    };
    let input = PolicyInput {
        direction: req.direction.as_str(),
        route: target.route.to_string(),
        destination: req.authority.clone(),
        method: req.method.clone(),
        path: path.to_string(),
        action,
        resource,
        backend: target.backend,
        user: UserInput::of(token),
        actors,
        scopes: token.scopes.clone(),
    };
    let stage = span::policy(target.route);
    let decision = span::stage(stage.clone(), engine.decide(&input))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, route = target.route, "policy failed; refusing");
            Refusal::Policy(e)
        })?;
    stage.record("allow", decision.allow);
    if !decision.allow {
        return Err(Refusal::PolicyDenied(decision.reason.clone()));
    }
    // A wait for a person's approval goes here, in its own stage span
    // (`approval`, beside `policy`; see span.rs).
    if decision.approval_required {
        return Err(Refusal::ApprovalUnavailable);
    }
    if decision.grant.is_empty() {
        return Err(Refusal::GrantEmpty);
    }
    Ok(Granted {
        grant: decision.grant.clone(),
        exclude: decision.exclude.clone(),
    })
}

/// The verified `act` chain as policy input, newest actor first.
pub(super) fn chain_of(token: &VerifiedToken) -> Vec<ActorInput> {
    token.actors.iter().map(ActorInput::from).collect()
}
