/// Why a presented token was refused. Each variant has a stable reason code
/// ([`VerifyError::reason`]) used in logs and responses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Larger than `tokens.max_bytes`.
    #[error("token is larger than {limit} bytes")]
    TooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// Not three base64url segments, or a segment is not the JSON it must be.
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is not in the issuer's allow-list (this includes `none` and HMAC).
    #[error("algorithm `{0}` is not allowed")]
    AlgorithmNotAllowed(String),
    /// `iss` is missing or not a configured issuer.
    #[error("issuer is not trusted")]
    UntrustedIssuer,
    /// The header names no `kid`.
    #[error("token header has no kid")]
    MissingKeyId,
    /// No key with this `kid`, even after a JWKS re-fetch.
    #[error("no key with kid `{0}`")]
    UnknownKeyId(String),
    /// The key found for the `kid` is of another type than `alg` needs (key confusion).
    #[error("key `{kid}` cannot verify `{alg}`")]
    KeyAlgorithmMismatch {
        /// The key id.
        kid: String,
        /// The token's algorithm.
        alg: String,
    },
    /// The signature does not verify.
    #[error("signature is invalid")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("token is not yet valid")]
    NotYetValid,
    /// `aud` names none of the accepted audiences.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// The JOSE header's `typ` is not one the issuer's `token_types.header` lists: another
    /// kind of JWT (a logout token, a DPoP proof, a security event token, …), checked
    /// before the signature.
    #[error("token type `{0}` is not accepted")]
    TypeNotAccepted(String),
    /// The payload's `typ` claim (Keycloak's token class) is not one the issuer's
    /// `token_types.claim` lists: an ID, refresh, offline or logout token presented as an
    /// access token. Read only once the signature has verified.
    #[error("token class `{0}` is not accepted")]
    ClassNotAccepted(String),
    /// `exp`, `nbf` or `iat` is past the end of year 9999 (`253402300799`): no issuer
    /// means it, and later sums must not overflow.
    #[error("claim `{0}` is out of range")]
    TimeOutOfRange(&'static str),
    /// A required claim is absent or of the wrong type.
    #[error("claim `{0}` is missing or invalid")]
    InvalidClaim(&'static str),
    /// The `act` chain is deeper than `tokens.max_actor_chain`.
    #[error("actor chain is deeper than {0}")]
    ActorChainTooDeep(usize),
    /// An `act` claim from an issuer whose actors come from `azp`: its token service
    /// computes none, so a mapper wrote it and it proves nothing.
    #[error("the issuer computes no `act`; this token's came from elsewhere")]
    ActNotIssued,
    /// The issuer's keys could not be fetched (fail closed).
    #[error("signing keys of the issuer are unavailable")]
    KeysUnavailable,
}

impl VerifyError {
    /// Stable snake_case reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::TooLarge { .. } => "token_too_large",
            VerifyError::Malformed(_) => "token_malformed",
            VerifyError::AlgorithmNotAllowed(_) => "token_algorithm_not_allowed",
            VerifyError::UntrustedIssuer => "token_untrusted_issuer",
            VerifyError::MissingKeyId => "token_missing_kid",
            VerifyError::UnknownKeyId(_) => "token_unknown_kid",
            VerifyError::KeyAlgorithmMismatch { .. } => "token_key_algorithm_mismatch",
            VerifyError::BadSignature => "token_bad_signature",
            VerifyError::Expired => "token_expired",
            VerifyError::NotYetValid => "token_not_yet_valid",
            VerifyError::WrongAudience => "token_wrong_audience",
            VerifyError::TypeNotAccepted(_) => "token_type_not_accepted",
            VerifyError::ClassNotAccepted(_) => "token_class_not_accepted",
            VerifyError::TimeOutOfRange(_) => "token_time_out_of_range",
            VerifyError::InvalidClaim(_) => "token_invalid_claim",
            VerifyError::ActorChainTooDeep(_) => "token_actor_chain_too_deep",
            VerifyError::ActNotIssued => "token_act_not_issued",
            VerifyError::KeysUnavailable => "jwks_unavailable",
        }
    }
}
