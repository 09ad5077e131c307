//! The token endpoint's request pipeline, in Keycloak's order (`TokenEndpoint`):
//! grant type → client authentication → duplicated parameters → the grant.
//! One file per grant below.

mod client_credentials;
mod password;
mod token_exchange;

use super::claims::{Envelope, TokenResponse, now, scope_list};
use super::client_auth;
use super::form::Form;
use super::realm::Client;
use super::refusal::Refusal;
use super::service::TokenService;

/// `grant_type` of RFC 8693 token exchange.
pub(crate) const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 token type of an access token.
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The grants this service implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    /// `password`.
    Password,
    /// `client_credentials`.
    ClientCredentials,
    /// RFC 8693 token exchange.
    TokenExchange,
}

impl Grant {
    /// The grant named by a `grant_type` value, if implemented.
    pub(crate) fn parse(grant_type: &str) -> Option<Grant> {
        match grant_type {
            "password" => Some(Grant::Password),
            "client_credentials" => Some(Grant::ClientCredentials),
            TOKEN_EXCHANGE => Some(Grant::TokenExchange),
            _ => None,
        }
    }
}

/// Runs a token request whose grant type is already known to be implemented.
pub(crate) async fn run(
    svc: &TokenService,
    grant: Grant,
    form: &Form,
    authorization: Option<&str>,
) -> Result<TokenResponse, Refusal> {
    let client = client_auth::authenticate(svc, form, authorization).await?;
    if form.has_duplicates() {
        return Err(Refusal::DuplicatedParameter);
    }
    match grant {
        Grant::Password => password::grant(svc, client, form),
        Grant::ClientCredentials => client_credentials::grant(svc, client, form),
        Grant::TokenExchange => token_exchange::grant(svc, client, form),
    }
}

/// Scopes for `password` and `client_credentials`: the requested ones if given (each must
/// be one of the client's), else all the client's scopes (its defaults).
fn requested_scopes(client: &Client, form: &Form) -> Result<Vec<String>, Refusal> {
    let Some(scope) = form.get("scope") else {
        return Ok(client.scopes.clone());
    };
    let requested = scope_list(scope);
    if requested.iter().any(|s| !client.scopes.contains(s)) {
        return Err(Refusal::InvalidScopes(scope.to_string()));
    }
    Ok(requested)
}

/// A token issued straight to `client` (`password`, `client_credentials`): `aud` = the
/// client's `audiences`, the realm's lifespan, `sub` = `subject`; `profile` adds the
/// subject's own claims.
fn issue_to_client(
    svc: &TokenService,
    client: &Client,
    scope: &[String],
    subject: &str,
    profile: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Result<TokenResponse, Refusal> {
    let iat = now();
    let exp = iat + svc.realm().access_token_lifespan.as_secs();
    let issuer = svc.issuer();
    let envelope = Envelope {
        issuer: &issuer,
        azp: &client.client_id,
        audiences: &client.audiences,
        iat,
        exp,
        scope,
    };
    let mut claims = envelope.claims(subject);
    profile(&mut claims);
    let token = sign(svc, claims)?;
    Ok(TokenResponse::new(token, iat, exp, scope))
}

/// Signs claims with the service key; a failure is an internal error.
fn sign(
    svc: &TokenService,
    claims: serde_json::Map<String, serde_json::Value>,
) -> Result<String, Refusal> {
    svc.signing_key()
        .try_sign(&serde_json::Value::Object(claims))
        .map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            Refusal::Internal
        })
}
