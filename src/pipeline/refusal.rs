//! Every reason a request is refused, and the one place each becomes a status.

use std::borrow::Cow;

use super::{Denial, RequestError};
use crate::credentials::CredentialError;
use crate::exchange::ExchangeError;
use crate::introspect::IntrospectError;
use crate::jwt::VerifyError;
use crate::policy::{PolicyError, ResourceError};
use crate::state::approvals::ApprovalRefused;
use crate::state::custody::{CustodyError, PlaceholderUnknown};
use crate::state::rate_limits::RateLimited;
use crate::state::replay::ReplayError;
use crate::state::revocations::Revoked;

/// Why the core refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request could not be described (protocol or configuration problem).
    #[error("{0}")]
    Request(#[from] RequestError),
    /// No `authorization` header.
    #[error("no bearer token")]
    MissingToken,
    /// `authorization` is not one well-formed `Bearer` credential.
    #[error("authorization header is not a single bearer token")]
    MalformedAuthorization,
    /// The token failed verification.
    #[error("token refused: {0}")]
    Token(#[from] VerifyError),
    /// The live check at the issuer (RFC 7662) did not pass, or could not be made.
    #[error("{0}")]
    Introspection(#[from] IntrospectError),
    /// A verified claim cannot be put into a header (control characters).
    #[error("claim `{0}` cannot be forwarded in a header")]
    UnforwardableClaim(&'static str),
    /// Outbound requests are not configured.
    #[error("outbound is not configured")]
    OutboundDisabled,
    /// A route with action `deny` matched (or the default action is `deny`).
    #[error("route `{0}` denies this destination")]
    RouteDenied(String),
    /// The token exchange failed.
    #[error("token exchange failed: {0}")]
    Exchange(#[from] ExchangeError),
    /// The token service issued a token that cannot be put into a header.
    #[error("issued token is not a valid header value")]
    UnforwardableToken,
    /// The path cannot be described to the policy unambiguously.
    #[error("path refused: {0}")]
    Resource(#[from] ResourceError),
    /// An outbound request with a token that is not a delegation (no `act`) on a route
    /// that does not allow direct use.
    #[error("route `{0}` requires a delegated token (with `act`)")]
    DelegationRequired(String),
    /// An exchange would drop an agent from the chain: the token service records only
    /// the client that asks (`azp`), and the token names another agent.
    #[error(
        "the token names agent `{0}`, and its token service records only the client that exchanges it: the exchange would drop that agent from the chain"
    )]
    ChainNotRecordable(String),
    /// The policy refused, with its reason.
    #[error("policy refused: {0}")]
    PolicyDenied(String),
    /// The policy allowed, but the grant (user ∩ every agent) is empty.
    #[error("the permission intersection is empty")]
    GrantEmpty,
    /// The policy asked for a human approval, which this build cannot obtain.
    #[error("the policy requires an approval and approvals are not available")]
    ApprovalUnavailable,
    /// A single-use token was presented again.
    #[error("token replayed")]
    Replayed,
    /// A single-use token has no `jti` to remember it by.
    #[error("single-use token without jti")]
    TokenIdMissing,
    /// The replay memory is full of live entries (fail closed).
    #[error("replay memory full")]
    ReplayMemoryFull,
    /// The shared single-use memory (Redis) did not answer: the use cannot be recorded
    /// (fail closed).
    #[error("{0}")]
    ReplayUnavailable(crate::state::redis::SharedStateError),
    /// The shared custody (Redis) did not answer: a placeholder cannot be handed out or
    /// resolved.
    #[error("{0}")]
    CustodyUnavailable(crate::state::redis::SharedStateError),
    /// A rate limit (`rate_limits`) is used up, or cannot be checked and refuses.
    #[error("{0}")]
    RateLimited(#[from] RateLimited),
    /// The request waited for a person, who denied it, or nobody decided in time, or too
    /// many requests were already waiting.
    #[error("{0}")]
    Approval(#[from] ApprovalRefused),
    /// The workload identity holds no valid X.509-SVID (none yet, or expired while the
    /// Workload API is away): an outbound request would leave without mTLS.
    #[error("no valid X.509-SVID")]
    IdentityUnavailable,
    /// The deny list names the user, the token or an agent of the chain.
    #[error("{0}")]
    Revoked(#[from] Revoked),
    /// The audit log cannot take the decision's record (`on_queue_full: refuse`).
    #[error("{0}")]
    AuditUnavailable(#[from] crate::audit::AuditRefused),
    /// A custody placeholder that is unknown here or past its token's `exp`.
    #[error("placeholder unknown or expired")]
    PlaceholderUnknown,
    /// A custody placeholder presented where it cannot be resolved (inbound, or on a route
    /// that would forward it).
    #[error("placeholder presented where it cannot be used")]
    PlaceholderMisused,
    /// The destination is spelled so that a proxy could read it as another host
    /// (userinfo, a list or two `host` headers, a trailing dot, a bad port).
    #[error("{0}")]
    Authority(#[from] crate::authority::AuthorityError),
    /// The proxy did not report the route it chose (`request_attributes` missing from the
    /// outbound ext_proc filter).
    #[error(
        "the proxy reported no route (set request_attributes: [xds.route_name, xds.cluster_name] on the outbound ext_proc filter)"
    )]
    ProxyRouteUnknown,
    /// The proxy chose another route or cluster than the one actbridge judged: nothing is
    /// attached to a request that would go elsewhere.
    #[error(
        "the proxy chose {chosen}, actbridge judged {judged} (are Envoy's routes generated from this config? actbridge envoy-routes)"
    )]
    RouteMismatch {
        /// The route (and cluster) actbridge judged.
        judged: String,
        /// What the proxy reported.
        chosen: String,
    },
    /// A `passthrough` route with `forward_authorization` would send a trusted issuer's
    /// token (a user's) out of the pod as it is.
    #[error("a user token would leave the pod on a passthrough route")]
    UserTokenWouldLeave,
    /// The policy failed (evaluation error, time limit, malformed answer).
    #[error("{0}")]
    Policy(#[from] PolicyError),
    /// A credential backend refused or failed.
    #[error("{0}")]
    Credential(#[from] CredentialError),
    /// A vending route was asked for another path.
    #[error("not the vending path")]
    VendNotFound,
    /// A vending route was asked with another method than POST.
    #[error("vending needs POST")]
    VendMethod,
    /// An `mcp`/`a2a` route asked with a method its protocol does not define (MCP's
    /// Streamable HTTP: POST, and GET and DELETE without a body; A2A: POST, and GET
    /// without a body), or a GET/DELETE carrying a body nobody would judge.
    #[error("`{0}` is not a method of this agent protocol (or carries a body it does not define)")]
    RpcHttpMethod(String),
    /// A vending request's body is missing or not the expected JSON.
    #[error("vending request refused: {0}")]
    VendBody(&'static str),
    /// A body over the limit.
    #[error("body too large")]
    BodyTooLarge,
    /// A body arrived for a request no route reads the body of (a wiring error).
    #[error("body phase for a request decided on its headers")]
    BodyUnexpected,
    /// An agent-protocol body that is not an acceptable JSON-RPC 2.0 message.
    #[error("{0}")]
    JsonRpc(#[from] crate::agentproto::jsonrpc::RpcError),
    /// An MCP message actbridge cannot judge (a `tools/call` without a tool name).
    #[error("{0}")]
    Mcp(#[from] crate::agentproto::mcp::McpError),
    /// A single-use tool token was asked for a body that is not exactly one `tools/call`.
    #[error("a single-use tool token needs exactly one tools/call per request")]
    SingleUseBatch,
}

const REALM: &str = "actbridge";

impl From<ReplayError> for Refusal {
    fn from(e: ReplayError) -> Refusal {
        match e {
            ReplayError::NoTokenId => Refusal::TokenIdMissing,
            ReplayError::Replayed => Refusal::Replayed,
            ReplayError::MemoryFull => Refusal::ReplayMemoryFull,
            ReplayError::Unavailable(e) => Refusal::ReplayUnavailable(e),
        }
    }
}

impl From<CustodyError> for Refusal {
    fn from(e: CustodyError) -> Refusal {
        match e {
            CustodyError::Unknown(_) => Refusal::PlaceholderUnknown,
            CustodyError::Unavailable(e) => Refusal::CustodyUnavailable(e),
        }
    }
}

impl From<PlaceholderUnknown> for Refusal {
    fn from(_: PlaceholderUnknown) -> Refusal {
        Refusal::PlaceholderUnknown
    }
}

impl Refusal {
    /// Maps the refusal to what the caller gets. Exhaustive on purpose: a new reason
    /// must be given a status here. `retry_after` is the configured `Retry-After` (s).
    ///
    /// Long by design: one arm per reason, so that the whole mapping reads as one table
    /// and the compiler checks that no reason is left without a status.
    pub fn denial(&self, retry_after: Option<u64>) -> Denial {
        match self {
            Refusal::Request(RequestError::UnknownDirection) => {
                server_error("direction_unknown", "the sidecar is misconfigured")
            }
            Refusal::Request(RequestError::MissingPseudoHeader(_)) => {
                bad_request("request_malformed", "the request is malformed")
            }
            Refusal::Request(RequestError::AmbiguousPath(_)) | Refusal::Resource(_) => {
                bad_request("path_ambiguous", "the request path is ambiguous")
            }
            Refusal::Authority(_) => {
                bad_request("authority_ambiguous", "the destination host is ambiguous")
            }
            Refusal::ProxyRouteUnknown => {
                server_error("proxy_route_unknown", "the sidecar is misconfigured")
            }
            Refusal::RouteMismatch { .. } => forbidden(
                "route_mismatch",
                "the destination is not the one this request was judged for",
            ),
            Refusal::MissingToken => Denial {
                status: 401,
                reason: "token_missing",
                error: "invalid_token",
                description: "a bearer token is required".into(),
                retry_after: None,
                // RFC 6750 §3.1: no error code when the request carried no credentials.
                www_authenticate: Some(format!("Bearer realm=\"{REALM}\"")),
                body: None,
            },
            Refusal::MalformedAuthorization => unauthorized(
                "authorization_malformed",
                "the authorization header is malformed",
            ),
            Refusal::Token(VerifyError::KeysUnavailable) => unavailable(
                "jwks_unavailable",
                "token verification is temporarily unavailable",
                retry_after,
            ),
            Refusal::Token(e) => unauthorized(e.reason(), token_description(e)),
            Refusal::Introspection(IntrospectError::Inactive) => {
                unauthorized("token_inactive", "the token is no longer active")
            }
            Refusal::Introspection(IntrospectError::Mismatch(_)) => bad_gateway(
                "introspection_mismatch",
                "the token service answered unexpectedly",
            ),
            // Fail closed: no answer is no pass.
            Refusal::Introspection(
                IntrospectError::Unavailable(_)
                | IntrospectError::Refused { .. }
                | IntrospectError::InvalidResponse(_),
            ) => unavailable(
                "introspection_unavailable",
                "token validation is temporarily unavailable",
                retry_after,
            ),
            Refusal::Introspection(IntrospectError::NotConfigured) => {
                server_error("sidecar_misconfigured", "the sidecar is misconfigured")
            }
            Refusal::UnforwardableClaim(_) => unauthorized(
                "claim_unforwardable",
                "the token's claims cannot be forwarded",
            ),
            Refusal::OutboundDisabled => {
                forbidden("outbound_disabled", "outbound requests are not allowed")
            }
            Refusal::RouteDenied(_) => forbidden("route_denied", "this destination is not allowed"),
            Refusal::Exchange(ExchangeError::Unavailable(_)) => unavailable(
                "sts_unavailable",
                "the token service is unavailable",
                retry_after,
            ),
            Refusal::Exchange(ExchangeError::Refused { .. }) => forbidden(
                "exchange_refused",
                "the token service refused the delegation",
            ),
            Refusal::Exchange(ExchangeError::InvalidResponse(_)) => bad_gateway(
                "sts_invalid_response",
                "the token service answered unexpectedly",
            ),
            Refusal::Exchange(ExchangeError::ClientAuth(_)) => {
                server_error("client_auth_failed", "the sidecar could not authenticate")
            }
            Refusal::Exchange(ExchangeError::ClientRejected { .. }) => server_error(
                "client_rejected",
                "the sidecar is not accepted by the token service",
            ),
            Refusal::UnforwardableToken => bad_gateway(
                "issued_token_unforwardable",
                "the token service answered unexpectedly",
            ),
            Refusal::DelegationRequired(_) => forbidden(
                "delegation_required",
                "this destination requires a token delegated to an agent",
            ),
            Refusal::ChainNotRecordable(_) => forbidden(
                "chain_not_recordable",
                "the token service cannot record this delegation chain",
            ),
            Refusal::PolicyDenied(reason) => Denial {
                description: Cow::Owned(reason.clone()),
                ..forbidden("policy_denied", "")
            },
            Refusal::GrantEmpty => forbidden(
                "grant_empty",
                "the user and the agents acting for them share no permission",
            ),
            Refusal::ApprovalUnavailable => forbidden(
                "approval_unavailable",
                "this request needs an approval that cannot be obtained",
            ),
            Refusal::Policy(PolicyError::Unavailable(_)) => unavailable(
                "policy_unavailable",
                "authorization is temporarily unavailable",
                retry_after,
            ),
            Refusal::Policy(
                PolicyError::Read { .. }
                | PolicyError::Compile(_)
                | PolicyError::Data { .. }
                | PolicyError::Empty(_)
                | PolicyError::Eval(_)
                | PolicyError::Malformed(_),
            ) => forbidden("policy_error", "the request could not be authorized"),
            Refusal::Replayed => unauthorized("token_replayed", "token replayed"),
            Refusal::PlaceholderUnknown => {
                unauthorized("placeholder_unknown", "the token is unknown or has expired")
            }
            Refusal::PlaceholderMisused => {
                unauthorized("placeholder_misused", "this token cannot be used here")
            }
            Refusal::UserTokenWouldLeave => forbidden(
                "user_token_would_leave",
                "this destination does not take the user's token",
            ),
            Refusal::TokenIdMissing => {
                unauthorized("token_id_missing", "a single-use token must carry a jti")
            }
            Refusal::BodyUnexpected => {
                server_error("sidecar_misconfigured", "the sidecar is misconfigured")
            }
            Refusal::Credential(e) => credential_denial(e, retry_after),
            Refusal::VendNotFound => Denial {
                status: 404,
                ..bad_request("not_found", "the credentials endpoint is POST /credentials")
            },
            Refusal::VendMethod => {
                method_not_allowed("the credentials endpoint is POST /credentials")
            }
            Refusal::RpcHttpMethod(_) => {
                method_not_allowed("the agent protocol does not define this request")
            }
            Refusal::VendBody(what) => bad_request("vend_body_invalid", what),
            Refusal::BodyTooLarge => Denial {
                status: 413,
                ..bad_request("body_too_large", "the request body is too large")
            },
            Refusal::JsonRpc(crate::agentproto::jsonrpc::RpcError::Parse) => {
                bad_request("jsonrpc_parse_error", "the body is not JSON")
            }
            Refusal::JsonRpc(crate::agentproto::jsonrpc::RpcError::Invalid(_)) => bad_request(
                "jsonrpc_invalid",
                "the body is not a valid JSON-RPC 2.0 message",
            ),
            Refusal::Mcp(crate::agentproto::mcp::McpError::BadListResponse(_)) => bad_gateway(
                "mcp_response_unreadable",
                "the MCP server answered unexpectedly",
            ),
            Refusal::Mcp(crate::agentproto::mcp::McpError::BadToolCall) => {
                bad_request("mcp_invalid", "the MCP message is invalid")
            }
            Refusal::SingleUseBatch => bad_request(
                "single_use_batch",
                "this tool must be called alone, one call per request",
            ),
            Refusal::ReplayMemoryFull => unavailable(
                "replay_memory_full",
                "single-use tokens cannot be accepted right now",
                retry_after,
            ),
            Refusal::RateLimited(RateLimited::Exceeded { retry_after, .. }) => Denial {
                status: 429,
                reason: "rate_limited",
                error: "rate_limited",
                description: "too many requests: retry later".into(),
                // Whole seconds, rounded up: a client that waits that long is let through.
                retry_after: Some(
                    retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0),
                ),
                www_authenticate: None,
                body: None,
            },
            Refusal::CustodyUnavailable(_) => unavailable(
                "custody_unavailable",
                "the token custody is temporarily unavailable",
                retry_after,
            ),
            Refusal::RateLimited(RateLimited::Unavailable(_)) => unavailable(
                "rate_limit_unavailable",
                "the request cannot be checked against its rate limits right now",
                retry_after,
            ),
            Refusal::ReplayUnavailable(_) => unavailable(
                "replay_unavailable",
                "single-use tokens cannot be accepted right now",
                retry_after,
            ),
            Refusal::Approval(ApprovalRefused::Denied { .. }) => {
                forbidden("approval_denied", "the request was not approved")
            }
            Refusal::Approval(ApprovalRefused::TimedOut(_)) => {
                forbidden("approval_timeout", "no approval arrived in time")
            }
            Refusal::Approval(ApprovalRefused::Full) => unavailable(
                "approvals_full",
                "too many requests are waiting for approval",
                retry_after,
            ),
            Refusal::Approval(ApprovalRefused::Unaudited) => unavailable(
                "audit_unavailable",
                "the request cannot be audited right now",
                retry_after,
            ),
            Refusal::Approval(ApprovalRefused::Unavailable(_)) => unavailable(
                "approval_state_unavailable",
                "the request cannot be held for approval right now",
                retry_after,
            ),
            Refusal::Approval(ApprovalRefused::ShuttingDown) => {
                unavailable("shutting_down", "the sidecar is shutting down", retry_after)
            }
            Refusal::IdentityUnavailable => unavailable(
                "svid_unavailable",
                "the workload identity is not available yet",
                retry_after,
            ),
            Refusal::Revoked(Revoked::Token(_)) => {
                unauthorized("token_revoked", "the token has been revoked")
            }
            Refusal::Revoked(Revoked::Agent(_)) => forbidden(
                "agent_revoked",
                "an agent acting for the user has been revoked",
            ),
            Refusal::AuditUnavailable(_) => unavailable(
                "audit_unavailable",
                "the request cannot be audited right now",
                retry_after,
            ),
        }
    }
}

/// What the caller is told when a credential backend refused or failed: the kind of
/// failure, never the backend's own message or a secret.
fn credential_denial(e: &CredentialError, retry_after: Option<u64>) -> Denial {
    match e {
        CredentialError::Unsupported(_) => forbidden(
            "credential_scope",
            "this request cannot be made with a scoped credential",
        ),
        CredentialError::OutsideGrant(_) => forbidden(
            "outside_grant",
            "the request is outside the permission intersection",
        ),
        CredentialError::NothingGranted => forbidden(
            "grant_unmapped",
            "the grant gives no access to this destination",
        ),
        CredentialError::UnsafeGrantEntry(_) => forbidden(
            "grant_unusable",
            "the grant cannot be turned into a credential",
        ),
        CredentialError::PolicyTooLarge(_) => forbidden(
            "session_policy_too_large",
            "the grant is too large for a scoped credential",
        ),
        CredentialError::Unavailable(_) => unavailable(
            "credential_unavailable",
            "the credential service is unavailable",
            retry_after,
        ),
        CredentialError::Refused { .. } => bad_gateway(
            "credential_refused",
            "the credential service refused the request",
        ),
        CredentialError::InvalidResponse(_) => bad_gateway(
            "credential_invalid_response",
            "the credential service answered unexpectedly",
        ),
        CredentialError::RuleRefused(rule) => Denial {
            description: Cow::Owned(rule.clone()),
            ..forbidden("filter_refused", "")
        },
        CredentialError::BadVendRequest(what) => Denial {
            description: Cow::Owned(what.clone()),
            ..bad_request("vend_body_invalid", "")
        },
    }
}

fn bad_request(reason: &'static str, description: &'static str) -> Denial {
    Denial {
        status: 400,
        reason,
        error: "invalid_request",
        description: description.into(),
        retry_after: None,
        www_authenticate: None,
        body: None,
    }
}

/// 502: a peer (token service, credential service, MCP server) answered what actbridge
/// cannot use.
fn bad_gateway(reason: &'static str, description: &'static str) -> Denial {
    Denial {
        status: 502,
        reason,
        error: "server_error",
        description: description.into(),
        retry_after: None,
        www_authenticate: None,
        body: None,
    }
}

fn method_not_allowed(description: &'static str) -> Denial {
    Denial {
        status: 405,
        ..bad_request("method_not_allowed", description)
    }
}

fn unauthorized(reason: &'static str, description: &'static str) -> Denial {
    Denial {
        status: 401,
        reason,
        error: "invalid_token",
        description: description.into(),
        retry_after: None,
        www_authenticate: Some(format!(
            "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{description}\""
        )),
        body: None,
    }
}

fn forbidden(reason: &'static str, description: &'static str) -> Denial {
    Denial {
        status: 403,
        reason,
        error: "access_denied",
        description: description.into(),
        retry_after: None,
        www_authenticate: None,
        body: None,
    }
}

/// 503 with `Retry-After`: a dependency or a bound of the sidecar itself, not the caller.
fn unavailable(
    reason: &'static str,
    description: &'static str,
    retry_after: Option<u64>,
) -> Denial {
    Denial {
        status: 503,
        reason,
        error: "temporarily_unavailable",
        description: description.into(),
        retry_after,
        www_authenticate: None,
        body: None,
    }
}

fn server_error(reason: &'static str, description: &'static str) -> Denial {
    Denial {
        status: 500,
        reason,
        error: "server_error",
        description: description.into(),
        retry_after: None,
        www_authenticate: None,
        body: None,
    }
}

/// What the caller is told about a bad token: enough to fix a client, nothing about keys.
fn token_description(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::TooLarge { .. } => "the token is too large",
        VerifyError::Malformed(_) => "the token is malformed",
        VerifyError::AlgorithmNotAllowed(_) => "the token's algorithm is not accepted",
        VerifyError::UntrustedIssuer => "the token's issuer is not trusted",
        VerifyError::MissingKeyId
        | VerifyError::UnknownKeyId(_)
        | VerifyError::KeyAlgorithmMismatch { .. } => "the token's signing key is not recognised",
        VerifyError::BadSignature => "the token's signature is invalid",
        VerifyError::Expired => "the token has expired",
        VerifyError::NotYetValid => "the token is not yet valid",
        VerifyError::WrongAudience => "the token is not meant for this service",
        VerifyError::TypeNotAccepted(_) | VerifyError::ClassNotAccepted(_) => {
            "the token is not an access token"
        }
        VerifyError::TimeOutOfRange(_) => "the token's times are out of range",
        VerifyError::InvalidClaim(_) => "the token's claims are invalid",
        VerifyError::ActorChainTooDeep(_) => "the token's delegation chain is too deep",
        VerifyError::ActNotIssued => "the token's delegation chain is not its issuer's",
        VerifyError::KeysUnavailable => "token verification is temporarily unavailable",
    }
}
