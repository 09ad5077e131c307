/// Why a token could not be obtained from the token service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// Connection failure, timeout, HTTP 5xx or 429: the request may succeed later.
    #[error("token service unavailable: {0}")]
    Unavailable(String),
    /// The token service refused with an OAuth error (`invalid_grant`, `invalid_target`, …).
    #[error("token service refused: {error} ({description})")]
    Refused {
        /// HTTP status of the refusal.
        status: u16,
        /// The OAuth `error` code.
        error: String,
        /// The `error_description`, or empty.
        description: String,
    },
    /// The token service did not accept actbridge's own client authentication (HTTP 401:
    /// a wrong secret or key, a client it does not know). The operator's to fix; no caller
    /// can.
    #[error("token service rejected actbridge's client: {error} ({description})")]
    ClientRejected {
        /// The OAuth `error` code (`invalid_client`, `unauthorized_client`).
        error: String,
        /// The `error_description`, or empty.
        description: String,
    },
    /// The answer was not an RFC 6749 token response or error.
    #[error("token service answered unexpectedly: {0}")]
    InvalidResponse(String),
    /// The client assertion could not be signed.
    #[error("client authentication failed locally: {0}")]
    ClientAuth(String),
}

impl ExchangeError {
    /// Stable snake_case reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            ExchangeError::Unavailable(_) => "sts_unavailable",
            ExchangeError::Refused { .. } => "exchange_refused",
            ExchangeError::ClientRejected { .. } => "client_rejected",
            ExchangeError::InvalidResponse(_) => "sts_invalid_response",
            ExchangeError::ClientAuth(_) => "client_auth_failed",
        }
    }
}
