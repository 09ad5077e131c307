//! `credential` routes: the agent's token is replaced by a backend's credential scoped
//! to the grant. The backend reads what the request touches, the policy judges exactly
//! that for the chain the destination serves, and only then is the backend called.

use super::judge::{Granted, Target, judge};
use super::outbound::{Accepted, OutboundStage};
use super::{Allowed, Mutations, Refusal, RequestFacts, Then};
use crate::credentials::{Backend, Grantee, HttpRequest, Scope};
use crate::jwt::VerifiedToken;
use crate::policy::PolicyEngine;

/// A request judged for a credential backend.
pub(super) struct Judged {
    pub granted: Granted,
    /// Client ids of the chain the destination serves, newest first.
    pub chain: Vec<String>,
    /// `preferred_username`, else `sub`.
    pub user: String,
}

impl Judged {
    /// The decision to log and carry out: `then`, for this route and token.
    pub fn allowed(self, then: Then, route: &str, verified: &VerifiedToken) -> Allowed {
        Allowed {
            then,
            route: route.to_string(),
            subject: verified.subject.clone(),
            fingerprint: Some(verified.fingerprint.clone()),
            grant: Some(self.granted.grant),
        }
    }

    pub fn grantee(&self) -> Grantee<'_> {
        Grantee {
            user: &self.user,
            chain: &self.chain,
            grant: &self.granted.grant,
            exclude: &self.granted.exclude,
        }
    }
}

/// Signs (or otherwise equips) the request with `credential`'s credential.
pub(super) async fn sign(
    stage: &OutboundStage,
    policy: Option<&PolicyEngine>,
    req: &RequestFacts,
    route: &str,
    credential: &str,
    accepted: Accepted<'_>,
) -> Result<Allowed, Refusal> {
    let backend = backend(stage, credential)?;
    let names: Vec<&str> = req.header_names().collect();
    let http = HttpRequest {
        method: &req.method,
        authority: &req.authority,
        path: &req.path,
        header_names: &names,
    };
    let scope = backend.scope(&http)?;
    let judged = judge_for(
        stage,
        policy,
        req,
        route,
        backend,
        &scope,
        &accepted.verified,
    )
    .await?;
    let changes = backend.apply(&judged.grantee(), &http, &scope).await?;
    let then = Then::Forward(Mutations {
        set: changes.set,
        remove: changes.remove,
    });
    Ok(judged.allowed(then, route, &accepted.verified))
}

/// The backend named `name` (config validation guarantees it exists).
pub(super) fn backend<'s>(stage: &'s OutboundStage, name: &str) -> Result<&'s Backend, Refusal> {
    stage
        .credentials
        .get(name)
        .map(|b| &**b)
        .ok_or_else(|| Refusal::CredentialMissing(name.to_string()))
}

/// Asks the policy about `scope` for the chain the destination serves (this agent
/// included when it acts). A credential route always has a policy: its grant is what
/// the credential is scoped to.
pub(super) async fn judge_for(
    stage: &OutboundStage,
    policy: Option<&PolicyEngine>,
    req: &RequestFacts,
    route: &str,
    backend: &Backend,
    scope: &Scope,
    verified: &VerifiedToken,
) -> Result<Judged, Refusal> {
    let engine = policy.ok_or(Refusal::PolicyMissing)?;
    let adds_itself = stage.agent.adds_itself(verified, false);
    let actors = stage.agent.next_chain(verified, adds_itself);
    let chain = actors
        .iter()
        .map(|a| {
            a.client_id
                .clone()
                .or_else(|| a.sub.clone())
                .unwrap_or_default()
        })
        .collect();
    let target = Target {
        route,
        backend: backend.kind(),
        touches: Some((scope.action, &scope.resource)),
    };
    let granted = judge(engine, req, &target, verified, actors).await?;
    let user = verified
        .username
        .clone()
        .or_else(|| verified.subject.clone())
        .ok_or(Refusal::UnforwardableClaim("sub"))?;
    Ok(Judged {
        granted,
        chain,
        user,
    })
}
