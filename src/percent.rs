//! The one percent-decoder (RFC 3986 §2.1), strict: a `%` must start two hex digits,
//! and text must decode to UTF-8. The request path (`http_path`), the filtering proxy's
//! parameters and the S3 key all read escapes here, so no two parts of actbridge read
//! one spelling two ways.
//!
//! (The filtering proxy's search for respelled names decodes leniently on purpose, as
//! the most forgiving server would: it looks for what a strict reading refuses; it
//! reads nothing.)
//!
//! Hand-written over a few lines: the `percent-encoding` crate passes a malformed
//! escape through as text (`%zz` stays `%zz`), which a server may read otherwise, and
//! loses whether a byte was escaped, which the path rules need (an escaped `/` is not a
//! separator to one server and is to another).

/// Why `%` escapes could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PercentError {
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The bytes are not UTF-8.
    NotUtf8,
}

/// One byte of the decoded text, and how it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Written as itself.
    Raw(u8),
    /// Written as `%XX`.
    Escaped(u8),
}

/// Each byte of `raw` decoded, saying whether it was escaped; an error at the first `%`
/// that does not start two hex digits.
pub(crate) fn units(raw: &str) -> impl Iterator<Item = Result<Unit, PercentError>> + '_ {
    let bytes = raw.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let b = *bytes.get(i)?;
        if b != b'%' {
            i += 1;
            return Some(Ok(Unit::Raw(b)));
        }
        let (Some(h), Some(l)) = (
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) else {
            // Stop after the error: nothing past it is read.
            i = bytes.len();
            return Some(Err(PercentError::BadEscape));
        };
        i += 3;
        Some(Ok(Unit::Escaped((h << 4) | l)))
    })
}

/// Whether every `%` in `raw` starts an escape.
pub(crate) fn check(raw: &str) -> Result<(), PercentError> {
    units(raw).try_for_each(|u| u.map(|_| ()))
}

/// `raw` decoded to text.
pub(crate) fn decode(raw: &str) -> Result<String, PercentError> {
    let bytes = units(raw)
        .map(|u| {
            u.map(|u| match u {
                Unit::Raw(b) | Unit::Escaped(b) => b,
            })
        })
        .collect::<Result<Vec<u8>, _>>()?;
    String::from_utf8(bytes).map_err(|_| PercentError::NotUtf8)
}

/// One hex digit's value (`u8::from_str_radix` would take a leading `+`).
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_read_strictly() {
        assert_eq!(decode("a%20b%2Fc").unwrap(), "a b/c");
        assert_eq!(decode("%C3%A9t%C3%A9").unwrap(), "été");
        assert_eq!(decode("plain").unwrap(), "plain");
        for bad in ["%", "%2", "%zz", "a%+1", "a%-1", "%%41", "%4"] {
            assert_eq!(decode(bad), Err(PercentError::BadEscape), "{bad}");
        }
        assert_eq!(decode("%FF%FE"), Err(PercentError::NotUtf8));
        let seen: Vec<Unit> = units("a%2F").map(Result::unwrap).collect();
        assert_eq!(seen, [Unit::Raw(b'a'), Unit::Escaped(b'/')]);
    }

    /// The same as the `percent-encoding` crate wherever the escapes are well formed.
    #[test]
    fn it_reads_well_formed_escapes_as_the_percent_encoding_crate_does() {
        let mut x: u32 = 7;
        for _ in 0..5000 {
            let len = (x % 12) as usize;
            let mut s = String::new();
            for _ in 0..len {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let b = (x >> 16) as u8;
                if x.is_multiple_of(3) {
                    s.push_str(&format!("%{b:02X}"));
                } else if b.is_ascii_alphanumeric() {
                    s.push(b as char);
                }
            }
            let theirs = percent_encoding::percent_decode_str(&s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .ok();
            assert_eq!(decode(&s).ok(), theirs, "{s}");
            x = x.wrapping_add(1);
        }
    }
}
