//! The `client_credentials` grant (RFC 6749 §4.4; Keycloak service accounts).

use super::{issue_to_client, requested_scopes};
use crate::claims::{TokenResponse, add_service_account_profile};
use crate::form::Form;
use crate::realm::Client;
use crate::refusal::Refusal;
use crate::service::TokenService;

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
    let response = issue_to_client(svc, client, &scope, &sub.to_string(), |claims| {
        add_service_account_profile(claims, client);
    })?;
    tracing::info!(client_id = %client.client_id, "client_credentials grant issued");
    Ok(response)
}
