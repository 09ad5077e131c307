//! The bearer token of a request (RFC 6750 §2.1).

use http::HeaderValue;

use super::{Refusal, RequestFacts};

/// An `authorization` value carrying `token`; a token that is not a valid header value
/// (it came from the token service) is refused rather than forwarded.
pub(super) fn bearer_value(token: &str) -> Result<HeaderValue, Refusal> {
    HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| Refusal::UnforwardableToken)
}

/// The bytes of RFC 6750's `b64token` alphabet, as a table: every request's token is
/// checked, and a per-character test over `chars()` cost ~2 µs for a 1 kB JWT
/// (`make bench-observability`).
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=');
        i += 1;
    }
    table
};

/// The one `Bearer` credential of the `authorization` header. Several `authorization`
/// headers, another scheme, non-UTF-8 bytes or characters outside RFC 6750's `b64token`
/// alphabet are refused.
pub(super) fn bearer_token(req: &RequestFacts) -> Result<&str, Refusal> {
    let mut values = req.header_values("authorization");
    let Some(value) = values.next() else {
        return Err(Refusal::MissingToken);
    };
    if values.next().is_some() {
        return Err(Refusal::MalformedAuthorization);
    }
    let value = std::str::from_utf8(value).map_err(|_| Refusal::MalformedAuthorization)?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(Refusal::MalformedAuthorization)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::MalformedAuthorization);
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() || !token.bytes().all(|b| B64TOKEN[usize::from(b)]) {
        return Err(Refusal::MalformedAuthorization);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(auth: &[&[u8]]) -> RequestFacts {
        let mut h: Vec<(String, Vec<u8>)> = vec![
            (":authority".into(), b"a".to_vec()),
            (":method".into(), b"GET".to_vec()),
            (":path".into(), b"/".to_vec()),
        ];
        h.extend(
            auth.iter()
                .map(|v| ("authorization".to_string(), v.to_vec())),
        );
        RequestFacts::new(Some("inbound"), h).unwrap()
    }

    #[test]
    fn one_well_formed_bearer_is_accepted() {
        assert_eq!(
            bearer_token(&facts(&[b"Bearer abc.def-_~+/="])).unwrap(),
            "abc.def-_~+/="
        );
        assert_eq!(bearer_token(&facts(&[b"bearer  abc"])).unwrap(), "abc");
    }

    #[test]
    fn everything_else_is_refused() {
        assert_eq!(
            bearer_token(&facts(&[])).unwrap_err(),
            Refusal::MissingToken
        );
        for bad in [
            &b"Basic abc"[..],
            b"Bearer",
            b"Bearer ",
            b"Bearer a b",
            b"Bearer a\r\nx-injected: 1",
            b"Bearer \xff\xfe",
            b"Bearerabc",
        ] {
            assert_eq!(
                bearer_token(&facts(&[bad])).unwrap_err(),
                Refusal::MalformedAuthorization,
                "{bad:?}"
            );
        }
        assert_eq!(
            bearer_token(&facts(&[b"Bearer a", b"Bearer b"])).unwrap_err(),
            Refusal::MalformedAuthorization
        );
    }
}
