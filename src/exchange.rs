//! The RFC 8693 token-exchange client (Keycloak dialect): client authentication
//! (`client_secret_post`, `client_secret_basic`, `private_key_jwt`), actbridge's own
//! actor token (client credentials, cached), and the exchanged-token cache with
//! single-flight.
//!
//! Not the `oauth2` crate: it has no RFC 8693 grant and no `private_key_jwt` client
//! authentication, and its reqwest integration pins another reqwest major version; one
//! form post serves both grants used here.

mod client_auth;
mod error;
mod exchanger;
mod token_client;

pub(crate) use client_auth::authenticate as authenticate_client;
pub use error::ExchangeError;
pub use exchanger::{Exchanger, IssuedToken};
pub use token_client::MAX_EXPIRES_IN_SECS;
pub(crate) use token_client::clip;

/// The token endpoint's answer (HTTP `status`, `body`) read exactly as the exchanger
/// reads it, as of `now` (Unix seconds): the issued token, or the typed error the
/// exchange would fail with. No subject-token cap and no cache skew apply here. For the
/// fuzz target `peer` and tests; the exchanger itself calls the same two steps.
///
/// ```text
/// 200 {"access_token":"eyJ…","token_type":"Bearer","expires_in":300}   → Ok, expires_at = now + 300
/// 200 {…,"expires_in":5000000000000000000}                            → Err(InvalidResponse)
/// 400 {"error":"invalid_grant"}                                       → Err(Refused)
/// ```
pub fn parse_token_response(
    status: u16,
    body: &[u8],
    now: u64,
) -> Result<IssuedToken, ExchangeError> {
    let resp = token_client::parse_answer(status, body)?;
    Ok(IssuedToken::new(resp, now, None, std::time::Duration::ZERO))
}

#[cfg(test)]
mod tests;
