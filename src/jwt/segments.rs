//! Splitting a compact JWS and reading its header and payload *before* the signature is
//! checked — only to choose the issuer and key, and to refuse what no signature could
//! make acceptable (a repeated member name, `crit`). Nothing read here is trusted until
//! `jsonwebtoken` has verified the signature.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::VerifyError;
use super::unique::{NotUnique, unique_members};

/// The header fields actbridge looks at. `alg` is kept as a string so that `none`,
/// HMAC or unknown names are refused with a precise reason.
#[derive(Debug, Deserialize)]
pub(super) struct RawHeader {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    /// `crit` (RFC 7515 §4.1.11): the extensions a recipient must understand, or refuse
    /// the token. actbridge implements none, so any `crit` (even `null` or `[]`, which the
    /// RFC forbids) refuses the token — whoever signed it.
    #[serde(default, deserialize_with = "present")]
    pub crit: Option<serde_json::Value>,
    /// `typ` (RFC 7515 §4.1.9): what kind of JWT this is. Checked against the issuer's
    /// `token_types.header` before the signature; `null` or a non-string is malformed.
    #[serde(default, deserialize_with = "present")]
    pub typ: Option<serde_json::Value>,
}

/// `Some` for a field that is present, whatever its value (`null` included).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
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
    unique_members(&header_bytes).map_err(|e| match e {
        NotUnique::Duplicate => VerifyError::Malformed("header names a member twice"),
        NotUnique::NotJson => VerifyError::Malformed("header is not a JWS header"),
    })?;
    let header: RawHeader = serde_json::from_slice(&header_bytes)
        .map_err(|_| VerifyError::Malformed("header is not a JWS header"))?;
    if header.crit.is_some() {
        return Err(VerifyError::Malformed(
            "header names critical extensions (crit), which are not supported",
        ));
    }
    let payload_bytes = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| VerifyError::Malformed("payload is not base64url"))?;
    // The signature covers exactly this segment, and `jsonwebtoken` decodes the claims it
    // verifies from it: refusing duplicate names here refuses them in the verified
    // payload (once per token: a verified token is cached by its hash).
    unique_members(&payload_bytes).map_err(|e| match e {
        NotUnique::Duplicate => VerifyError::Malformed("payload names a claim twice"),
        NotUnique::NotJson => VerifyError::Malformed("payload is not a JSON object"),
    })?;
    let iss: IssOnly = serde_json::from_slice(&payload_bytes)
        .map_err(|_| VerifyError::Malformed("payload is not a JSON object"))?;
    let iss = match iss.iss {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => None,
    };
    Ok(Peeked { header, iss })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str) -> String {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"iss":"https://idp.example.com"}"#);
        format!("{}.{payload}.c2ln", URL_SAFE_NO_PAD.encode(header))
    }

    #[test]
    fn a_header_with_crit_is_refused_whatever_crit_holds() {
        for crit in [r#"["urn:example:x"]"#, r#"["b64"]"#, "[]", "null", "1"] {
            let h = format!(r#"{{"alg":"RS256","kid":"k","crit":{crit}}}"#);
            assert!(
                matches!(peek(&token(&h)), Err(VerifyError::Malformed(m)) if m.contains("crit")),
                "{crit}"
            );
        }
        let p = peek(&token(r#"{"alg":"RS256","kid":"k","jku":"http://x"}"#)).unwrap();
        assert_eq!(p.header.kid.as_deref(), Some("k"));
        assert_eq!(p.iss.as_deref(), Some("https://idp.example.com"));
    }
}
