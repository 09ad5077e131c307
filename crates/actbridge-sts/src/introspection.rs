//! RFC 7662 token introspection at `/protocol/openid-connect/token/introspect`, as
//! Keycloak's `TokenIntrospectionEndpoint` and `AccessTokenIntrospectionProvider`:
//!
//! 1. the client authenticates as at the token endpoint; any failure is 401
//!    `invalid_request` "Authentication failed.", a public client 403;
//! 2. no parameter may repeat;
//! 3. `token` is required, `token_type_hint` (default `access_token`) must be one
//!    Keycloak has a provider for;
//! 4. a token that does not verify (signature, issuer, expiry, `typ`) or was revoked is
//!    `{"active":false}` — nothing says why;
//! 5. an active token answers its claims plus `client_id` (= `azp`), `username`
//!    (= `preferred_username`), `token_type: "Bearer"` and `active: true`.
//!
//! ```text
//! POST /realms/demo/protocol/openid-connect/token/introspect
//! Authorization: Basic …            token=eyJ…
//! 200 {"active":true,"sub":"8354…","iss":"…/realms/demo","exp":…,"jti":"…",
//!      "client_id":"spiffe://…/summarizer-tech","username":"alice","token_type":"Bearer",…}
//! ```

use serde_json::{Map, Value, json};

use super::client_auth;
use super::form::Form;
use super::refusal::Refusal;
use super::service::TokenService;
use super::verify::verify_live;

/// The `token_type_hint` values Keycloak has an introspection provider for.
const HINTS: &[&str] = &["access_token", "refresh_token", "requesting_party_token"];

/// The introspection response for one request, or the refusal.
pub(crate) async fn introspect(
    svc: &TokenService,
    form: &Form,
    authorization: Option<&str>,
) -> Result<Value, Refusal> {
    let client = client_auth::authenticate(svc, form, authorization)
        .await
        .map_err(|refusal| {
            tracing::debug!(reason = %refusal, "introspection client authentication failed");
            Refusal::IntrospectionAuthFailed
        })?;
    if client.is_public() {
        return Err(Refusal::IntrospectionClientNotAllowed);
    }
    if form.has_duplicates() {
        return Err(Refusal::DuplicatedParameter);
    }
    let token = form
        .get("token")
        .ok_or(Refusal::TokenNotProvided("Token not provided."))?;
    if form
        .get("token_type_hint")
        .is_some_and(|h| !HINTS.contains(&h))
    {
        return Err(Refusal::UnsupportedTokenTypeHint);
    }
    // No refresh or RPT tokens are issued here: whatever the hint, only a live access
    // token is active.
    Ok(match verify_live(svc, token) {
        Some(claims) => active(claims),
        None => json!({ "active": false }),
    })
}

/// The claims of an active token, with Keycloak's additions.
fn active(mut claims: Map<String, Value>) -> Value {
    if let Some(azp) = claims.get("azp").cloned() {
        claims.insert("client_id".into(), azp);
    }
    if !claims.contains_key("username")
        && let Some(name) = claims.get("preferred_username").cloned()
    {
        claims.insert("username".into(), name);
    }
    claims.insert("token_type".into(), json!("Bearer"));
    claims.insert("active".into(), json!(true));
    Value::Object(claims)
}
