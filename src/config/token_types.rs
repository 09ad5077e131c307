//! `issuers[].token_types`: which kinds of token an issuer's signature makes acceptable
//! as a bearer access token, as written and validated. An issuer signs more than access
//! tokens (ID tokens, refresh tokens, logout tokens); each has the issuer's signature and
//! may carry the right `aud`, but only an access token grants access (RFC 8725 §3.11,
//! RFC 9068 §2.1, §4).
//!
//! ```text
//! issuers:
//!   - issuer: https://keycloak.example.com/realms/demo
//!     token_types:
//!       header: [JWT, at+jwt]   # default; the JOSE header `typ`, case-insensitive
//!       claim: [Bearer]         # default; Keycloak's payload `typ`, case-insensitive
//! ```
//!
//! A token without the header `typ`, or without the claim, is accepted: many issuers set
//! neither, and only Keycloak writes the claim.

use serde::Deserialize;

use super::ConfigError;

/// The JOSE header `typ` values accepted by default: a JWT (Keycloak and most issuers
/// write `JWT`) and an RFC 9068 access token (`at+jwt`, or `application/at+jwt`).
const DEFAULT_HEADER: [&str; 2] = ["JWT", "at+jwt"];

/// The payload `typ` values accepted by default: Keycloak's access tokens. Its ID,
/// refresh, offline and logout tokens (`ID`, `Refresh`, `Offline`, `Logout`) and its
/// DPoP-bound access tokens (`DPoP`, whose proof actbridge does not check) are refused.
const DEFAULT_CLAIM: [&str; 1] = ["Bearer"];

/// `issuers[].token_types`: the token types accepted from this issuer.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTokenTypes {
    /// Accepted values of the JOSE header's `typ` (RFC 7515 §4.1.9), compared
    /// case-insensitively, a value without `/` standing for `application/` + the value
    /// (so `at+jwt` also accepts `application/at+jwt`). A token without `typ` is always
    /// accepted; any other value (`logout+jwt`, `dpop+jwt`, `secevent+jwt`, `JOSE`, …) is
    /// refused (401 `token_type_not_accepted`). Must not be empty. Default
    /// `[JWT, at+jwt]`.
    #[serde(default)]
    pub header: Option<Vec<String>>,
    /// Accepted values of the payload's `typ` claim, which Keycloak writes to say what a
    /// token is for (`Bearer` for an access token; `ID`, `Refresh`, `Offline`, `Logout`,
    /// `DPoP` otherwise), compared case-insensitively as Keycloak does. A token without
    /// the claim (other issuers do not write it) is always accepted; any other value is
    /// refused (401 `token_class_not_accepted`). Must not be empty. Default `[Bearer]`.
    #[serde(default)]
    pub claim: Option<Vec<String>>,
}

/// The validated `issuers[].token_types`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTypes {
    /// Accepted header `typ` values as media types: lower case, `application/` added
    /// to a value without `/`.
    header: Vec<String>,
    /// Accepted payload `typ` values, as written (compared ignoring ASCII case).
    claim: Vec<String>,
}

impl TokenTypes {
    /// Whether the JOSE header `typ` value `typ` is accepted (RFC 7515 §4.1.9: a media
    /// type, case-insensitive, `application/` implied when it holds no `/`).
    pub fn accepts_header(&self, typ: &str) -> bool {
        self.header.iter().any(|accepted| match typ.contains('/') {
            true => accepted.eq_ignore_ascii_case(typ),
            false => accepted
                .strip_prefix("application/")
                .is_some_and(|subtype| subtype.eq_ignore_ascii_case(typ)),
        })
    }

    /// Whether the payload `typ` claim value `typ` is accepted (ASCII case ignored, as
    /// Keycloak's own `TokenVerifier.TokenTypeCheck` does).
    pub fn accepts_claim(&self, typ: &str) -> bool {
        self.claim.iter().any(|c| c.eq_ignore_ascii_case(typ))
    }
}

/// Validates `key` (`issuers[i].token_types`); an absent section gets the defaults.
pub(super) fn validate_token_types(
    key: &str,
    raw: Option<&RawTokenTypes>,
) -> Result<TokenTypes, ConfigError> {
    let raw_header = raw.and_then(|r| r.header.as_deref());
    let raw_claim = raw.and_then(|r| r.claim.as_deref());
    let header = values(&format!("{key}.header"), raw_header, &DEFAULT_HEADER)?
        .into_iter()
        .map(|(k, v)| media_type(&k, &v))
        .collect::<Result<Vec<_>, _>>()?;
    let claim = values(&format!("{key}.claim"), raw_claim, &DEFAULT_CLAIM)?
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    Ok(TokenTypes { header, claim })
}

/// The list at `key` with each entry's own key, or the defaults. An empty list is an
/// error rather than "accept nothing" or "accept anything"; so is an empty or
/// non-printable entry.
fn values(
    key: &str,
    list: Option<&[String]>,
    default: &[&str],
) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(list) = list else {
        return Ok(default
            .iter()
            .map(|v| (key.to_string(), v.to_string()))
            .collect());
    };
    if list.is_empty() {
        return Err(ConfigError::invalid(
            key,
            "must not be empty: list the accepted values (a token without `typ` is always accepted)",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            let k = format!("{key}[{i}]");
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::invalid(
                    k,
                    format_args!("`{v}` is not a token type (printable ASCII without spaces)"),
                ));
            }
            Ok((k, v.clone()))
        })
        .collect()
}

/// A header `typ` as the media type it stands for.
fn media_type(key: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.to_ascii_lowercase();
    match v.split('/').count() {
        1 => Ok(format!("application/{v}")),
        2 if !v.starts_with('/') && !v.ends_with('/') => Ok(v),
        _ => Err(ConfigError::invalid(
            key,
            format_args!("`{v}` is not a media type (`subtype` or `type/subtype`)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(header: &[&str], claim: &[&str]) -> TokenTypes {
        let raw = RawTokenTypes {
            header: Some(header.iter().map(|s| s.to_string()).collect()),
            claim: Some(claim.iter().map(|s| s.to_string()).collect()),
        };
        validate_token_types("issuers[0].token_types", Some(&raw)).unwrap()
    }

    #[test]
    fn the_defaults_accept_jwt_and_at_jwt_headers_and_the_bearer_claim() {
        let t = validate_token_types("k", None).unwrap();
        assert_eq!(t, types(&["JWT", "at+jwt"], &["Bearer"]));
        for typ in [
            "JWT",
            "jwt",
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "application/jwt",
        ] {
            assert!(t.accepts_header(typ), "{typ}");
        }
        for typ in [
            "JOSE",
            "dpop+jwt",
            "logout+jwt",
            "",
            "application/",
            "text/jwt",
        ] {
            assert!(!t.accepts_header(typ), "{typ}");
        }
        assert!(t.accepts_claim("Bearer") && t.accepts_claim("bearer"));
        for typ in ["ID", "Refresh", "Logout", "Offline", "DPoP", ""] {
            assert!(!t.accepts_claim(typ), "{typ}");
        }
    }

    #[test]
    fn configured_values_replace_the_defaults() {
        let t = types(&["application/AT+JWT"], &["Bearer", "DPoP"]);
        assert!(t.accepts_header("at+jwt"));
        assert!(!t.accepts_header("JWT"));
        assert!(t.accepts_claim("DPoP"));
        assert!(!t.accepts_claim("ID"));
    }
}
