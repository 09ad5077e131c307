//! `credential` routes: the agent's token is replaced by a backend's credential scoped
//! to the grant. The backend reads what the request touches, the policy judges exactly
//! that for the chain the destination serves, and only then is the backend called.

use http::header::{AUTHORIZATION, PROXY_AUTHORIZATION};

use super::context::Context;
use super::judge::{Granted, Target};
use super::outbound::{Accepted, Outbound};
use super::routes::Named;
use super::span;
use super::trail::Trail;
use super::{Decision, Mutations, Refusal, RequestFacts};
use crate::audit::CredentialFact;
use crate::config::TokenRules;
use crate::credentials::{Backend, Grantee, HttpRequest, Scope};
use crate::jwt::VerifiedToken;
use crate::policy::PolicyEngine;
use crate::telemetry::metrics::Stage;

/// A `credential` route: its name, its backend and the policy that scopes it.
pub(super) struct Route<'a> {
    pub name: &'a str,
    pub credential: &'a Named,
    pub policy: &'a PolicyEngine,
    pub rules: TokenRules,
}

/// A request judged for a credential backend.
pub(super) struct Judged {
    pub granted: Granted,
    /// Client ids of the chain the destination serves, newest first.
    pub chain: Vec<String>,
    /// `iss` and `sub`: who the person is (credentials are keyed on them).
    pub issuer: String,
    pub subject: String,
    /// `preferred_username`, else `sub`: how the person is shown.
    pub user: String,
}

impl Judged {
    /// Notes the judged chain and the grant in the trail.
    pub(super) fn record(&self, trail: &mut Trail) {
        trail.actors.clone_from(&self.chain);
        trail.grant = Some(self.granted.grant.clone());
    }

    /// Notes the credential `backend` (configured as `name`) made for this grantee.
    pub(super) fn record_credential(&self, trail: &mut Trail, name: &str, backend: &Backend) {
        trail.credential = Some(CredentialFact {
            name: name.to_string(),
            backend: backend.kind().to_string(),
            session: self.grantee().credential_name(),
        });
    }

    pub(super) fn grantee(&self) -> Grantee<'_> {
        Grantee {
            issuer: &self.issuer,
            subject: &self.subject,
            user: &self.user,
            chain: &self.chain,
            grant: &self.granted.grant,
            exclude: &self.granted.exclude,
        }
    }
}

/// The headers phase of a `credential` route: when the backend needs the body for this
/// request, ask for it (the agent's credential stripped meanwhile) and decide on it in
/// [`equip`]; otherwise verify and equip now.
pub(super) async fn on_headers(
    outbound: &Outbound,
    cx: &mut Context<'_>,
    route: &Route<'_>,
) -> Result<Decision, Refusal> {
    let req = cx.req;
    let backend = &route.credential.backend;
    let headers = Headers::of(req);
    let http = headers.request(req);
    if let Some(max_bytes) = backend.body_limit(&http).filter(|_| !req.end_of_stream) {
        // A request no rule covers is refused without reading its body.
        backend.scope(&http)?;
        return Ok(Decision::ReadBody {
            mutations: Mutations {
                set: Vec::new(),
                remove: vec![AUTHORIZATION, PROXY_AUTHORIZATION],
            },
            max_bytes,
            watch_response: false,
        });
    }
    let accepted = outbound.accept(cx, route.name, route.rules).await?;
    equip(outbound, cx, route, accepted, None).await
}

/// Equips the request with the backend's credential: what it touches is read, the
/// policy judges it for the `accepted` token, and the backend applies its credential
/// (`body`: the request body, when the backend asked for it).
pub(super) async fn equip(
    outbound: &Outbound,
    cx: &mut Context<'_>,
    route: &Route<'_>,
    accepted: Accepted<'_>,
    body: Option<&[u8]>,
) -> Result<Decision, Refusal> {
    let Named { name, backend } = route.credential;
    let req = cx.req;
    let headers = Headers::of(req);
    let http = headers.request(req);
    let scope = backend.scope(&http)?;
    let judged = judge_for(
        outbound,
        cx,
        (route.name, route.policy),
        backend,
        &scope,
        &accepted.verified,
    )
    .await?;
    judged.record(&mut cx.trail);
    let grantee = judged.grantee();
    let span = span::credential(name, backend.kind(), "apply");
    let applying = Box::pin(backend.apply(&grantee, &http, &scope, body));
    let changes = cx.trail.step(Stage::Credential, span, applying).await?;
    judged.record_credential(&mut cx.trail, name, backend);
    let mutations = Mutations {
        set: changes.set,
        remove: changes.remove,
    };
    Ok(match changes.on_rejected {
        None => Decision::Continue(mutations),
        Some(on_rejected) => Decision::Watch {
            mutations,
            on_rejected,
        },
    })
}

/// The headers of a request a backend reads, gathered once.
struct Headers<'a> {
    names: Vec<&'a str>,
    content_types: Vec<&'a [u8]>,
    content_encodings: Vec<&'a [u8]>,
}

impl<'a> Headers<'a> {
    fn of(req: &'a RequestFacts) -> Headers<'a> {
        Headers {
            names: req.header_names().collect(),
            content_types: req.header_values("content-type").collect(),
            content_encodings: req.header_values("content-encoding").collect(),
        }
    }

    fn request(&'a self, req: &'a RequestFacts) -> HttpRequest<'a> {
        HttpRequest {
            method: &req.method,
            authority: &req.authority,
            path: &req.path,
            canonical_path: req.canonical_path().as_str(),
            header_names: &self.names,
            content_types: &self.content_types,
            content_encodings: &self.content_encodings,
            has_body: !req.end_of_stream,
        }
    }
}

/// Asks the policy about `scope` for the chain the destination serves (this agent
/// included when it acts). A credential route always has a policy: its grant is what
/// the credential is scoped to.
pub(super) async fn judge_for(
    outbound: &Outbound,
    cx: &mut Context<'_>,
    (route, engine): (&str, &PolicyEngine),
    backend: &Backend,
    scope: &Scope,
    verified: &VerifiedToken,
) -> Result<Judged, Refusal> {
    let adds_itself = outbound.agent.adds_itself(verified, false);
    let actors = outbound.agent.next_chain(verified, adds_itself);
    let chain = actors.iter().map(crate::policy::ActorInput::id).collect();
    let target = Target {
        route,
        backend: backend.kind(),
        touches: Some((scope.action, &scope.resource)),
        rpc: None,
    };
    cx.within_limits(route, verified, &actors, None).await?;
    let granted = cx.judge(engine, &target, verified, actors).await?;
    // A credential is for a person: (`iss`, `sub`). A token without `sub` names none.
    let subject = verified
        .subject
        .clone()
        .ok_or(Refusal::UnforwardableClaim("sub"))?;
    let user = verified.username.clone().unwrap_or_else(|| subject.clone());
    Ok(Judged {
        granted,
        chain,
        issuer: verified.issuer.clone(),
        subject,
        user,
    })
}
