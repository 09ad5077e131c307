//! Asking the policy: the input document built from the verified token and the route
//! (never from headers or bodies), and the answer turned into a grant or a refusal.

use super::{Refusal, RequestFacts};
use crate::jwt::VerifiedToken;
use crate::policy::{ActorInput, PolicyEngine, PolicyInput, UserInput, action_of, resource_of};

/// Where a request is going, as the policy is told.
pub(super) struct Target<'a> {
    /// Route name (`inbound` for inbound).
    pub route: &'a str,
    /// Who serves it: `app` or the credential backend.
    pub backend: &'static str,
}

/// Judges the request. `actors` is the chain the destination will see, newest first.
/// Returns the grant: never empty, and only when the policy allowed.
pub(super) async fn judge(
    engine: &PolicyEngine,
    req: &RequestFacts,
    target: &Target<'_>,
    token: &VerifiedToken,
    actors: Vec<ActorInput>,
) -> Result<Vec<String>, Refusal> {
    let path = req.path_only();
    let input = PolicyInput {
        direction: req.direction.as_str(),
        route: target.route.to_string(),
        destination: req.authority.clone(),
        method: req.method.clone(),
        path: path.to_string(),
        action: action_of(&req.method),
        resource: resource_of(path)?,
        backend: target.backend,
        user: UserInput::of(token),
        actors,
        scopes: token.scopes.clone(),
    };
    let decision = engine.decide(&input).await.map_err(|e| {
        tracing::error!(error = %e, route = target.route, "policy failed; refusing");
        Refusal::Policy(e)
    })?;
    if !decision.allow {
        return Err(Refusal::PolicyDenied(decision.reason.clone()));
    }
    if decision.approval_required {
        return Err(Refusal::ApprovalUnavailable);
    }
    if decision.grant.is_empty() {
        return Err(Refusal::GrantEmpty);
    }
    Ok(decision.grant.clone())
}

/// The verified `act` chain as policy input, newest actor first.
pub(super) fn chain_of(token: &VerifiedToken) -> Vec<ActorInput> {
    token.actors.iter().map(ActorInput::from).collect()
}
