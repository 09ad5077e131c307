//! Signed checkpoints: an Ed25519 signature over a checkpoint record's position in the
//! chain (its sequence number and the hash of everything before it), so that a log
//! rewritten from some record on, hashes recomputed, no longer verifies up to the last
//! checkpoint.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a checkpoint record holds besides the chain members.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The signing key's name.
    pub key_id: String,
    /// Base64 Ed25519 signature over [`message`].
    pub signature: String,
}

/// The signed bytes: a domain label, the checkpoint's `seq` and its `prev`.
pub fn message(seq: u64, prev: &str) -> Vec<u8> {
    format!("actbridge-audit-checkpoint-v1\n{seq}\n{prev}").into_bytes()
}

/// Signs the checkpoint at `seq` whose `prev` is given.
pub fn sign(key: &SigningKey, key_id: &str, seq: u64, prev: &str) -> Checkpoint {
    Checkpoint {
        key_id: key_id.to_string(),
        signature: STANDARD.encode(key.sign(&message(seq, prev)).to_bytes()),
    }
}

/// Whether `c` is a valid signature by `key` for position (`seq`, `prev`).
pub fn verify(key: &VerifyingKey, c: &Checkpoint, seq: u64, prev: &str) -> bool {
    let Ok(bytes) = STANDARD.decode(&c.signature) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&bytes) else {
        return false;
    };
    key.verify(&message(seq, prev), &sig).is_ok()
}

/// The default key id: the first 16 hex digits of the SHA-256 of the public key.
pub fn key_id_of(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_only_for_its_position_and_key() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let c = sign(&key, "k1", 42, "ab");
        assert!(verify(&key.verifying_key(), &c, 42, "ab"));
        assert!(!verify(&key.verifying_key(), &c, 43, "ab"));
        assert!(!verify(&key.verifying_key(), &c, 42, "ac"));
        assert!(!verify(&other.verifying_key(), &c, 42, "ab"));
        let garbled = Checkpoint {
            signature: "not base64!".into(),
            ..c
        };
        assert!(!verify(&key.verifying_key(), &garbled, 42, "ab"));
    }
}
