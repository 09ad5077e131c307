//! JSON objects whose member names are unique, at every level: the check a JWS header
//! and a JWT claims set go through before anything reads them.
//!
//! RFC 7515 §5.2 and RFC 7519 §4 let a recipient either refuse duplicate names or keep
//! the lexically last. serde_json keeps the last copy silently, and another verifier of
//! the same token (the app, the token service, an audit tool) may keep the first: a token
//! with two `sub`, two `aud` or two `act.client_id` would then name two principals under
//! one signature. Refusing is the only reading every parser agrees on.
//!
//! Written by hand on serde's `Visitor`: serde_json has no strict mode, and no kept crate
//! does only this. `agentproto::jsonrpc::strict_json` builds a value as it checks (the
//! JSON-RPC body is then read from it); here the bytes are read afterwards by
//! `jsonwebtoken` and serde, so this walk only checks, keeping one set of names per open
//! object. Its recursion is bounded by serde_json's own limit (128 levels).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;

/// Why the bytes failed the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NotUnique {
    /// Not one JSON value (or nested deeper than serde_json's limit).
    NotJson,
    /// An object, at some level, names a member twice.
    Duplicate,
}

/// Checks that `json` is one JSON value in which no object names a member twice. Names
/// are compared after unescaping (`"s\u0075b"` is `"sub"`).
pub(super) fn unique_members(json: &[u8]) -> Result<(), NotUnique> {
    let mut de = serde_json::Deserializer::from_slice(json);
    Walk.deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| match e.classify() {
            // The walk accepts every JSON type, so the only data error is its own.
            Category::Data => NotUnique::Duplicate,
            Category::Io | Category::Syntax | Category::Eof => NotUnique::NotJson,
        })
}

/// One JSON value, walked.
struct Walk;

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Walk)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Values are walked, not skipped (`IgnoredAny`): a nested object is checked too.
        let mut names = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !names.insert(name) {
                return Err(de::Error::custom("a member name is repeated"));
            }
            map.next_value_seed(Walk)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_name_is_found_at_any_level() {
        for ok in [
            r#"{"sub":"a","act":{"sub":"b","act":{"sub":"c"}}}"#,
            r#"{"a":[{"x":1},{"x":2}],"b":null,"c":1.5,"d":-1,"e":true}"#,
            r#"[1,"two",{}]"#,
            "{}",
        ] {
            assert_eq!(unique_members(ok.as_bytes()), Ok(()), "{ok}");
        }
        for dup in [
            r#"{"sub":"a","sub":"b"}"#,
            r#"{"sub":"a","s\u0075b":"b"}"#,
            r#"{"act":{"client_id":"a","client_id":"b"}}"#,
            r#"{"act":{"act":{"sub":"a","sub":"a"}}}"#,
            r#"{"aud":[{"x":1,"x":1}]}"#,
        ] {
            assert_eq!(
                unique_members(dup.as_bytes()),
                Err(NotUnique::Duplicate),
                "{dup}"
            );
        }
        for bad in ["", "{", r#"{"a":1} x"#, "{'a':1}"] {
            assert_eq!(
                unique_members(bad.as_bytes()),
                Err(NotUnique::NotJson),
                "{bad}"
            );
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(unique_members(deep.as_bytes()), Err(NotUnique::NotJson));
    }
}
