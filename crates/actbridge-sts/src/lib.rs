//! The embedded RFC 8693 token service, speaking Keycloak's dialect: the default issuer of a
//! one-machine run and the peer of the tests.
//!
//! It serves one realm (users and clients from a YAML realm file, see [`Realm`]) under
//! Keycloak's paths, signs RS256 access tokens shaped like Keycloak's, and implements the
//! `password`, `client_credentials` and token-exchange grants, the last with Keycloak's
//! standard token exchange (V2) rules plus delegation (`actor_token` → nested `act`),
//! RFC 7662 introspection and RFC 7009 revocation of access tokens.
//! Refusals use Keycloak's status codes, `error` codes and descriptions.
//!
//! # Layout
//!
//! - `service`: [`TokenService`] (realm + key + counters) and serving with graceful shutdown.
//! - `http`: the axum routes — discovery, JWKS, token, introspection and revocation
//!   endpoints.
//! - `grants`: the token-endpoint pipeline, one file per grant.
//! - `client_auth`, `client_assertion`: client authentication (secret post/basic,
//!   `private_key_jwt` with a single-use `jti` cache).
//! - `jwt_svid`: SPIFFE JWT-SVIDs as client assertions, checked against the trust
//!   domain's JWT bundle.
//! - `form`: form body and Basic header decoding.
//! - `claims`: claim building and the token response.
//! - `introspection`: RFC 7662 introspection (`/token/introspect`).
//! - `revocation`, `revoked`: RFC 7009 revocation (`/revoke`) and the bounded set of
//!   revoked `jti`s that introspection and token exchange consult.
//! - `verify`: verification of tokens this service issued (and not revoked).
//! - `keys`: the signing key (generated or PEM, `kid` = RFC 7638 thumbprint) and client keys.
//! - `realm`: the realm file, raw serde types and validation.
//! - `refusal`: every refusal, mapped once to Keycloak's status/code/description.
//! - `error`: [`StsError`], start-up errors.
//!
//! ```text
//! let realm = Realm::from_yaml_file(Path::new("demo/realm.yaml"))?;
//! let sts = TokenService::new(realm, "http://127.0.0.1:8180", None)?;
//! sts.clone().serve(TcpListener::bind("127.0.0.1:8180").await?, shutdown).await?;
//! ```

#![warn(unreachable_pub)]

mod claims;
mod client_assertion;
mod client_auth;
mod error;
mod form;
mod grants;
mod http;
mod introspection;
mod jwt_svid;
mod keys;
pub mod pem;
mod realm;
mod refusal;
mod revocation;
mod revoked;
mod service;
mod verify;

pub use error::StsError;
pub use realm::Realm;
pub use service::{StsStats, TokenService};

#[cfg(test)]
mod tests;
