//! Client authentication at the token endpoint (RFC 6749 §2.3.1, RFC 7523 §2.2):
//! `client_secret_post`, `client_secret_basic`, `private_key_jwt` and SPIFFE JWT-SVIDs
//! as client assertions; public clients name themselves with `client_id` alone.
//!
//! As in Keycloak, a client authenticates only with the method it is registered for (a
//! secret client sending an assertion, or a key client sending a secret, is an unknown
//! client), and a form `client_id` / `client_secret` overrides the Basic header's.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::client_assertion;
use super::form::{BasicAuth, Form};
use super::realm::{Client, Credential};
use super::refusal::Refusal;
use super::service::TokenService;

/// Authenticates the client of a token request.
pub(crate) async fn authenticate<'s>(
    svc: &'s TokenService,
    form: &Form,
    authorization: Option<&str>,
) -> Result<&'s Client, Refusal> {
    if form.get("client_assertion").is_some() || form.get("client_assertion_type").is_some() {
        return client_assertion::authenticate(svc, form).await;
    }

    let (header_id, header_secret) = match BasicAuth::parse(authorization) {
        BasicAuth::Credentials { client_id, secret } => (Some(client_id), Some(secret)),
        // Keycloak answers a bare 401 Basic challenge unless the form names the client.
        BasicAuth::Malformed if form.get("client_id").is_none() => {
            return Err(Refusal::UnknownClient);
        }
        BasicAuth::Malformed | BasicAuth::Absent => (None, None),
    };
    let client_id = form
        .get("client_id")
        .map(str::to_owned)
        .or(header_id)
        .ok_or(Refusal::MissingClientId)?;
    let secret = form
        .get("client_secret")
        .map(str::to_owned)
        .or(header_secret);

    let client = svc
        .realm()
        .client(&client_id)
        .ok_or(Refusal::UnknownClient)?;
    match &client.credential {
        Credential::Public => Ok(client),
        Credential::Key(_) | Credential::JwtSvid => Err(Refusal::UnknownClient),
        Credential::Secret(expected) => match secret {
            Some(given) if secrets_equal(&given, expected) => Ok(client),
            _ => Err(Refusal::BadClientSecret),
        },
    }
}

/// Constant-time secret comparison. Both sides are hashed first so that neither the
/// content nor the length of the registered secret leaks through timing.
pub(crate) fn secrets_equal(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}
