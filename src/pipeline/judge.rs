//! Asking the policy: the input document built from the verified token and the route
//! (never from headers or bodies), and the answer turned into a grant or a refusal.

use super::{Refusal, RequestFacts, span};
use crate::jwt::VerifiedToken;
use crate::policy::{
    A2aInput, ActorInput, McpInput, PolicyEngine, PolicyInput, UserInput, action_of, segments_of,
};
use crate::state::approvals::{Approvals, Hold, PendingApproval};
use crate::state::rate_limits::RateLimiter;

/// Where a request is going, as the policy is told.
pub(super) struct Target<'a> {
    /// Route name (`inbound` for inbound).
    pub route: &'a str,
    /// Who serves it: `app`, `token_exchange` or the credential backend's kind.
    pub backend: &'static str,
    /// What the request touches (`action`, `resource`) when a credential backend read it
    /// from the request; otherwise both come from the method and the path.
    pub touches: Option<(&'static str, &'a [String])>,
    /// On an `mcp` or `a2a` route, the JSON-RPC message judged.
    pub rpc: Option<&'a RpcInput>,
}

/// The JSON-RPC message of an agent-protocol route, as the policy is told.
#[derive(Debug, Clone)]
pub(super) enum RpcInput {
    Mcp(McpInput),
    A2a(A2aInput),
}

impl RpcInput {
    /// The call in a few words, for approvals, logs and the audit record:
    /// `tools/call read_document`, `message/send`, `response` (a client's answer to a
    /// server's request).
    pub(super) fn what(&self) -> String {
        let (method, tool) = match self {
            RpcInput::Mcp(m) => (m.method.as_deref(), m.tool.as_deref()),
            RpcInput::A2a(a) => (a.method.as_deref(), None),
        };
        match (method, tool) {
            (Some(m), Some(t)) => format!("{m} {t}"),
            (Some(m), None) => m.to_string(),
            (None, _) => "response".to_string(),
        }
    }
}

/// What the policy granted.
pub(super) struct Granted {
    /// The grant: never empty.
    pub grant: Vec<String>,
    /// Resources inside the grant the request must still not reach.
    pub exclude: Vec<String>,
    /// The policy asks for a single-use token for this call (MCP `tools/call`).
    pub single_use_token: bool,
}

/// What judging needs besides the request: the policy, the human approvals and the
/// rate limits (each when configured), and the protocol layer's hook for holding a
/// request.
pub(super) struct Judging<'a> {
    pub engine: Option<&'a std::sync::Arc<PolicyEngine>>,
    pub approvals: Option<&'a Approvals>,
    pub limits: Option<&'a RateLimiter>,
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
    crate::fault::point("policy");
    let path = req.path_only();
    let chain: Vec<String> = actors.iter().map(ActorInput::id).collect();
    let decision = ask(engine, req, target, token, actors).await?;
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
            query: PendingApproval::shown_query(&req.path),
            call: target.rpc.map(RpcInput::what),
            arguments: match target.rpc {
                Some(RpcInput::Mcp(m)) => {
                    m.arguments.as_ref().map(PendingApproval::shown_arguments)
                }
                _ => None,
            },
            digest: String::new(),
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
        single_use_token: decision.single_use_token,
    })
}

/// Asks the policy about the request, without acting on the answer (no approval is
/// sought): a failing policy is a refusal.
pub(super) async fn ask(
    engine: &PolicyEngine,
    req: &RequestFacts,
    target: &Target<'_>,
    token: &VerifiedToken,
    actors: Vec<ActorInput>,
) -> Result<std::sync::Arc<crate::policy::PolicyDecision>, Refusal> {
    let path = req.path_only();
    let (action, resource) = match target.touches {
        Some((action, resource)) => (action, resource.to_vec()),
        None => (action_of(&req.method), segments_of(req.canonical_path())),
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
        mcp: match target.rpc {
            Some(RpcInput::Mcp(m)) => Some(m.clone()),
            _ => None,
        },
        a2a: match target.rpc {
            Some(RpcInput::A2a(a)) => Some(a.clone()),
            _ => None,
        },
    };
    let policy_span = span::policy(target.route);
    let decision = span::stage(policy_span.clone(), engine.decide(&input))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, route = target.route, "policy failed; refusing");
            Refusal::Policy(e)
        })?;
    policy_span.record("allow", decision.allow);
    Ok(decision)
}

/// The verified `act` chain as policy input, newest actor first.
pub(super) fn chain_of(token: &VerifiedToken) -> Vec<ActorInput> {
    token.actors.iter().map(ActorInput::from).collect()
}
