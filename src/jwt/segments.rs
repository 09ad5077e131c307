//! Splitting a compact JWS and reading its header and payload *before* the signature is
//! checked — only to choose the issuer and key. Nothing read here is trusted until
//! `jsonwebtoken` has verified the signature.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::VerifyError;

/// The header fields actbridge looks at. `alg` is kept as a string so that `none`,
/// HMAC or unknown names are refused with a precise reason.
#[derive(Debug, Deserialize)]
pub(super) struct RawHeader {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
}

/// The issuer claim, read unverified to pick the issuer's keys.
#[derive(Debug, Deserialize)]
struct IssOnly {
    #[serde(default)]
    iss: Option<serde_json::Value>,
}

/// The header and (unverified) `iss` of a compact JWS.
pub(super) struct Peeked {
    pub header: RawHeader,
    pub iss: Option<String>,
}

pub(super) fn peek(token: &str) -> Result<Peeked, VerifyError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed("not three segments"));
    };
    if h.is_empty() || p.is_empty() {
        return Err(VerifyError::Malformed("empty segment"));
    }
    // `alg: none` tokens often arrive with an empty signature; they are refused below by
    // the algorithm check, which gives the operator the precise reason.
    let _ = s;
    let header_bytes = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| VerifyError::Malformed("header is not base64url"))?;
    let header: RawHeader = serde_json::from_slice(&header_bytes)
        .map_err(|_| VerifyError::Malformed("header is not a JWS header"))?;
    let payload_bytes = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| VerifyError::Malformed("payload is not base64url"))?;
    let iss: IssOnly = serde_json::from_slice(&payload_bytes)
        .map_err(|_| VerifyError::Malformed("payload is not a JSON object"))?;
    let iss = match iss.iss {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => None,
    };
    Ok(Peeked { header, iss })
}
