//! Custody entries in the Redis the actbridge processes share (`state.redis`), so that a
//! placeholder handed to the app by one process resolves at another (several replicas
//! behind one Envoy, or the inbound and outbound listeners served by different
//! processes).
//!
//! Redis never holds a token it could use: an entry is sealed (AES-256-GCM) under a key
//! derived (HKDF-SHA256) from the placeholder, and stored under another digest of it —
//! so only the holder of the placeholder, the app, can have it opened, and a copy of
//! Redis reveals no token and no placeholder. An entry expires with its token (`EXAT`).

use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::jwt::VerifiedToken;
use crate::state::redis::{SharedRedis, SharedStateError};

/// What is sealed: the token held and the caller's token it came from.
#[derive(Serialize, Deserialize)]
struct Sealed {
    token: String,
    expires_at: u64,
    origin: VerifiedToken,
}

/// The custody keys in the shared Redis.
pub(super) struct SharedCustody<'a>(pub(super) &'a SharedRedis);

impl SharedCustody<'_> {
    /// Seals `token` (and `origin`) under `placeholder`, until `expires_at`.
    pub(super) async fn put(
        &self,
        placeholder: &str,
        token: &str,
        origin: &VerifiedToken,
        expires_at: u64,
    ) -> Result<(), SharedStateError> {
        let mut sealed = serde_json::to_vec(&Sealed {
            token: token.to_string(),
            expires_at,
            origin: origin.clone(),
        })
        .map_err(|e| SharedStateError::Unavailable(e.to_string()))?;
        let nonce: [u8; NONCE_LEN] = rand::random();
        sealing_key(placeholder)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut sealed,
            )
            .map_err(|_| SharedStateError::Unavailable("sealing failed".into()))?;
        let mut value = nonce.to_vec();
        value.extend_from_slice(&sealed);
        self.0
            .query::<()>(
                redis::cmd("SET")
                    .arg(self.key(placeholder))
                    .arg(value)
                    .arg("EXAT")
                    .arg(expires_at.max(1)),
            )
            .await
    }

    /// The token sealed under `placeholder`, when it expires, and its origin; `None`
    /// when there is none (or it does not open: not sealed under this placeholder).
    pub(super) async fn get(
        &self,
        placeholder: &str,
    ) -> Result<Option<(String, u64, Arc<VerifiedToken>)>, SharedStateError> {
        let value: Option<Vec<u8>> = self
            .0
            .query(redis::cmd("GET").arg(self.key(placeholder)))
            .await?;
        let Some(value) = value.filter(|v| v.len() > NONCE_LEN) else {
            return Ok(None);
        };
        let (nonce, sealed) = value.split_at(NONCE_LEN);
        let mut sealed = sealed.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| SharedStateError::Unavailable("a custody entry is malformed".into()))?;
        let Ok(opened) = sealing_key(placeholder)?.open_in_place(nonce, Aad::empty(), &mut sealed)
        else {
            tracing::warn!("a shared custody entry does not open under its placeholder: ignored");
            return Ok(None);
        };
        Ok(serde_json::from_slice::<Sealed>(opened)
            .ok()
            .map(|s| (s.token, s.expires_at, Arc::new(s.origin))))
    }

    fn key(&self, placeholder: &str) -> String {
        let id = Sha256::new()
            .chain_update(b"actbridge custody entry\0")
            .chain_update(placeholder.as_bytes())
            .finalize();
        self.0.key(&format!("custody:{}", hex::encode(id)))
    }
}

/// The key an entry is sealed with, derived from the placeholder alone.
fn sealing_key(placeholder: &str) -> Result<LessSafeKey, SharedStateError> {
    let prk = Salt::new(HKDF_SHA256, b"actbridge custody v1").extract(placeholder.as_bytes());
    let okm = prk
        .expand(&[b"seal"], &AES_256_GCM)
        .map_err(|_| SharedStateError::Unavailable("the custody key cannot be derived".into()))?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}
