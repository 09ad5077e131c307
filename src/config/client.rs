//! `outbound.client` (and `issuers[].introspection.client`): actbridge's own OAuth client
//! and how it authenticates to the token service.

use std::fmt;

use jsonwebtoken::Algorithm;
use serde::Deserialize;

use super::ConfigError;
use super::sources::Sources;
use super::types::Secret;
use super::validate::{asymmetric_algorithm, external_secret};

/// `outbound.client`: actbridge's OAuth client.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    /// The client id (for an agent, its SPIFFE ID).
    pub client_id: String,
    /// How the client authenticates to the token endpoint.
    pub auth: RawClientAuth,
}

/// `outbound.client.auth`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClientAuth {
    /// `client_secret_post`, `client_secret_basic`, `private_key_jwt` (RFC 7523) or
    /// `jwt_svid` (a SPIFFE JWT-SVID from the Workload API as the client assertion; needs
    /// the `spiffe` section, and `client_id` = the pod's SPIFFE ID).
    pub method: ClientAuthMethod,
    /// The client secret, inline. Prefer `secret_file` or `secret_env`.
    #[serde(default)]
    pub secret: Option<String>,
    /// A file holding the client secret (trailing newline ignored).
    #[serde(default)]
    pub secret_file: Option<String>,
    /// An environment variable holding the client secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// `private_key_jwt`: PEM file of the private key that signs client assertions.
    #[serde(default)]
    pub private_key_file: Option<String>,
    /// `private_key_jwt`: signing algorithm, `RS256` (default), `PS256`, `ES256` or `EdDSA`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// `private_key_jwt`: `kid` placed in the assertion header. Optional.
    #[serde(default)]
    pub key_id: Option<String>,
    /// `private_key_jwt`: the assertion's `aud`. Default: the token endpoint URL.
    /// `jwt_svid`: the JWT-SVID's `aud`. Default: the token service's issuer (the token
    /// endpoint without Keycloak's `/protocol/openid-connect/token`), else the token
    /// endpoint URL.
    #[serde(default)]
    pub assertion_audience: Option<String>,
}

/// `outbound.client.auth.method`: how the client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// RFC 6749 §2.3.1, the secret in the form body.
    ClientSecretPost,
    /// RFC 6749 §2.3.1, HTTP Basic.
    ClientSecretBasic,
    /// RFC 7523, an assertion signed with `private_key_file`.
    PrivateKeyJwt,
    /// RFC 7523, a SPIFFE JWT-SVID from the Workload API as the assertion.
    JwtSvid,
}

/// actbridge's OAuth client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Client id.
    pub client_id: String,
    /// Authentication method and material.
    pub auth: ClientAuthConfig,
}

/// Client authentication at the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientAuthConfig {
    /// RFC 6749 §2.3.1, credentials in the form body.
    SecretPost(Secret),
    /// RFC 6749 §2.3.1, HTTP Basic.
    SecretBasic(Secret),
    /// RFC 7523 client assertion signed with a private key.
    PrivateKeyJwt {
        /// The parsed private key.
        key: SigningKey,
        /// Signing algorithm.
        algorithm: Algorithm,
        /// `kid` header, if any.
        key_id: Option<String>,
        /// Assertion `aud`.
        audience: String,
    },
    /// RFC 7523 client assertion that is a SPIFFE JWT-SVID from the Workload API.
    JwtSvid {
        /// The JWT-SVID's `aud`: the token service's issuer.
        audience: String,
        /// The Workload API (the `spiffe` section's endpoint).
        workload_api: String,
    },
}

/// A private signing key; `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct SigningKey(pub std::sync::Arc<jsonwebtoken::EncodingKey>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Parses a PEM private key for `algorithm`.
pub(crate) fn signing_key_from_pem(
    pem: &[u8],
    algorithm: Algorithm,
) -> Result<jsonwebtoken::EncodingKey, String> {
    use jsonwebtoken::{AlgorithmFamily, EncodingKey};
    let key = match algorithm.family() {
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(pem),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem),
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(pem),
        AlgorithmFamily::Hmac => return Err("HMAC keys are not accepted".into()),
    };
    key.map_err(|e| format!("not a PEM private key for {algorithm:?}: {e}"))
}

/// Offline (`check-config --offline`): a key of `algorithm`'s kind made for the check in
/// place of the unread key file, never used to sign anything.
pub(crate) fn offline_signing_key(
    key: &str,
    algorithm: Algorithm,
) -> Result<jsonwebtoken::EncodingKey, ConfigError> {
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
        Ed25519KeyPair,
    };
    use jsonwebtoken::{AlgorithmFamily, EncodingKey};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let made = match (algorithm.family(), algorithm) {
        (AlgorithmFamily::Rsa, _) => actbridge_sts::pem::fresh_rsa_private_key()
            .and_then(|pem| EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| e.to_string())),
        (AlgorithmFamily::Ec, Algorithm::ES384) => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
                .map(|der| EncodingKey::from_ec_der(der.as_ref()))
                .map_err(|e| e.to_string())
        }
        (AlgorithmFamily::Ec, _) => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map(|der| EncodingKey::from_ec_der(der.as_ref()))
                .map_err(|e| e.to_string())
        }
        (AlgorithmFamily::Ed, _) => Ed25519KeyPair::generate_pkcs8(&rng)
            .map(|der| EncodingKey::from_ed_der(der.as_ref()))
            .map_err(|e| e.to_string()),
        (AlgorithmFamily::Hmac, _) => Err("HMAC keys are not accepted".into()),
    };
    made.map_err(|e| ConfigError::invalid(key, format_args!("no stand-in key offline: {e}")))
}

/// Where a client assertion is addressed unless `assertion_audience` says otherwise.
pub(super) struct AssertionAudiences {
    /// `private_key_jwt`'s default `aud`.
    pub private_key_jwt: String,
    /// `jwt_svid`'s default `aud`.
    pub jwt_svid: String,
}

/// Validates an OAuth client section (`outbound.client`, `issuers[].introspection.client`);
/// errors name keys under `key`.
pub(super) fn validate_client(
    key: &str,
    c: &RawClient,
    audiences: AssertionAudiences,
    env: &Sources<'_>,
) -> Result<ClientConfig, ConfigError> {
    if c.client_id.is_empty() {
        return Err(ConfigError::invalid(
            format!("{key}.client_id"),
            "must not be empty",
        ));
    }
    let auth = client_auth(&format!("{key}.auth"), &c.auth, audiences, env)?;
    Ok(ClientConfig {
        client_id: c.client_id.clone(),
        auth,
    })
}

/// `outbound.client.auth`, by method. Long by design: one arm per client
/// authentication method, each refusing the keys the others read.
fn client_auth(
    key: &str,
    a: &RawClientAuth,
    audiences: AssertionAudiences,
    env: &Sources<'_>,
) -> Result<ClientAuthConfig, ConfigError> {
    let secret_fields = [
        a.secret.is_some(),
        a.secret_file.is_some(),
        a.secret_env.is_some(),
    ];
    let secret_count = secret_fields.iter().filter(|b| **b).count();
    let key_fields = a.private_key_file.is_some()
        || a.algorithm.is_some()
        || a.key_id.is_some()
        || a.assertion_audience.is_some();
    let secret = || -> Result<Secret, ConfigError> {
        if secret_count != 1 {
            return Err(ConfigError::invalid(
                key,
                "set exactly one of `secret`, `secret_file`, `secret_env`",
            ));
        }
        if key_fields {
            return Err(ConfigError::invalid(
                key,
                "private_key_jwt keys are set, but the method uses a secret",
            ));
        }
        let s = match &a.secret {
            Some(s) => Secret::new(s.clone()),
            None => external_secret(
                (&format!("{key}.secret_file"), a.secret_file.as_deref()),
                (&format!("{key}.secret_env"), a.secret_env.as_deref()),
                env,
            )?,
        };
        if s.expose().is_empty() {
            return Err(ConfigError::invalid(key, "the client secret is empty"));
        }
        Ok(s)
    };
    match a.method {
        ClientAuthMethod::ClientSecretPost => Ok(ClientAuthConfig::SecretPost(secret()?)),
        ClientAuthMethod::ClientSecretBasic => Ok(ClientAuthConfig::SecretBasic(secret()?)),
        ClientAuthMethod::PrivateKeyJwt => {
            if secret_count != 0 {
                return Err(ConfigError::invalid(
                    key,
                    "private_key_jwt takes `private_key_file`, not a secret",
                ));
            }
            let file = a.private_key_file.as_deref().ok_or_else(|| {
                ConfigError::invalid(
                    format!("{key}.private_key_file"),
                    "required for private_key_jwt",
                )
            })?;
            let algorithm = asymmetric_algorithm(
                &format!("{key}.algorithm"),
                a.algorithm.as_deref().unwrap_or("RS256"),
            )?;
            let file_key = format!("{key}.private_key_file");
            let key = match env.secret_file(&file_key, file)? {
                Some(pem) => signing_key_from_pem(&pem, algorithm)
                    .map_err(|e| ConfigError::invalid(&file_key, format_args!("`{file}`: {e}")))?,
                None => offline_signing_key(&file_key, algorithm)?,
            };
            Ok(ClientAuthConfig::PrivateKeyJwt {
                key: SigningKey(std::sync::Arc::new(key)),
                algorithm,
                key_id: a.key_id.clone(),
                audience: a
                    .assertion_audience
                    .clone()
                    .unwrap_or(audiences.private_key_jwt),
            })
        }
        ClientAuthMethod::JwtSvid => {
            if secret_count != 0
                || a.private_key_file.is_some()
                || a.algorithm.is_some()
                || a.key_id.is_some()
            {
                return Err(ConfigError::invalid(
                    key,
                    "jwt_svid takes no secret and no key: the Workload API provides the JWT-SVID",
                ));
            }
            Ok(ClientAuthConfig::JwtSvid {
                audience: a.assertion_audience.clone().unwrap_or(audiences.jwt_svid),
                // Filled in from the `spiffe` section (super::spiffe::bind_jwt_svid).
                workload_api: String::new(),
            })
        }
    }
}
