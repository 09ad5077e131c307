//! The App JWT that authenticates actbridge as the GitHub App: RS256, `iss` = the App
//! id, `iat` 60 s in the past (GitHub's advice against clock drift), `exp` 9 minutes
//! ahead (GitHub accepts at most 10).

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::CredentialError;
use crate::clock::now_secs;

#[derive(Serialize)]
struct Claims {
    iss: String,
    iat: u64,
    exp: u64,
}

/// A fresh App JWT.
pub(super) fn sign(app_id: u64, key: &EncodingKey) -> Result<String, CredentialError> {
    let now = now_secs();
    let claims = Claims {
        iss: app_id.to_string(),
        iat: now.saturating_sub(60),
        exp: now + 9 * 60,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)
        .map_err(|e| CredentialError::Unavailable(format!("App JWT cannot be signed: {e}")))
}
