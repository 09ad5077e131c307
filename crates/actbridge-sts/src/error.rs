//! Start-up errors of the token service: a realm file or a signing key that cannot be used.
//!
//! Request-time refusals are not errors of this kind: they are answers to the client and
//! live in `refusal.rs`.

use std::path::PathBuf;

/// Why the token service cannot start. Every variant names the file, field or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum StsError {
    /// The realm file could not be read.
    #[error("cannot read realm file {path}: {source}")]
    ReadRealm {
        /// The path that was given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The realm file is not YAML of the realm schema (unknown key, wrong type, bad UUID or
    /// duration). The message carries the YAML path, e.g. `users[0].id`.
    #[error("realm file does not match the realm schema: {0}")]
    ParseRealm(#[source] serde_yaml_ng::Error),
    /// The realm file parsed but a field breaks a rule.
    #[error("invalid realm file: {field}: {reason}")]
    InvalidRealm {
        /// The offending field as a path, e.g. `clients[2].exchange_audiences[0]`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The signing key PEM cannot be used (not PEM, not RSA, too small, ...).
    #[error("invalid signing key (signing_key_pem): {0}")]
    SigningKey(String),
    /// The public URL the issuer is built from is not an absolute http(s) URL.
    #[error("invalid public_url {url:?}: {reason}")]
    PublicUrl {
        /// The URL that was given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl StsError {
    /// Shorthand for [`StsError::InvalidRealm`].
    pub(crate) fn realm(field: impl Into<String>, reason: impl Into<String>) -> Self {
        StsError::InvalidRealm {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
