//! Client authentication at the token endpoint: RFC 6749 §2.3.1 (`client_secret_post`,
//! `client_secret_basic`) and RFC 7523 §2.2 (`private_key_jwt`, and a SPIFFE JWT-SVID
//! from the Workload API as the assertion: `jwt_svid`).

use jsonwebtoken::{Header, encode};
use serde::Serialize;
use url::form_urlencoded::byte_serialize;

use super::ExchangeError;
use crate::clock::now_secs;
use crate::config::{ClientAuthConfig, ClientConfig};
use crate::spiffe::jwt::JwtSvidFetcher;

/// RFC 7523 client assertion type.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Life of one client assertion.
const ASSERTION_LIFETIME_SECS: u64 = 60;

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: u64,
    exp: u64,
}

/// Adds actbridge's client credentials to a token (or introspection) request. `svids` fetches JWT-SVIDs
/// (set when the method is `jwt_svid`).
pub(crate) async fn authenticate(
    client: &ClientConfig,
    svids: Option<&JwtSvidFetcher>,
    form: &mut Vec<(&'static str, String)>,
    req: reqwest::RequestBuilder,
) -> Result<reqwest::RequestBuilder, ExchangeError> {
    match &client.auth {
        ClientAuthConfig::JwtSvid { audience, .. } => {
            let svids = svids.ok_or_else(|| {
                ExchangeError::ClientAuth("no Workload API client for jwt_svid".into())
            })?;
            // The Workload API away is an outage like the token service's: retry later.
            let svid = svids
                .fetch(audience)
                .await
                .map_err(ExchangeError::Unavailable)?;
            form.push(("client_id", client.client_id.clone()));
            form.push(("client_assertion_type", JWT_BEARER.to_string()));
            form.push(("client_assertion", svid));
            Ok(req)
        }
        ClientAuthConfig::SecretPost(secret) => {
            form.push(("client_id", client.client_id.clone()));
            form.push(("client_secret", secret.expose().to_string()));
            Ok(req)
        }
        ClientAuthConfig::SecretBasic(secret) => {
            // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
            let id: String = byte_serialize(client.client_id.as_bytes()).collect();
            let pw: String = byte_serialize(secret.expose().as_bytes()).collect();
            Ok(req.basic_auth(id, Some(pw)))
        }
        ClientAuthConfig::PrivateKeyJwt {
            key,
            algorithm,
            key_id,
            audience,
        } => {
            let now = now_secs();
            let claims = AssertionClaims {
                iss: &client.client_id,
                sub: &client.client_id,
                aud: audience,
                jti: uuid::Uuid::new_v4().to_string(),
                iat: now,
                exp: now + ASSERTION_LIFETIME_SECS,
            };
            let mut header = Header::new(*algorithm);
            header.kid = key_id.clone();
            let assertion = encode(&header, &claims, &key.0)
                .map_err(|e| ExchangeError::ClientAuth(e.to_string()))?;
            form.push(("client_id", client.client_id.clone()));
            form.push(("client_assertion_type", JWT_BEARER.to_string()));
            form.push(("client_assertion", assertion));
            Ok(req)
        }
    }
}
