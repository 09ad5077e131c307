//! The `client_credentials` grant (RFC 6749 §4.4; Keycloak service accounts).

use super::{requested_scopes, sign};
use crate::sts::claims::{Envelope, TokenResponse, add_service_account_profile, now};
use crate::sts::form::Form;
use crate::sts::realm::Client;
use crate::sts::refusal::Refusal;
use crate::sts::service::TokenService;

/// Issues a token for the client's own service account: `sub` = the service account's
/// stable UUID, `azp` = `client_id` = the client.
pub(super) fn grant(
    svc: &TokenService,
    client: &Client,
    form: &Form,
) -> Result<TokenResponse, Refusal> {
    if client.is_public() {
        return Err(Refusal::PublicClientServiceAccount);
    }
    let Some(sub) = client.service_account else {
        return Err(Refusal::ServiceAccountDisabled);
    };
    let scope = requested_scopes(client, form)?;
    let iat = now();
    let exp = iat + svc.realm().access_token_lifespan.as_secs();
    let issuer = svc.issuer();
    let envelope = Envelope {
        issuer: &issuer,
        azp: &client.client_id,
        audiences: &client.audiences,
        iat,
        exp,
        scope: &scope,
    };
    let mut claims = envelope.claims(&sub.to_string());
    add_service_account_profile(&mut claims, client);
    let token = sign(svc, claims)?;
    tracing::info!(client_id = %client.client_id, "client_credentials grant issued");
    Ok(TokenResponse::new(token, iat, exp, &scope))
}
