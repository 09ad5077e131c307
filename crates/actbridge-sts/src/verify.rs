//! Verification of tokens this service issued (token exchange `subject_token` and
//! `actor_token`): RS256 signature with the service key, exact issuer, `exp` in the future
//! (no leeway, as Keycloak's default), and `typ` — when present — `Bearer`, so an ID or
//! refresh token is not taken as an access token. [`verify_live`] adds that the token has
//! not been revoked (`/revoke`).

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::claims::now;
use super::keys::SigningKey;
use super::service::TokenService;

/// As [`verify_own`] with the service's key and issuer, and `None` as well for a token
/// revoked at `/revoke` (by its `jti`).
pub(crate) fn verify_live(svc: &TokenService, token: &str) -> Option<Map<String, Value>> {
    let claims = verify_own(svc.signing_key(), &svc.issuer(), token)?;
    let revoked = claims
        .get("jti")
        .and_then(Value::as_str)
        .is_some_and(|jti| svc.revoked().is_revoked(jti, now()));
    (!revoked).then_some(claims)
}

/// The verified claims, or `None` for any failure (the caller answers with one fixed
/// description, as Keycloak does, never with the reason).
pub(crate) fn verify_own(
    key: &SigningKey,
    issuer: &str,
    token: &str,
) -> Option<Map<String, Value>> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    validation.validate_aud = false;
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, key.decoding(), &validation)
        .map_err(|e| tracing::debug!(error = %e, "token verification failed"))
        .ok()?;
    if data
        .header
        .kid
        .as_deref()
        .is_some_and(|kid| kid != key.kid())
    {
        return None;
    }
    match data.claims.get("typ") {
        None => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("Bearer") => {}
        Some(_) => return None,
    }
    data.claims.get("sub")?.as_str()?;
    Some(data.claims)
}
