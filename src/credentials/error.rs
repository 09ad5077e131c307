//! Why a credential backend refused or failed. Mapped to statuses in
//! `pipeline::refusal` (the one place); the messages here are for the operator's log
//! and never hold a secret.

/// A credential backend's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The request is not one this backend can scope (a write, another bucket, a
    /// presigned URL, …): refused before any backend call.
    #[error("request not supported by this credential: {0}")]
    Unsupported(String),
    /// The request reaches outside what the grant maps to: refused before any backend
    /// call.
    #[error("outside the grant: {0}")]
    OutsideGrant(String),
    /// A grant entry is not a safe name (wildcards, `/`, `..`): the policy produced
    /// something no credential may be built from.
    #[error("grant entry `{0}` is not a safe name")]
    UnsafeGrantEntry(String),
    /// The grant maps to no resource of this backend.
    #[error("the grant maps to nothing this credential can reach")]
    NothingGranted,
    /// The session policy exceeds the backend's size limit (found here, or reported by
    /// the backend, e.g. STS `PackedPolicyTooLarge`).
    #[error("session policy too large: {0}")]
    PolicyTooLarge(String),
    /// The backend could not be reached (connection refused, timeout, no base
    /// credentials).
    #[error("credential backend unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with a refusal (its error code, for the log).
    #[error("credential backend refused: {code}")]
    Refused {
        /// The backend's error code, e.g. `AccessDenied`.
        code: String,
    },
    /// The backend's answer could not be used.
    #[error("credential backend answered unexpectedly: {0}")]
    InvalidResponse(String),
    /// A filtering backend's rules do not allow the request; the message names the rule
    /// (or its absence) and is shown to the caller (no secret is in it).
    #[error("refused by the filter: {0}")]
    RuleRefused(String),
    /// A vending request asked for something this backend does not vend.
    #[error("cannot vend: {0}")]
    BadVendRequest(String),
}
