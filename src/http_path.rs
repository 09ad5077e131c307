//! The one reading of a request path that every matcher and the policy use.
//!
//! Envoy normalises the path once (`normalize_path`, `merge_slashes`,
//! `path_with_escaped_slashes_action: REJECT_REQUEST` in the shipped bootstrap) and
//! forwards that path. actbridge judges the same bytes, decoded — and refuses, before
//! any matcher runs, every spelling whose meaning an upstream could read differently:
//! dot segments (`.`, `..`, also encoded) and segments ending in a dot or a space (which
//! Windows servers drop), encoded delimiters (`%2f`, `%5c`, `%3b`,
//! `%3f`, `%23`, `%25` — the last is double encoding), `;` path parameters (`..;`
//! included), backslashes, empty segments (`//`), control characters, and `%` escapes
//! that are not exactly two hex digits (`%+1`, `%g0`, a trailing `%`). What is left has
//! one meaning: decoded segments joined by `/`, which is what a server that decodes
//! its path (as every web framework does) serves.
//!
//! Matching is by whole segments (Envoy's `path_separated_prefix`): `/public/` or
//! `/public` as a prefix matches `/public` and `/public/x`, not `/publicity`; an exact
//! path matches with or without one trailing `/`.

use std::fmt;

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not origin-form (`/…`): `*`, an absolute URI, or empty.
    #[error("the path is not in origin form")]
    NotOriginForm,
    /// A `%` not followed by exactly two hex digits.
    #[error("the path has a malformed percent escape")]
    BadEscape,
    /// An escape that decodes to a delimiter, `%`, `.` or a control character.
    #[error("the path has an encoded delimiter, dot or percent sign")]
    EncodedDelimiter,
    /// A `.` or `..` segment.
    #[error("the path has a dot segment")]
    DotSegment,
    /// A segment ending in `.` or a space, which Windows servers drop (`run.` is `run`).
    #[error("a path segment ends in a dot or a space")]
    TrailingDotOrSpace,
    /// `//` inside the path.
    #[error("the path has an empty segment")]
    EmptySegment,
    /// `;`, `\`, `#`, a space or a control character.
    #[error("the path has a character that servers read differently")]
    AmbiguousCharacter,
    /// The decoded path is not UTF-8.
    #[error("the path does not decode to UTF-8")]
    NotUtf8,
}

/// A path with one meaning: decoded segments, no query.
#[derive(Clone, PartialEq, Eq)]
pub struct CanonicalPath {
    /// `/` + the decoded segments joined by `/` (+ `/` when the path ended with one).
    decoded: String,
}

impl fmt::Debug for CanonicalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.decoded, f)
    }
}

impl fmt::Display for CanonicalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.decoded)
    }
}

impl CanonicalPath {
    /// Reads `path_and_query` (a `:path`); the query, if any, is not part of the result.
    pub fn parse(path_and_query: &str) -> Result<CanonicalPath, PathError> {
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(p, _)| p);
        let rest = path.strip_prefix('/').ok_or(PathError::NotOriginForm)?;
        let mut decoded = String::with_capacity(path.len());
        if rest.is_empty() {
            decoded.push('/');
            return Ok(CanonicalPath { decoded });
        }
        let segments: Vec<&str> = rest.split('/').collect();
        let last = segments.len() - 1;
        for (i, raw) in segments.iter().enumerate() {
            decoded.push('/');
            if raw.is_empty() {
                if i == last {
                    continue; // one trailing slash
                }
                return Err(PathError::EmptySegment);
            }
            let seg = decode_segment(raw)?;
            if seg == "." || seg == ".." {
                return Err(PathError::DotSegment);
            }
            if seg.ends_with(['.', ' ']) {
                return Err(PathError::TrailingDotOrSpace);
            }
            decoded.push_str(&seg);
        }
        Ok(CanonicalPath { decoded })
    }

    /// The decoded path (`/a/b`, `/a/b/`, `/`).
    pub fn as_str(&self) -> &str {
        &self.decoded
    }

    /// The decoded, non-empty segments.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.decoded.split('/').filter(|s| !s.is_empty())
    }

    /// Whether the path is `other` (trailing slash aside).
    pub fn is(&self, other: &CanonicalPath) -> bool {
        self.segments().eq(other.segments())
    }

    /// Whether `prefix`'s segments start this path's.
    pub fn starts_with(&self, prefix: &CanonicalPath) -> bool {
        let mut mine = self.segments();
        prefix.segments().all(|p| mine.next() == Some(p))
    }
}

/// Decodes one raw segment (the one strict decoder, `crate::percent`), refusing what is
/// ambiguous: an escaped delimiter, `.` or `%`, and a raw delimiter or control byte.
fn decode_segment(raw: &str) -> Result<String, PathError> {
    use crate::percent::Unit;
    let mut out = Vec::with_capacity(raw.len());
    for unit in crate::percent::units(raw) {
        match unit.map_err(|_| PathError::BadEscape)? {
            Unit::Escaped(v) => {
                if (is_delimiter_or_control(v) && v != b' ') || v == b'.' || v == b'%' {
                    return Err(PathError::EncodedDelimiter);
                }
                out.push(v);
            }
            Unit::Raw(b) => {
                if is_delimiter_or_control(b) {
                    return Err(PathError::AmbiguousCharacter);
                }
                out.push(b);
            }
        }
    }
    String::from_utf8(out).map_err(|_| PathError::NotUtf8)
}

/// Bytes no path segment may hold raw, nor (space aside, which `%20` spells) decoded:
/// delimiters servers split on and control characters (space and DEL included).
fn is_delimiter_or_control(b: u8) -> bool {
    matches!(b, b'/' | b'\\' | b';' | b'?' | b'#') || b <= b' ' || b == 0x7f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_meaning_paths_are_decoded() {
        for (raw, want) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("/a/b?x=1/../..;%", "/a/b"),
            ("/%74ool/run", "/tool/run"),
            ("/%C3%A9t%c3%a9", "/été"),
            ("/a%20b", "/a b"),
            ("/a:b@c!$&'()*+,=~-_", "/a:b@c!$&'()*+,=~-_"),
            ("/.well-known/x", "/.well-known/x"),
            ("/a..b/.c", "/a..b/.c"),
        ] {
            assert_eq!(CanonicalPath::parse(raw).unwrap().as_str(), want, "{raw}");
        }
    }

    #[test]
    fn ambiguous_spellings_are_refused() {
        use PathError::*;
        for (raw, why) in [
            ("", NotOriginForm),
            ("*", NotOriginForm),
            ("http://h/a", NotOriginForm),
            ("/public/../admin", DotSegment),
            ("/public/./admin", DotSegment),
            ("/public/..", DotSegment),
            ("/tool/run.", TrailingDotOrSpace),
            ("/tool/run%2e", EncodedDelimiter),
            ("/tool/run%20", TrailingDotOrSpace),
            ("/a.../b", TrailingDotOrSpace),
            ("/public/%2e%2e/admin", EncodedDelimiter),
            ("/public/%2E/admin", EncodedDelimiter),
            ("/a%2fb", EncodedDelimiter),
            ("/a%2Fb", EncodedDelimiter),
            ("/a%5cb", EncodedDelimiter),
            ("/a%3bv=1", EncodedDelimiter),
            ("/a%3fq", EncodedDelimiter),
            ("/a%23f", EncodedDelimiter),
            ("/a%252e%252e", EncodedDelimiter),
            ("/a%00", EncodedDelimiter),
            ("/a%0d%0a", EncodedDelimiter),
            ("/tool/run;v=1", AmbiguousCharacter),
            ("/public/..;/admin", AmbiguousCharacter),
            ("/a\\b", AmbiguousCharacter),
            ("/a#f", AmbiguousCharacter),
            ("/a b", AmbiguousCharacter),
            ("//tool/run", EmptySegment),
            ("/tool//run", EmptySegment),
            ("/a//", EmptySegment),
            ("/a%+1", BadEscape),
            ("/a%-1", BadEscape),
            ("/a%g0", BadEscape),
            ("/a%2", BadEscape),
            ("/a%", BadEscape),
            ("/%ff", NotUtf8),
        ] {
            assert_eq!(CanonicalPath::parse(raw), Err(why), "{raw}");
        }
    }

    #[test]
    fn matching_is_by_whole_segments() {
        let p = |s: &str| CanonicalPath::parse(s).unwrap();
        assert!(p("/tool/run/").is(&p("/tool/run")));
        assert!(p("/%74ool/run").is(&p("/tool/run")));
        assert!(!p("/tool/run/x").is(&p("/tool/run")));
        assert!(p("/public/a").starts_with(&p("/public/")));
        assert!(p("/public").starts_with(&p("/public/")));
        assert!(!p("/publicity").starts_with(&p("/public")));
        assert!(p("/anything").starts_with(&p("/")));
    }
}
