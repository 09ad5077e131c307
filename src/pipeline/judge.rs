//! Asking the policy: the input document built from the verified token and the route
//! (never from headers or bodies), and the answer turned into a grant or a refusal.

use super::approval::{Approvals, Hold, PendingApproval};
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

/// What judging needs besides the request: the policy (when configured), the human
/// approvals (when configured) and the protocol layer's hook for holding a request.
pub(super) struct Judging<'a> {
    pub engine: Option<&'a PolicyEngine>,
    pub approvals: Option<&'a Approvals>,
    pub hold: &'a dyn Hold,
}

/// Judges the request. `actors` is the chain the destination will see, newest first.
/// Returns the grant (never empty) only when the policy allowed — and, when it asked
/// for one, a person approved.
pub(super) async fn judge(
    judging: &Judging<'_>,
    engine: &PolicyEngine,
    req: &RequestFacts,
    target: &Target<'_>,
    token: &VerifiedToken,
    actors: Vec<ActorInput>,
) -> Result<Granted, Refusal> {
    let path = req.path_only();
    let chain: Vec<String> = actors
        .iter()
        .map(|a| {
            a.client_id
                .clone()
                .or_else(|| a.sub.clone())
                .unwrap_or_default()
        })
        .collect();
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
    if decision.grant.is_empty() {
        return Err(Refusal::GrantEmpty);
    }
    if decision.approval_required {
        let approvals = judging.approvals.ok_or(Refusal::ApprovalUnavailable)?;
        let asking = PendingApproval {
            id: String::new(),
            user: token
                .username
                .clone()
                .or_else(|| token.subject.clone())
                .unwrap_or_default(),
            actors: chain,
            direction: req.direction.as_str().to_string(),
            route: target.route.to_string(),
            method: req.method.clone(),
            authority: req.authority.clone(),
            path: path.to_string(),
            reason: decision.reason.clone(),
            asked_at: 0,
            expires_at: 0,
        };
        let by = span::stage(
            span::approval(target.route),
            approvals.ask(asking, judging.hold),
        )
        .await?;
        tracing::info!(approved_by = %by, route = target.route, "approved by a person");
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
