//! What the core answers: continue (with header mutations) or deny (with a status).

use std::borrow::Cow;

use http::{HeaderName, HeaderValue};

/// The answer for one request.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Let the request through after applying the mutations.
    Continue(Mutations),
    /// The request is decided on its body: deliver the body (at most `max_bytes`) to
    /// [`Pipeline::decide_body`](super::Pipeline::decide_body). The mutations apply
    /// meanwhile (they remove the caller's credential), so a proxy that forwarded the
    /// request anyway would forward nothing usable.
    ReadBody {
        /// Largest body accepted; a larger one is refused (413).
        max_bytes: usize,
        /// Applied to the request while the body is read.
        mutations: Mutations,
        /// After the body, the response will be watched ([`Decision::Narrow`]): its
        /// headers must be sent too.
        watch_response: bool,
    },
    /// Let the request through after applying the mutations, and watch the response's
    /// status: a 401 means the credential the mutations set is no longer accepted
    /// upstream; [`OnRejected::fire`](crate::credentials::OnRejected::fire) makes the
    /// backend forget it.
    Watch {
        /// Applied to the request.
        mutations: Mutations,
        /// Run when the upstream answers 401.
        on_rejected: crate::credentials::OnRejected,
    },
    /// Let the request through after applying the mutations, and narrow the `tools/list`
    /// result that comes back with [`Pipeline::narrow_response`](super::Pipeline::narrow_response).
    Narrow {
        /// Applied to the request.
        mutations: Mutations,
        /// What judges the response's tools.
        narrowing: std::sync::Arc<super::rpc::ToolsNarrowing>,
    },
    /// Answer the client directly with this (successful) reply; nothing is forwarded.
    Respond(Reply),
    /// Answer the client directly; the request goes no further.
    Deny(Denial),
}

/// A direct answer: a JSON body, sent with `cache-control: no-store`. It may hold a
/// credential: `Debug` prints its size only.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Header changes. Removals are applied before sets. Names and values are `http` types,
/// so a CR, LF or NUL can never reach a mutation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mutations {
    /// Headers set (replacing any existing value).
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Headers removed.
    pub remove: Vec<HeaderName>,
}

/// A refusal, ready to be rendered by the protocol layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// HTTP status.
    pub status: u16,
    /// Stable reason code (logs, metrics, Envoy `details`).
    pub reason: &'static str,
    /// OAuth-style error code for the JSON body (`invalid_token`, `access_denied`, …).
    pub error: &'static str,
    /// Short description for the caller: no secrets, no internals (a policy's `reason`
    /// is the only text not written here).
    pub description: Cow<'static, str>,
    /// `Retry-After` seconds (503).
    pub retry_after: Option<u64>,
    /// `WWW-Authenticate` value (401; 403 on agent-protocol routes).
    pub www_authenticate: Option<String>,
    /// The body in the caller's protocol (a JSON-RPC error object on `mcp` and `a2a`
    /// routes); `None`: the OAuth-style JSON of [`Denial::body`].
    pub body: Option<Vec<u8>>,
}

impl Denial {
    /// The body: the protocol's own when set, else
    /// `{"error":"…","error_description":"…"}`.
    pub fn body(&self) -> Vec<u8> {
        if let Some(b) = &self.body {
            return b.clone();
        }
        serde_json::to_vec(&serde_json::json!({
            "error": self.error,
            "error_description": self.description,
        }))
        .unwrap_or_default()
    }
}
