//! The `password` grant (RFC 6749 §4.3; Keycloak "direct access grants").

use super::{issue_to_client, requested_scopes};
use crate::claims::{TokenResponse, add_user_profile};
use crate::client_auth::secrets_equal;
use crate::form::Form;
use crate::realm::Client;
use crate::refusal::Refusal;
use crate::service::TokenService;

/// Logs a user in through `client`; the token's `aud` is the client's `audiences`.
pub(super) fn grant(
    svc: &TokenService,
    client: &Client,
    form: &Form,
) -> Result<TokenResponse, Refusal> {
    if !client.direct_access_grants {
        return Err(Refusal::DirectGrantsDisabled);
    }
    let scope = requested_scopes(client, form)?;
    let username = form.get("username").unwrap_or_default();
    let password = form.get("password").unwrap_or_default();
    // Compare against a fixed dummy when the user is unknown, so that the answer takes as
    // long for a wrong username as for a wrong password.
    let user = svc.realm().user(username);
    let expected = user.map_or("\u{0}unknown-user", |u| u.password.as_str());
    let password_ok = secrets_equal(password, expected);
    let user = match user {
        Some(u) if password_ok && !password.is_empty() => u,
        _ => {
            tracing::info!(client_id = %client.client_id, "password grant refused: invalid user credentials");
            return Err(Refusal::InvalidUserCredentials);
        }
    };

    let response = issue_to_client(svc, client, &scope, &user.id.to_string(), |claims| {
        add_user_profile(claims, user);
        if !client.may_act.is_empty() {
            // RFC 8693 §4.4: who may act for this subject; several actors as an array.
            let actors: Vec<serde_json::Value> = client
                .may_act
                .iter()
                .map(|id| serde_json::json!({ "client_id": id }))
                .collect();
            claims.insert("may_act".into(), serde_json::Value::Array(actors));
        }
    })?;
    tracing::info!(client_id = %client.client_id, user = %user.username, "password grant issued");
    Ok(response)
}
