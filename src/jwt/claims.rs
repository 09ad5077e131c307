//! The claim model of a verified token, including the delegation chain read from the
//! nested `act` claim (RFC 8693 §4.1).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::VerifyError;
use crate::config::{ActorSource, ClientPattern};

/// One actor of the delegation chain (`act` claim level).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The actor's `sub`, if present.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sub: Option<String>,
    /// The actor's `client_id` (for an agent, its SPIFFE ID), if present.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_id: Option<String>,
}

/// A token whose signature, issuer, audience and times have been verified. (Serialized
/// only inside a sealed custody entry: [`crate::state::custody`].)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifiedToken {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: Option<String>,
    /// `preferred_username`.
    pub username: Option<String>,
    /// `aud` (a string is normalised to a one-element list).
    pub audiences: Vec<String>,
    /// `azp`.
    pub authorized_party: Option<String>,
    /// `scope`, split on spaces.
    pub scopes: Vec<String>,
    /// `groups`, with a leading `/` removed (Keycloak full group paths).
    pub groups: Vec<String>,
    /// Roles: Keycloak's `realm_access.roles` and a top-level `roles` array (strings
    /// only; anything else there is ignored, as roles only ever grant the admin API).
    pub roles: Vec<String>,
    /// `exp`, seconds since the epoch.
    pub expires_at: u64,
    /// `iat`, if present.
    pub issued_at: Option<u64>,
    /// `jti`, if present.
    pub token_id: Option<String>,
    /// The delegation chain, newest actor first (the outermost `act`), or, from an
    /// issuer whose actors come from `azp`, the agent that asked for the token.
    pub actors: Vec<Actor>,
    /// Whether the issuer records chains of several agents (`act`), or only the client
    /// that asked for a token (`azp`): an exchange by another agent then drops this
    /// token's actor from the chain.
    pub actors_nest: bool,
    /// A short fingerprint of the token (hex of the first 8 bytes of its SHA-256), safe
    /// to log.
    pub fingerprint: String,
}

impl VerifiedToken {
    /// Builds the model from claims that have passed signature and registered-claim
    /// validation.
    pub(super) fn from_claims(
        claims: &Map<String, Value>,
        (source, max_chain): (&ActorSource, usize),
        fingerprint: String,
    ) -> Result<VerifiedToken, VerifyError> {
        let issuer = str_claim(claims, "iss")?.ok_or(VerifyError::InvalidClaim("iss"))?;
        let expires_at = numeric_date(claims, "exp")?.ok_or(VerifyError::InvalidClaim("exp"))?;
        let issued_at = numeric_date(claims, "iat")?;
        numeric_date(claims, "nbf")?;
        let audiences = match claims.get("aud") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(VerifyError::InvalidClaim("aud"))?,
            Some(_) => return Err(VerifyError::InvalidClaim("aud")),
        };
        let scopes = str_claim(claims, "scope")?
            .map(|s| {
                s.split(' ')
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let groups = match claims.get("groups") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(|s| s.strip_prefix('/').unwrap_or(s).to_owned())
                })
                .collect::<Option<Vec<_>>>()
                .ok_or(VerifyError::InvalidClaim("groups"))?,
            Some(_) => return Err(VerifyError::InvalidClaim("groups")),
        };
        let roles = claims
            .get("realm_access")
            .and_then(|r| r.get("roles"))
            .into_iter()
            .chain(claims.get("roles"))
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        let authorized_party = str_claim(claims, "azp")?;
        let actors = match source {
            ActorSource::Act => actor_chain(claims.get("act"), max_chain)?,
            ActorSource::Azp(agents) => {
                requester_as_actor(claims, authorized_party.as_deref(), agents)?
            }
        };
        Ok(VerifiedToken {
            issuer,
            subject: str_claim(claims, "sub")?,
            username: str_claim(claims, "preferred_username")?,
            audiences,
            authorized_party,
            scopes,
            groups,
            roles,
            expires_at,
            issued_at,
            token_id: str_claim(claims, "jti")?,
            actors,
            actors_nest: source.nests(),
            fingerprint,
        })
    }
}

/// The last second a NumericDate may name: 9999-12-31T23:59:59Z. A later one is no date
/// any issuer means, and bounding it keeps every sum with a claim time far from
/// `u64::MAX`.
pub(super) const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// A time claim (`exp`, `iat`, `nbf`; RFC 7519 §2 NumericDate) as whole seconds since the
/// epoch. Absent or `null` is `None`; a whole number past [`MAX_NUMERIC_DATE`] is out of
/// range; anything else that is not a whole number from 0 (a negative number, a string, a
/// fraction, an exponent) is an invalid claim, as `jsonwebtoken` already judges a negative
/// `exp` or `nbf`.
pub(super) fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, VerifyError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(secs) if secs <= MAX_NUMERIC_DATE => Ok(Some(secs)),
            Some(_) => Err(VerifyError::TimeOutOfRange(name)),
            None => Err(VerifyError::InvalidClaim(name)),
        },
        Some(_) => Err(VerifyError::InvalidClaim(name)),
    }
}

fn str_claim(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, VerifyError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(VerifyError::InvalidClaim(name)),
    }
}

/// The actor of a token from an issuer that records only the client that asked for it
/// (`azp`): that client when it is an agent, else none (a user's own token). An `act`
/// claim is refused: no exchange of this issuer writes one, so something else did (a
/// hard-coded claim mapper puts it in every token of a client, a user's login included).
fn requester_as_actor(
    claims: &Map<String, Value>,
    azp: Option<&str>,
    agents: &[ClientPattern],
) -> Result<Vec<Actor>, VerifyError> {
    if claims.get("act").is_some_and(|a| !a.is_null()) {
        return Err(VerifyError::ActNotIssued);
    }
    Ok(azp
        .filter(|azp| agents.iter().any(|p| p.matches(azp)))
        .map(|azp| Actor {
            sub: None,
            client_id: Some(azp.to_string()),
        })
        .into_iter()
        .collect())
}

/// Reads the nested `act` claim into a list, newest (outermost) actor first. A chain
/// deeper than `max` is refused rather than truncated: a truncated chain would hide an
/// agent from the policy.
fn actor_chain(act: Option<&Value>, max: usize) -> Result<Vec<Actor>, VerifyError> {
    let mut chain = Vec::new();
    let mut next = act;
    while let Some(v) = next {
        let Value::Object(obj) = v else {
            return Err(VerifyError::InvalidClaim("act"));
        };
        if chain.len() == max {
            return Err(VerifyError::ActorChainTooDeep(max));
        }
        let field = |k: &str| match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(VerifyError::InvalidClaim("act")),
        };
        let actor = Actor {
            sub: field("sub")?,
            client_id: field("client_id")?,
        };
        if actor.sub.is_none() && actor.client_id.is_none() {
            return Err(VerifyError::InvalidClaim("act"));
        }
        chain.push(actor);
        next = obj.get("act");
    }
    Ok(chain)
}
