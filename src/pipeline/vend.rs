//! `vend` routes: `POST /credentials` with `{"target_service": "s3", "action": "read"}`
//! (SSH adds `"public_key"`)
//! is answered by actbridge itself (an immediate response through Envoy) with a
//! credential scoped to the grant, for clients that must hold one (SDKs, tools). Nothing
//! is forwarded. The body is read only for this route (ext_proc `mode_override`), and
//! the caller's credential is stripped while it is read.

use std::collections::BTreeMap;

use http::header::{AUTHORIZATION, PROXY_AUTHORIZATION};
use serde::Deserialize;

use super::context::Context;
use super::credential::judge_for;
use super::outbound::{Accepted, Outbound};
use super::routes::Named;
use super::span;
use super::{Decision, Mutations, Refusal, Reply, RequestFacts};
use crate::credentials::VendAsk;
use crate::policy::PolicyEngine;
use crate::telemetry::metrics::Stage;

/// The only path a vending route answers.
pub(super) const PATH: &str = "/credentials";
/// Largest vending request body.
const MAX_BODY_BYTES: usize = 4096;

/// A vending request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VendRequest {
    /// Which service the credential is for (a key of the route's `services`).
    target_service: String,
    /// What the caller will do with it (`read`; `login` for SSH).
    action: String,
    /// The caller's public key, OpenSSH format (SSH only).
    #[serde(default)]
    public_key: Option<String>,
}

/// The headers phase: the right path and method, and a body to come.
pub(super) fn on_headers(req: &RequestFacts) -> Result<Decision, Refusal> {
    if req.path_only() != PATH {
        return Err(Refusal::VendNotFound);
    }
    if req.method != "POST" {
        return Err(Refusal::VendMethod);
    }
    if req.end_of_stream {
        return Err(Refusal::VendBody("a JSON body is required"));
    }
    Ok(Decision::ReadBody {
        mutations: Mutations {
            set: Vec::new(),
            remove: vec![AUTHORIZATION, PROXY_AUTHORIZATION],
        },
        max_bytes: MAX_BODY_BYTES,
        watch_response: false,
    })
}

/// Parses the body (`None`: it was over [`MAX_BODY_BYTES`]).
pub(super) fn parse_body(body: Option<&[u8]>) -> Result<VendRequest, Refusal> {
    let body = body.ok_or(Refusal::BodyTooLarge)?;
    serde_json::from_slice(body).map_err(|_| {
        Refusal::VendBody(
            "the body must be {\"target_service\": \"…\", \"action\": \"…\"} (and for SSH \"public_key\"), nothing else",
        )
    })
}

/// Judges the request and answers with the credential.
pub(super) async fn answer(
    outbound: &Outbound,
    cx: &mut Context<'_>,
    (route, services, policy): (&str, &BTreeMap<String, Named>, &PolicyEngine),
    ask: &VendRequest,
    accepted: Accepted<'_>,
) -> Result<Decision, Refusal> {
    let Named { name, backend } = services
        .get(&ask.target_service)
        .ok_or(Refusal::VendBody("unknown target_service"))?;
    let vend_ask = VendAsk {
        action: &ask.action,
        public_key: ask.public_key.as_deref(),
    };
    let scope = backend.vend_scope(&vend_ask)?;
    let judged = judge_for(
        outbound,
        cx,
        (route, policy),
        backend,
        &scope,
        &accepted.verified,
    )
    .await?;
    judged.record(&mut cx.trail);
    let grantee = judged.grantee();
    let span = span::credential(name, backend.kind(), "vend");
    let vending = Box::pin(backend.vend(&grantee, &vend_ask));
    let vended = cx.trail.step(Stage::Credential, span, vending).await?;
    judged.record_credential(&mut cx.trail, name, backend);
    Ok(Decision::Respond(Reply {
        status: 200,
        body: vended.0.to_string().into_bytes(),
    }))
}
