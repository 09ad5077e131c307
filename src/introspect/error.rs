//! Why a live check did not pass.

/// The outcome of an introspection that is not "active".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntrospectError {
    /// The issuer answered `active: false`: revoked, logged out, expired or unknown.
    #[error("the issuer says the token is not active")]
    Inactive,
    /// The issuer answered `active: true` about another subject or issuer than the
    /// verified token names (the claim named).
    #[error("the introspection answer's `{0}` differs from the verified token's")]
    Mismatch(&'static str),
    /// No answer: connection failure, timeout, HTTP 5xx or 429.
    #[error("introspection endpoint unavailable: {0}")]
    Unavailable(String),
    /// The endpoint refused actbridge's request (HTTP 4xx): its client or endpoint is
    /// misconfigured.
    #[error("introspection endpoint refused the request: HTTP {status} {error}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The OAuth `error` (and description), or empty.
        error: String,
    },
    /// The answer is not an RFC 7662 response.
    #[error("introspection endpoint answered unexpectedly: {0}")]
    InvalidResponse(String),
    /// The token's issuer has no `introspection` section (config validation prevents it).
    #[error("the token's issuer has no introspection endpoint configured")]
    NotConfigured,
}
