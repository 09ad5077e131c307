//! Key material: the service's RS256 signing key (generated or loaded, `kid` = RFC 7638
//! thumbprint, published as a JWKS) and the public keys clients register for
//! `private_key_jwt`.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};

use super::error::StsError;

/// The service's signing key with everything derived from it once at start.
pub(crate) struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    jwk: Jwk,
}

impl SigningKey {
    /// Generates a fresh RSA-2048 key. aws-lc-rs hands out PKCS#8 DER, which jsonwebtoken only
    /// takes wrapped in PEM (`from_rsa_der` wants PKCS#1).
    pub(crate) fn generate() -> Result<Self, StsError> {
        let pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|e| StsError::SigningKey(format!("RSA-2048 generation failed: {e}")))?;
        let der = pair
            .as_der()
            .map_err(|e| StsError::SigningKey(format!("PKCS#8 encoding failed: {e}")))?;
        Self::from_pem(crate::pem::encode("PRIVATE KEY", der.as_ref()).as_bytes())
    }

    /// Loads an RSA private key from PEM (`PRIVATE KEY` / PKCS#8 or `RSA PRIVATE KEY` / PKCS#1).
    pub(crate) fn from_pem(pem: &[u8]) -> Result<Self, StsError> {
        let encoding = EncodingKey::from_rsa_pem(pem).map_err(|e| {
            StsError::SigningKey(format!("not an RSA private key in PEM form: {e}"))
        })?;
        // Parsing the key pair here (inside `from_encoding_key`) validates it: a malformed or
        // too-small RSA key is refused at start, not at the first signature.
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)
            .map_err(|e| StsError::SigningKey(format!("unusable RSA key: {e}")))?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| StsError::SigningKey(format!("cannot compute the thumbprint: {e}")))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk)
            .map_err(|e| StsError::SigningKey(format!("cannot derive the public key: {e}")))?;
        let key = SigningKey {
            encoding,
            decoding,
            kid,
            jwk,
        };
        // One trial signature, so that a key aws-lc-rs refuses to sign with fails here.
        key.try_sign(&json!({}))
            .map_err(|e| StsError::SigningKey(format!("trial signature failed: {e}")))?;
        Ok(key)
    }

    /// The key id: the RFC 7638 SHA-256 thumbprint, base64url.
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, for verifying tokens this service issued.
    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The JWKS document served at `/protocol/openid-connect/certs`.
    pub(crate) fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// Signs `claims` as an RS256 JWT with `kid` and `typ: JWT` in the header.
    pub(crate) fn try_sign(&self, claims: &Value) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }
}

/// A public key a client registered for `private_key_jwt`, with the algorithms it may sign
/// with (never `none`, never HMAC: the family is fixed by the key, so no algorithm confusion).
#[derive(Clone)]
pub(crate) struct ClientKey {
    key: DecodingKey,
    algorithms: &'static [Algorithm],
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// Parses a PEM public key: RSA (RS256, PS256), EC P-256 (ES256) or Ed25519 (EdDSA).
    pub(crate) fn from_pem(pem: &str) -> Result<Self, String> {
        if pem.contains("PRIVATE KEY") {
            return Err("holds a private key; register the client's public key".into());
        }
        let bytes = pem.as_bytes();
        if let Ok(key) = DecodingKey::from_rsa_pem(bytes) {
            return Ok(ClientKey {
                key,
                algorithms: &[Algorithm::RS256, Algorithm::PS256],
            });
        }
        if let Ok(key) = DecodingKey::from_ec_pem(bytes) {
            return Ok(ClientKey {
                key,
                algorithms: &[Algorithm::ES256],
            });
        }
        if let Ok(key) = DecodingKey::from_ed_pem(bytes) {
            return Ok(ClientKey {
                key,
                algorithms: &[Algorithm::EdDSA],
            });
        }
        Err("not a PEM public key of a supported type (RSA, EC P-256, Ed25519)".into())
    }

    /// The verification key.
    pub(crate) fn key(&self) -> &DecodingKey {
        &self.key
    }

    /// Whether an assertion signed with `alg` may be verified with this key.
    pub(crate) fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }
}
