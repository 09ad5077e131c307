//! `private_key_jwt` client authentication (RFC 7523 §2.2, OIDC Core §9), with Keycloak's
//! refusals (`AbstractJWTClientValidator`, `AbstractBaseJWTValidator`,
//! `JWTClientAuthenticator`): 400 `invalid_client` with the validator's description, or
//! 401 `invalid_client` when the assertion names no client registered for this method.
//!
//! Rules: `iss` = `sub` = the client id; signed with the client's registered public key in
//! an algorithm of that key's family; `aud` = the token endpoint or the issuer (one value);
//! `exp` required, in the future and at most 5 minutes ahead; `jti` required and single-use
//! (remembered until the assertion's `exp`).

use std::time::{Duration, Instant};

use jsonwebtoken::Validation;
use moka::Expiry;
use moka::future::Cache;
use serde_json::{Map, Value};

use super::claims::now;
use super::form::Form;
use super::realm::{Client, Credential};
use super::refusal::Refusal;
use super::service::TokenService;

/// The only accepted `client_assertion_type`.
pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest accepted time from now to the assertion's `exp`.
pub(crate) const MAX_ASSERTION_LIFETIME: u64 = 300;
/// Tolerated clock difference for `iat` / `nbf` in the future.
const CLOCK_SKEW: u64 = 5;
/// Entries kept at most; far above any honest load of a test or demo service.
const REPLAY_CAPACITY: u64 = 1_000_000;

/// Assertion `jti`s seen, per client, each remembered until its assertion expires.
pub(crate) struct ReplayCache {
    seen: Cache<String, u64>,
}

/// Keeps a `jti` exactly until its assertion's `exp` (the cached value).
struct UntilExp;

impl Expiry<String, u64> for UntilExp {
    fn expire_after_create(
        &self,
        _key: &String,
        exp: &u64,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(exp.saturating_sub(now()) + 1))
    }
}

impl ReplayCache {
    /// An empty cache.
    pub(crate) fn new() -> Self {
        ReplayCache {
            seen: Cache::builder()
                .max_capacity(REPLAY_CAPACITY)
                .expire_after(UntilExp)
                .build(),
        }
    }

    /// Records the `jti`; `true` the first time, `false` on a replay (atomic).
    async fn first_use(&self, client_id: &str, jti: &str, exp: u64) -> bool {
        let key = format!("{client_id}\n{jti}");
        self.seen.entry(key).or_insert(exp).await.is_fresh()
    }
}

fn refuse(why: impl Into<String>) -> Refusal {
    Refusal::ClientAssertion(why.into())
}

/// Authenticates a client by its `client_assertion`.
pub(crate) async fn authenticate<'s>(
    svc: &'s TokenService,
    form: &Form,
) -> Result<&'s Client, Refusal> {
    let assertion_type = form
        .get("client_assertion_type")
        .ok_or_else(|| refuse("Parameter client_assertion_type is missing"))?;
    if assertion_type != ASSERTION_TYPE {
        return Err(refuse(format!(
            "Parameter client_assertion_type has value '{assertion_type}' but expected is '{ASSERTION_TYPE}'"
        )));
    }
    let assertion = form
        .get("client_assertion")
        .ok_or_else(|| refuse("client_assertion parameter missing"))?;
    let malformed = || refuse("Client authentication with signed JWT failed: malformed JWT");
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| {
        // A readable header whose `alg` jsonwebtoken does not know (`none`, `HS512K`, ...)
        // is Keycloak's "Invalid signature algorithm"; anything else is malformed.
        if raw_alg(assertion).is_some() {
            refuse("Invalid signature algorithm")
        } else {
            malformed()
        }
    })?;
    let unverified: Map<String, Value> =
        jsonwebtoken::dangerous::insecure_decode_claims(assertion).map_err(|_| malformed())?;

    let sub = unverified
        .get("sub")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("Token sub claim is required"))?;
    if form.get("client_id").is_some_and(|id| id != sub) {
        return Err(refuse("client_id parameter does not match sub claim"));
    }
    // A client registered for SPIFFE JWT-SVIDs: `sub` is its SPIFFE ID, the key is the
    // trust domain's (super::jwt_svid).
    if let Some(client) = svc.realm().client(sub)
        && matches!(client.credential, Credential::JwtSvid)
    {
        super::jwt_svid::verify(svc, &client.client_id, assertion, &header).await?;
        return Ok(client);
    }
    // Keycloak ignores assertions signed by a third party (iss ≠ sub); with no other
    // authenticator matching, the client stays unidentified.
    if unverified.get("iss").and_then(Value::as_str) != Some(sub) {
        return Err(Refusal::UnknownClient);
    }
    let client = svc.realm().client(sub).ok_or(Refusal::UnknownClient)?;
    let Credential::Key(key) = &client.credential else {
        return Err(Refusal::UnknownClient);
    };
    if !key.allows(header.alg) {
        return Err(refuse("Invalid signature algorithm"));
    }

    let mut validation = Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(assertion, key.key(), &validation)
        .map_err(|e| {
            tracing::debug!(client_id = %client.client_id, error = %e, "client assertion signature refused");
            refuse("Client authentication with signed JWT failed: Signature on JWT token failed validation")
        })?
        .claims;

    check_audience(svc, &claims)?;
    let exp = check_times(&claims)?;
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("Token jti claim is required"))?;
    if !svc
        .replay_cache()
        .first_use(&client.client_id, jti, exp)
        .await
    {
        tracing::warn!(client_id = %client.client_id, "client assertion jti replayed");
        return Err(refuse("Token reuse detected"));
    }
    Ok(client)
}

/// The `alg` of a JWT header that jsonwebtoken could not parse, if the header is JSON.
fn raw_alg(token: &str) -> Option<String> {
    use base64::Engine;
    let head = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .ok()?;
    let header: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    header.get("alg")?.as_str().map(str::to_owned)
}

/// `aud` must be the token endpoint or the issuer, and only one value (Keycloak's default
/// refuses multiple audiences).
pub(super) fn check_audience(
    svc: &TokenService,
    claims: &Map<String, Value>,
) -> Result<(), Refusal> {
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(all)) => all.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let expected = [svc.token_endpoint(), svc.issuer()];
    if !audiences.iter().any(|a| expected.iter().any(|e| e == a)) {
        return Err(refuse("Invalid token audience"));
    }
    if audiences.len() > 1 {
        return Err(refuse("Multiple audiences not allowed"));
    }
    Ok(())
}

/// `exp` present, in the future, at most [`MAX_ASSERTION_LIFETIME`] ahead; `nbf` and `iat`
/// not in the future. Returns `exp`.
fn check_times(claims: &Map<String, Value>) -> Result<u64, Refusal> {
    let now = now();
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or_else(|| refuse("Token exp claim is required"))?;
    if exp <= now {
        return Err(refuse("Token is not active"));
    }
    if claims
        .get("nbf")
        .and_then(Value::as_u64)
        .is_some_and(|nbf| nbf > now + CLOCK_SKEW)
    {
        return Err(refuse("Token is not active"));
    }
    if claims
        .get("iat")
        .and_then(Value::as_u64)
        .is_some_and(|iat| iat > now + CLOCK_SKEW)
    {
        return Err(refuse("Token was issued in the future"));
    }
    if exp - now > MAX_ASSERTION_LIFETIME {
        return Err(refuse("Token expiration is too far in the future"));
    }
    Ok(exp)
}
