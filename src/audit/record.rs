//! What one audit record says. The writer adds the chain members around it:
//!
//! ```text
//! {"seq":12,"time":"2026-12-02T10:15:00.123456Z","kind":"decision",
//!  "request_id":"5d0c…","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736",
//!  "direction":"outbound","route":"document-service","method":"GET",
//!  "authority":"document-service:8080","path":"/documents/DOC-001",
//!  "user":"alice","subject":"7f3e…","actors":["spiffe://demo.example.com/agent/summarizer-tech"],
//!  "grant":["engineering","finance"],"decision":"allow","token":"3f9a0c1d5e7b2a64",
//!  "exchange":{"audience":"spiffe://demo.example.com/service/document-service","expires_at":1796209039},
//!  "prev":"9f2c…","hash":"41d0…"}
//! ```
//!
//! Never a token, a secret or a query string: the presented token appears only as its
//! fingerprint, a credential only as its name, backend and session name.

use serde::{Deserialize, Serialize};

/// One decision on one request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DecisionRecord {
    /// Envoy's `x-request-id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The W3C trace id from `traceparent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// `inbound` / `outbound`.
    pub direction: String,
    /// The route that decided (`inbound`, `bypass`, an outbound route's name, `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// `:method`.
    pub method: String,
    /// `:authority`.
    pub authority: String,
    /// `:path` without the query string (which may carry credentials).
    pub path: String,
    /// On an agent-protocol route, the JSON-RPC calls judged, in order
    /// (`tools/call read_document`, `tools/list`, `message/send`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
    /// The user (`preferred_username`), when a token was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The user's `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The whole agent chain the decision was about (client id, else `sub`), newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<String>,
    /// The policy's grant, when a policy judged the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<Vec<String>>,
    /// `allow` (forwarded), `answer` (answered by actbridge, e.g. a vended credential) or
    /// `deny`.
    pub decision: String,
    /// The status of a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The stable reason code of a refusal (`policy_denied`, `token_replayed`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The operator's detail of a refusal (the policy's reason, the failing check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Fingerprint of the presented token (hex of the first 8 bytes of its SHA-256, as in
    /// the log lines), never the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The token exchange made for the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<ExchangeFact>,
    /// The credential a backend applied or vended for the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialFact>,
}

/// A token exchange, as audited.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExchangeFact {
    /// The audience the new token was issued for.
    pub audience: String,
    /// Its `exp` (Unix seconds).
    pub expires_at: u64,
}

/// A credential from a backend, as audited: never the secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CredentialFact {
    /// The backend's configured name.
    pub name: String,
    /// The backend's kind (`aws_sts`, `github_app`, `postgres`, `ssh_cert`, `filter`).
    pub backend: String,
    /// Whom the credential is for: `<user>-via-<agent>+<identity digest>`
    /// (`Grantee::credential_name`; the AWS session name and the SSH key id carry the
    /// same, the PostgreSQL role's creation is logged with it).
    pub session: String,
}

/// An operator's action through the admin API (a revocation, an approval), as audited.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdminRecord {
    /// The admin (their token's `preferred_username`, else `sub`).
    pub admin: String,
    /// Their token's fingerprint.
    pub token: String,
    /// `revoke`, `unrevoke`, `approve`, `deny`.
    pub action: String,
    /// What it applies to (`agent spiffe://…`, an approval id).
    pub target: String,
    /// The reason given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A step of a human approval, as audited.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApprovalRecord {
    /// The approval's id.
    pub id: String,
    /// `asked`, `approved`, `denied`, `timed_out`.
    pub step: String,
    /// Who approved or denied it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The user the request is for.
    pub user: String,
    /// The agents acting for them, newest first.
    pub actors: Vec<String>,
    /// The route.
    pub route: String,
    /// The method.
    pub method: String,
    /// The host.
    pub authority: String,
    /// The path, without its query string.
    pub path: String,
    /// The policy's reason for asking.
    pub reason: String,
}

/// What the audit queue carries.
#[derive(Debug, Clone)]
pub enum Event {
    /// A decision on a request.
    Decision(Box<DecisionRecord>),
    /// An operator's action.
    Admin(AdminRecord),
    /// A step of a human approval.
    Approval(ApprovalRecord),
}
