//! The token request as sent: `application/x-www-form-urlencoded` pairs (repeated keys kept,
//! since `audience` may repeat) and the RFC 6749 §2.3.1 `Authorization: Basic` header.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Parameters that may appear more than once (Keycloak's `TokenExchangeGrantType`
/// `SUPPORTED_DUPLICATED_PARAMETERS`).
const MULTI_VALUED: &[&str] = &["audience", "resource"];

/// A decoded form body.
#[derive(Debug, Default)]
pub(crate) struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// Decodes a form body (lossy on invalid UTF-8, like every form decoder).
    pub(crate) fn parse(body: &[u8]) -> Self {
        let pairs = url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Form { pairs }
    }

    /// The first value of `name`, if sent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether a single-valued parameter was sent more than once.
    pub(crate) fn has_duplicates(&self) -> bool {
        self.pairs.iter().enumerate().any(|(i, (k, _))| {
            !MULTI_VALUED.contains(&k.as_str()) && self.pairs[..i].iter().any(|(p, _)| p == k)
        })
    }
}

/// Credentials from an `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BasicAuth {
    /// No `Authorization` header.
    Absent,
    /// A header that is not a well-formed Basic credential.
    Malformed,
    /// `Basic base64(urlencode(id) ":" urlencode(secret))`, decoded.
    Credentials { client_id: String, secret: String },
}

impl BasicAuth {
    /// Parses the header value per RFC 6749 §2.3.1 (both halves form-urlencoded).
    pub(crate) fn parse(header: Option<&str>) -> Self {
        let Some(value) = header else {
            return BasicAuth::Absent;
        };
        let Some((scheme, rest)) = value.trim().split_once(' ') else {
            return BasicAuth::Malformed;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return BasicAuth::Malformed;
        }
        let Ok(decoded) = STANDARD.decode(rest.trim()) else {
            return BasicAuth::Malformed;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return BasicAuth::Malformed;
        };
        let Some((id, secret)) = text.split_once(':') else {
            return BasicAuth::Malformed;
        };
        match (form_decode(id), form_decode(secret)) {
            (Some(client_id), Some(secret)) => BasicAuth::Credentials { client_id, secret },
            _ => BasicAuth::Malformed,
        }
    }
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a byte.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        let raw = "spiffe%3A%2F%2Fdemo.example.com%2Fagent%2Fa:s%2Bcret+x";
        let header = format!("Basic {}", STANDARD.encode(raw));
        assert_eq!(
            BasicAuth::parse(Some(&header)),
            BasicAuth::Credentials {
                client_id: "spiffe://demo.example.com/agent/a".into(),
                secret: "s+cret x".into()
            }
        );
        assert_eq!(BasicAuth::parse(Some("Bearer abc")), BasicAuth::Malformed);
        assert_eq!(BasicAuth::parse(Some("Basic %%%")), BasicAuth::Malformed);
        assert_eq!(BasicAuth::parse(None), BasicAuth::Absent);
    }

    #[test]
    fn only_audience_and_resource_may_repeat() {
        assert!(!Form::parse(b"audience=a&audience=b&grant_type=x").has_duplicates());
        assert!(Form::parse(b"scope=a&scope=b").has_duplicates());
        assert_eq!(
            Form::parse(b"audience=a&audience=b").all("audience"),
            vec!["a", "b"]
        );
    }
}
