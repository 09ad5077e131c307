//! The hash chain: how a record is sealed with its own hash and linked to the previous
//! one.
//!
//! A record is a JSON object whose last member is `"hash"`. Its hash is the SHA-256 of
//! the record's bytes as written without that member: the line up to `,"hash":"`,
//! followed by `}`. Every record carries the hash of the record before it in `prev`
//! (64 zeros before the first). Hashing the written bytes, rather than re-encoding a
//! parsed value, makes the encoding canonical by construction: verification needs no
//! JSON canonicalisation, and any changed byte changes the hash. A string value cannot
//! imitate the suffix: JSON escapes its quotes.
//!
//! ```text
//! {"seq":7,"time":"…","kind":"decision",…,"prev":"9f2c…","hash":"41d0…"}
//! ```

use sha2::{Digest, Sha256};

/// `prev` of the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_MEMBER: &str = ",\"hash\":\"";

/// Seals `unsealed` (a JSON object's bytes, `{…}`, with no `hash` member): returns the
/// line to write (without newline) and the record's hash.
pub fn seal(unsealed: &[u8]) -> (Vec<u8>, String) {
    let hash = hex::encode(Sha256::digest(unsealed));
    let mut line = Vec::with_capacity(unsealed.len() + HASH_MEMBER.len() + 66);
    line.extend_from_slice(&unsealed[..unsealed.len().saturating_sub(1)]);
    line.extend_from_slice(HASH_MEMBER.as_bytes());
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\"}");
    (line, hash)
}

/// The hash a sealed `line` claims, if the line ends with a well-formed `hash` member.
pub fn claimed_hash(line: &str) -> Option<&str> {
    let body = line.strip_suffix("\"}")?;
    let start = body.len().checked_sub(64)?;
    let hash = body.get(start..)?;
    let before = body.get(..start)?;
    (before.ends_with(HASH_MEMBER) && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hash)
}

/// Whether `line`'s content hashes to the hash it claims.
pub fn hash_matches(line: &str) -> bool {
    let Some(claimed) = claimed_hash(line) else {
        return false;
    };
    let prefix_len = line.len() - 2 - 64 - HASH_MEMBER.len();
    let mut h = Sha256::new();
    h.update(&line.as_bytes()[..prefix_len]);
    h.update(b"}");
    hex::encode(h.finalize()) == claimed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_line_verifies_and_any_changed_byte_does_not() {
        let (line, hash) = seal(br#"{"seq":1,"kind":"decision","user":"alice","prev":"00"}"#);
        let line = String::from_utf8(line).unwrap();
        assert!(line.ends_with(&format!(",\"hash\":\"{hash}\"}}")), "{line}");
        assert!(hash_matches(&line));
        assert_eq!(claimed_hash(&line), Some(hash.as_str()));
        for i in 0..line.len() {
            let mut bytes = line.clone().into_bytes();
            bytes[i] ^= 0x01;
            if let Ok(changed) = String::from_utf8(bytes) {
                assert!(!hash_matches(&changed), "byte {i} changed unnoticed");
            }
        }
    }

    #[test]
    fn a_string_cannot_imitate_the_hash_member() {
        let fake = format!("x\",\"hash\":\"{}", "a".repeat(64));
        let v = serde_json::json!({ "user": fake });
        let unsealed = serde_json::to_vec(&v).unwrap();
        // Unsealed, the escaped quotes do not form a hash member.
        assert_eq!(claimed_hash(std::str::from_utf8(&unsealed).unwrap()), None);
    }
}
