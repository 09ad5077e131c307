//! Claim building shared by the grants, shaped like Keycloak's access tokens:
//! `iss`, `sub`, `aud` (a string when one, an array when several, absent when none), `exp`,
//! `iat`, `jti`, `typ: "Bearer"`, `azp`, `scope`, and the user's profile claims.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::realm::{Client, User};

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A new token id.
pub(crate) fn new_jti() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `aud` as Keycloak writes it: absent, a string, or an array.
pub(crate) fn aud_value(audiences: &[String]) -> Option<Value> {
    match audiences {
        [] => None,
        [one] => Some(Value::String(one.clone())),
        many => Some(json!(many)),
    }
}

/// Whether the token's `aud` (string or array) contains `id`.
pub(crate) fn aud_contains(claims: &Map<String, Value>, id: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(a)) => a == id,
        Some(Value::Array(all)) => all.iter().any(|a| a.as_str() == Some(id)),
        _ => false,
    }
}

/// The space-separated scope string as a list (empty entries dropped, order kept, deduped).
pub(crate) fn scope_list(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
    }
    out
}

/// Depth of an `act` chain: 0 when absent, `None` when malformed (not nested objects, or a
/// level without a string `sub`).
pub(crate) fn act_depth(act: Option<&Value>) -> Option<usize> {
    let mut depth = 0;
    let mut current = act;
    while let Some(level) = current {
        let obj = level.as_object()?;
        obj.get("sub")?.as_str()?;
        depth += 1;
        current = obj.get("act");
    }
    Some(depth)
}

/// The claims every issued access token carries.
pub(crate) struct Envelope<'a> {
    /// `iss`.
    pub(crate) issuer: &'a str,
    /// `azp`: the client the token is issued to.
    pub(crate) azp: &'a str,
    /// `aud` entries.
    pub(crate) audiences: &'a [String],
    /// `iat`.
    pub(crate) iat: u64,
    /// `exp`.
    pub(crate) exp: u64,
    /// Granted scopes.
    pub(crate) scope: &'a [String],
}

impl Envelope<'_> {
    /// The common claims, to which a grant adds the subject's.
    pub(crate) fn claims(&self, sub: &str) -> Map<String, Value> {
        let mut c = Map::new();
        c.insert("exp".into(), json!(self.exp));
        c.insert("iat".into(), json!(self.iat));
        c.insert("jti".into(), json!(new_jti()));
        c.insert("iss".into(), json!(self.issuer));
        if let Some(aud) = aud_value(self.audiences) {
            c.insert("aud".into(), aud);
        }
        c.insert("sub".into(), json!(sub));
        c.insert("typ".into(), json!("Bearer"));
        c.insert("azp".into(), json!(self.azp));
        c.insert("scope".into(), json!(self.scope.join(" ")));
        c
    }
}

/// Adds a user's profile claims (`preferred_username`, `email`, `name`, `groups`).
pub(crate) fn add_user_profile(c: &mut Map<String, Value>, user: &User) {
    c.insert("preferred_username".into(), json!(user.username));
    if let Some(email) = &user.email {
        c.insert("email".into(), json!(email));
    }
    if let Some(name) = &user.name {
        c.insert("name".into(), json!(name));
    }
    c.insert("groups".into(), json!(user.groups));
}

/// Adds a service account's claims: `preferred_username = service-account-<client id>`,
/// lower-cased as Keycloak names the service account's user, and `client_id` (Keycloak's
/// service-account session note mapper).
pub(crate) fn add_service_account_profile(c: &mut Map<String, Value>, client: &Client) {
    c.insert(
        "preferred_username".into(),
        json!(format!(
            "service-account-{}",
            client.client_id.to_lowercase()
        )),
    );
    c.insert("client_id".into(), json!(client.client_id));
}

/// The successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Debug, Serialize)]
pub(crate) struct TokenResponse {
    /// The signed JWT.
    pub(crate) access_token: String,
    /// Seconds until `exp`.
    pub(crate) expires_in: u64,
    /// Keycloak sends 0 when no refresh token is issued.
    pub(crate) refresh_expires_in: u64,
    /// Always `Bearer`.
    pub(crate) token_type: &'static str,
    /// Only for token exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) issued_token_type: Option<&'static str>,
    /// Keycloak's `not-before-policy`.
    #[serde(rename = "not-before-policy")]
    pub(crate) not_before_policy: u64,
    /// Granted scopes, space-separated.
    pub(crate) scope: String,
}

impl TokenResponse {
    /// A response for a token that expires at `exp`.
    pub(crate) fn new(access_token: String, now: u64, exp: u64, scope: &[String]) -> Self {
        TokenResponse {
            access_token,
            expires_in: exp.saturating_sub(now),
            refresh_expires_in: 0,
            token_type: "Bearer",
            issued_token_type: None,
            not_before_policy: 0,
            scope: scope.join(" "),
        }
    }
}
