//! RFC 7009 token revocation at `/protocol/openid-connect/revoke`, as Keycloak's
//! `TokenRevocationEndpoint` for access tokens: the client authenticates as at the token
//! endpoint, no parameter may repeat, `token` is required; a token that does not verify
//! is answered 200 `{"error":"invalid_token"}` (an invalid token is no error, RFC 7009
//! §2.2); a token issued to another client (`azp`) is refused 400 "Unmatching clients";
//! otherwise its `jti` is revoked until its `exp` and the answer is 200 with an empty
//! body. A revoked token introspects as inactive and is refused as a token-exchange
//! subject or actor token.
//!
//! ```text
//! POST /realms/demo/protocol/openid-connect/revoke
//! client_id=…&client_secret=…&token=eyJ…
//! 200 (empty)
//! ```

use serde_json::Value;

use super::claims::now;
use super::client_auth;
use super::form::Form;
use super::refusal::Refusal;
use super::service::TokenService;
use super::verify::verify_own;

/// Revokes the token of one request, or refuses.
pub(crate) async fn revoke(
    svc: &TokenService,
    form: &Form,
    authorization: Option<&str>,
) -> Result<(), Refusal> {
    let client = client_auth::authenticate(svc, form, authorization).await?;
    if form.has_duplicates() {
        return Err(Refusal::DuplicatedParameter);
    }
    let token = form
        .get("token")
        .ok_or(Refusal::TokenNotProvided("Token not provided"))?;
    // Verified without the revocation check: revoking twice is no error. A `typ` other
    // than Bearer fails here too (Keycloak: 400 unsupported_token_type; no such token is
    // issued here).
    let Some(claims) = verify_own(svc.signing_key(), &svc.issuer(), token) else {
        return Err(Refusal::RevokeInvalidToken);
    };
    let issued_for = claims.get("azp").and_then(Value::as_str);
    match issued_for {
        None => return Err(Refusal::RevokeInvalidToken),
        Some(azp) if azp != client.client_id => return Err(Refusal::UnmatchingClients),
        Some(_) => {}
    }
    let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
        return Err(Refusal::RevokeInvalidToken);
    };
    let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
    svc.revoked()
        .revoke(jti, exp, now())
        .map_err(|_| Refusal::RevocationsFull)?;
    tracing::info!(client_id = %client.client_id, "access token revoked");
    Ok(())
}
