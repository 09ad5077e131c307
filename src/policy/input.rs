//! The input document the policy judges: built only from verified token data and the
//! route, never from request headers or bodies (docs/policy.md documents every field).

use serde::Serialize;

use crate::jwt::{Actor, VerifiedToken};

/// One request, as the policy sees it. Serialized as the Rego `input`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PolicyInput {
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// The route's name (`inbound` for inbound requests).
    pub route: String,
    /// The destination `:authority`, lower case.
    pub destination: String,
    /// The HTTP method.
    pub method: String,
    /// The path without its query string.
    pub path: String,
    /// What the method does: `read` (GET, HEAD, OPTIONS), `delete` (DELETE) or `write`.
    pub action: &'static str,
    /// The path's segments, percent-decoded (`/documents/DOC-001` → `["documents","DOC-001"]`).
    pub resource: Vec<String>,
    /// Who serves the request: `app` (inbound) or the route's credential backend
    /// (`token_exchange`).
    pub backend: &'static str,
    /// The user (the token's subject).
    pub user: UserInput,
    /// The delegation chain from the verified `act` claim, newest actor first.
    pub actors: Vec<ActorInput>,
    /// The token's scopes.
    pub scopes: Vec<String>,
    /// On a `protocol: mcp` route, the JSON-RPC message judged (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpInput>,
    /// On a `protocol: a2a` route, the A2A method judged (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a2a: Option<A2aInput>,
}

/// `input.mcp`: one JSON-RPC message to an MCP server.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct McpInput {
    /// The JSON-RPC `method` (`tools/call`, `tools/list`, `initialize`, …); `null` for a
    /// client's response to a server request.
    pub method: Option<String>,
    /// Whether `method` is one MCP defines for a client (case-sensitive); the shipped
    /// policy refuses the others.
    pub known: bool,
    /// `tools/call`: the tool's name.
    pub tool: Option<String>,
    /// `tools/call`: the tool's arguments (an object); `null` when the policy is asked
    /// whether a `tools/list` result may show the tool (the arguments are not known yet:
    /// rules on them apply when the tool is called).
    pub arguments: Option<serde_json::Value>,
}

/// `input.a2a`: one A2A JSON-RPC call.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct A2aInput {
    /// The JSON-RPC `method` (`message/send`, `tasks/get`, …).
    pub method: Option<String>,
    /// Whether the method is one of the A2A specification's.
    pub known: bool,
    /// The agent called: the route's `audience`.
    pub agent: String,
}

/// `input.user`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserInput {
    /// `sub`.
    pub sub: Option<String>,
    /// `preferred_username`.
    pub username: Option<String>,
    /// `groups`, leading `/` stripped.
    pub groups: Vec<String>,
}

/// One entry of `input.actors`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ActorInput {
    /// The actor's `client_id` (for an agent, its SPIFFE ID): the key of its agent record.
    pub client_id: Option<String>,
    /// The actor's `sub`.
    pub sub: Option<String>,
    /// The trust domain, when `client_id` is a valid SPIFFE ID.
    pub trust_domain: Option<String>,
    /// The SPIFFE ID's path, when `client_id` is a valid SPIFFE ID.
    pub spiffe_path: Option<String>,
}

impl ActorInput {
    /// How logs, audit records and credentials name the actor: its `client_id`, else its
    /// `sub`.
    pub fn id(&self) -> String {
        self.client_id
            .clone()
            .or_else(|| self.sub.clone())
            .unwrap_or_default()
    }
}

impl From<&Actor> for ActorInput {
    fn from(a: &Actor) -> Self {
        let spiffe = a
            .client_id
            .as_deref()
            .and_then(|id| spiffe::SpiffeId::new(id).ok());
        ActorInput {
            client_id: a.client_id.clone(),
            sub: a.sub.clone(),
            trust_domain: spiffe.as_ref().map(|s| s.trust_domain_name().to_string()),
            spiffe_path: spiffe.as_ref().map(|s| s.path().to_string()),
        }
    }
}

impl UserInput {
    /// The user of a verified token.
    pub fn of(t: &VerifiedToken) -> Self {
        UserInput {
            sub: t.subject.clone(),
            username: t.username.clone(),
            groups: t.groups.clone(),
        }
    }
}

/// The `action` of an HTTP method.
pub fn action_of(method: &str) -> &'static str {
    match method {
        "GET" | "HEAD" | "OPTIONS" => "read",
        "DELETE" => "delete",
        _ => "write",
    }
}

/// Why a path cannot be described to the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// A segment does not percent-decode to UTF-8.
    #[error("a path segment is not valid percent-encoded UTF-8")]
    Undecodable,
    /// A spelling servers read differently (dot segment, encoded delimiter, `//`, `;`).
    #[error("the path is ambiguous")]
    Ambiguous,
}

/// The decoded segments of `path` (no query), read as every matcher reads it
/// ([`crate::http_path`]): ambiguous spellings (dot segments, encoded delimiters, `//`,
/// `;`, malformed escapes) are refused rather than interpreted, so the policy and the
/// upstream can never disagree on which resource is meant.
pub fn resource_of(path: &str) -> Result<Vec<String>, ResourceError> {
    let path = crate::http_path::CanonicalPath::parse(path).map_err(|e| match e {
        crate::http_path::PathError::BadEscape | crate::http_path::PathError::NotUtf8 => {
            ResourceError::Undecodable
        }
        _ => ResourceError::Ambiguous,
    })?;
    Ok(segments_of(&path))
}

/// The decoded segments of an already canonical path.
pub fn segments_of(path: &crate::http_path::CanonicalPath) -> Vec<String> {
    path.segments().map(str::to_owned).collect()
}
