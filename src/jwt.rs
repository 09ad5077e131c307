//! Token verification: JWKS fetch, cache and refresh; the claim model with the nested
//! `act` chain; a bounded cache of verified tokens keyed by a SHA-256 of the token. Only
//! access tokens pass: an ID, refresh or logout token signed by the same issuer is
//! refused (`issuers[].token_types`).
//!
//! Knows nothing of Envoy or of requests: a token string in, a [`VerifiedToken`] or a
//! [`VerifyError`] out.

mod claims;
mod error;
mod jwks;
mod segments;
mod unique;
mod verifier;

pub use claims::{Actor, VerifiedToken};
pub use error::VerifyError;
pub use jwks::JwksStore;
pub use verifier::{AudienceProfile, Verifier};

#[cfg(test)]
mod tests;
