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
pub(crate) use token_client::{clip, describe_transport};
