//! `issuers[]`: the trusted token issuers — the exact `iss`, the audiences accepted
//! inbound, the algorithms, the leeway and where each issuer's keys come from.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use url::Url;

use super::ConfigError;
use super::raw::RawConfig;
use super::validate::{asymmetric_algorithm, http_url};

/// `issuers[]`: one trusted issuer.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    /// The exact `iss` value of its tokens, e.g. `https://keycloak.example.com/realms/demo`.
    pub issuer: String,
    /// Where its signing keys are published. When absent, OIDC discovery is used:
    /// `jwks_uri` is read from `{issuer}/.well-known/openid-configuration`.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Audiences accepted on inbound requests: a token must name at least one of them in
    /// `aud`. Required and non-empty for inbound use.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Signature algorithms accepted. Default `[RS256, PS256, ES256, EdDSA]`. HMAC
    /// (`HS*`) and `none` are never accepted.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`. Default `30s`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub leeway: Option<Duration>,
    /// How often the JWKS is refreshed in the background. Default `5m`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub jwks_refresh_interval: Option<Duration>,
    /// A token with an unknown `kid` triggers a JWKS re-fetch at most once per this
    /// interval (per issuer). Default `30s`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub jwks_min_refetch_interval: Option<Duration>,
    /// Timeout of one JWKS or discovery request; also bounds a whole re-fetch for an
    /// unknown `kid` made while a request waits (so it must end before Envoy's
    /// `listen.envoy_message_timeout`). Default `2s`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub jwks_timeout: Option<Duration>,
    /// How long keys stay trusted after the last successful JWKS fetch while the issuer
    /// cannot be reached. Past it the issuer's tokens are refused (503) and actbridge is
    /// not ready until a fetch succeeds. Must exceed `jwks_refresh_interval`. Default
    /// `24h`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub jwks_max_age: Option<Duration>,
    /// Live checks of this issuer's tokens at its RFC 7662 introspection endpoint, for
    /// the requests that ask for one (`inbound.introspect_paths`, routes with
    /// `introspect: true`; see [`super::introspection::RawIntrospection`]). Optional.
    #[serde(default)]
    pub introspection: Option<super::introspection::RawIntrospection>,
    /// The token types accepted from this issuer as bearer access tokens: the JOSE
    /// header's `typ` and Keycloak's payload `typ` claim (see
    /// [`super::token_types::RawTokenTypes`]). Default: header `[JWT, at+jwt]`, claim
    /// `[Bearer]`; ID, refresh and logout tokens are refused.
    #[serde(default)]
    pub token_types: Option<super::token_types::RawTokenTypes>,
    /// Where this issuer's tokens name the agents acting for the user. `act` (default):
    /// the nested `act` claim (RFC 8693 §4.1), which a token service that computes it
    /// from the actor token writes (the embedded one; Keycloak 26.8's delegation).
    /// `azp`: the client that asked for the token, for a token service that records
    /// only that (Keycloak's standard token exchange): a token whose `azp` is one of
    /// `agent_clients` names that agent as its one actor, and a token carrying `act` is
    /// refused (401 `token_act_not_issued`), as no exchange of that issuer writes one.
    #[serde(default)]
    pub actors_from: Option<RawActorsFrom>,
    /// With `actors_from: azp`, the client ids that are agents: exact, or a prefix
    /// ending in `*` (`spiffe://demo.example.com/agent/*`). Required then, refused
    /// otherwise. Sound only while no such client can get a token for a user itself
    /// (no direct access grants, standard, implicit, device or CIBA flow): then an
    /// agent's `azp` can only come from an exchange (docs/security.md).
    #[serde(default)]
    pub agent_clients: Vec<String>,
}

/// `issuers[].actors_from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawActorsFrom {
    /// The nested `act` claim.
    Act,
    /// The `azp` claim, when it names an agent.
    Azp,
}

/// One trusted issuer.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// Exact `iss`.
    pub issuer: String,
    /// Where the keys come from.
    pub jwks: JwksSource,
    /// Accepted inbound audiences.
    pub audiences: Vec<String>,
    /// Accepted algorithms.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated.
    pub leeway: Duration,
    /// Background refresh period.
    pub jwks_refresh_interval: Duration,
    /// Minimum time between re-fetches caused by an unknown `kid`.
    pub jwks_min_refetch_interval: Duration,
    /// Timeout of one JWKS/discovery request.
    pub jwks_timeout: Duration,
    /// How long fetched keys stay trusted without a successful re-fetch.
    pub jwks_max_age: Duration,
    /// Live checks at the issuer (RFC 7662), when configured.
    pub introspection: Option<super::IntrospectionConfig>,
    /// The token types accepted as bearer access tokens (header `typ`, claim `typ`).
    pub token_types: super::TokenTypes,
    /// Where its tokens name the agents acting for the user.
    pub actors: ActorSource,
}

/// Where an issuer's tokens name the agents acting for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorSource {
    /// The nested `act` claim: chains of any depth, as the token service computed them.
    Act,
    /// `azp`, when it is one of these agent clients: one actor, the client that asked
    /// for the token; an `act` claim is never the token service's.
    Azp(Vec<ClientPattern>),
}

impl ActorSource {
    /// Whether the token service can record a chain of more than one agent.
    pub fn nests(&self) -> bool {
        matches!(self, ActorSource::Act)
    }
}

/// A client id, exactly or by a prefix (`…*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientPattern {
    /// This client id.
    Exact(String),
    /// Every client id that starts with this.
    Prefix(String),
}

impl ClientPattern {
    /// Whether `client_id` matches.
    pub fn matches(&self, client_id: &str) -> bool {
        match self {
            ClientPattern::Exact(id) => client_id == id,
            ClientPattern::Prefix(p) => client_id.starts_with(p.as_str()),
        }
    }
}

/// Where an issuer's JWKS is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS URL.
    Uri(Url),
    /// An OIDC discovery document URL whose `jwks_uri` is followed.
    Discovery(Url),
}

const DEFAULT_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

/// `issuers`: at least one, none twice.
pub(super) fn validate_issuers(raw: &RawConfig) -> Result<Vec<IssuerConfig>, ConfigError> {
    if raw.issuers.is_empty() {
        return Err(ConfigError::invalid(
            "issuers",
            "at least one trusted issuer is required",
        ));
    }
    // Every issuer checked, every problem reported.
    super::Problems::each(raw.issuers.iter().enumerate(), |(i, ri)| {
        let key = format!("issuers[{i}]");
        if raw.issuers[..i].iter().any(|x| x.issuer == ri.issuer) {
            return Err(ConfigError::invalid(
                format!("{key}.issuer"),
                "listed twice",
            ));
        }
        validate_issuer(&key, ri)
    })
}

fn validate_issuer(key: &str, ri: &RawIssuer) -> Result<IssuerConfig, ConfigError> {
    if ri.issuer.trim().is_empty() {
        return Err(ConfigError::invalid(
            format!("{key}.issuer"),
            "must not be empty",
        ));
    }
    let jwks = match &ri.jwks_uri {
        Some(u) => JwksSource::Uri(http_url(&format!("{key}.jwks_uri"), u)?),
        None => {
            let base = http_url(&format!("{key}.issuer"), &ri.issuer).map_err(|_| {
                ConfigError::invalid(
                    format!("{key}.jwks_uri"),
                    "not set, and the issuer is not an http(s) URL that OIDC discovery could use",
                )
            })?;
            let disc = format!(
                "{}/.well-known/openid-configuration",
                base.as_str().trim_end_matches('/')
            );
            JwksSource::Discovery(http_url(&format!("{key}.issuer"), &disc)?)
        }
    };
    let algorithms = match &ri.algorithms {
        None => DEFAULT_ALGORITHMS.to_vec(),
        Some(list) if list.is_empty() => {
            return Err(ConfigError::invalid(
                format!("{key}.algorithms"),
                "must not be empty",
            ));
        }
        Some(list) => list
            .iter()
            .map(|a| asymmetric_algorithm(&format!("{key}.algorithms"), a))
            .collect::<Result<Vec<_>, _>>()?,
    };
    for (i, a) in ri.audiences.iter().enumerate() {
        if a.is_empty() {
            return Err(ConfigError::invalid(
                format!("{key}.audiences[{i}]"),
                "must not be empty",
            ));
        }
    }
    let positive =
        |k: &str, d: Option<Duration>, default: Duration| -> Result<Duration, ConfigError> {
            let v = d.unwrap_or(default);
            if v.is_zero() {
                return Err(ConfigError::invalid(
                    format!("{key}.{k}"),
                    "must be greater than zero",
                ));
            }
            Ok(v)
        };
    let leeway = ri.leeway.unwrap_or(Duration::from_secs(30));
    if leeway > Duration::from_secs(300) {
        return Err(ConfigError::invalid(
            format!("{key}.leeway"),
            "must be at most 5m",
        ));
    }
    let jwks_refresh_interval = positive(
        "jwks_refresh_interval",
        ri.jwks_refresh_interval,
        Duration::from_secs(300),
    )?;
    let jwks_max_age = positive(
        "jwks_max_age",
        ri.jwks_max_age,
        Duration::from_secs(24 * 3600),
    )?;
    if jwks_max_age <= jwks_refresh_interval {
        return Err(ConfigError::invalid(
            format!("{key}.jwks_max_age"),
            "must be longer than jwks_refresh_interval (or keys would lapse between refreshes)",
        ));
    }
    Ok(IssuerConfig {
        issuer: ri.issuer.clone(),
        jwks,
        audiences: ri.audiences.clone(),
        algorithms,
        leeway,
        jwks_refresh_interval,
        jwks_min_refetch_interval: positive(
            "jwks_min_refetch_interval",
            ri.jwks_min_refetch_interval,
            Duration::from_secs(30),
        )?,
        jwks_timeout: positive("jwks_timeout", ri.jwks_timeout, Duration::from_secs(2))?,
        jwks_max_age,
        // Filled in once `outbound` is known (super::introspection).
        introspection: None,
        token_types: super::token_types::validate_token_types(
            &format!("{key}.token_types"),
            ri.token_types.as_ref(),
        )?,
        actors: actor_source(key, ri)?,
    })
}

/// `actors_from` and `agent_clients`, which only mean something together.
fn actor_source(key: &str, ri: &RawIssuer) -> Result<ActorSource, ConfigError> {
    let from = ri.actors_from.unwrap_or(RawActorsFrom::Act);
    if from == RawActorsFrom::Act {
        if !ri.agent_clients.is_empty() {
            return Err(ConfigError::invalid(
                format!("{key}.agent_clients"),
                "only means something with actors_from: azp",
            ));
        }
        return Ok(ActorSource::Act);
    }
    if ri.agent_clients.is_empty() {
        return Err(ConfigError::invalid(
            format!("{key}.agent_clients"),
            "required with actors_from: azp (the client ids that are agents)",
        ));
    }
    let patterns = ri
        .agent_clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let bad = |why: &str| ConfigError::invalid(format!("{key}.agent_clients[{i}]"), why);
            if c.trim().is_empty() {
                return Err(bad("must not be empty"));
            }
            match c.strip_suffix('*') {
                Some("") => Err(bad(
                    "`*` alone would make every client an agent, a front end included",
                )),
                Some(p) if !p.contains('*') => Ok(ClientPattern::Prefix(p.to_string())),
                None if !c.contains('*') => Ok(ClientPattern::Exact(c.clone())),
                _ => Err(bad("`*` may only end a prefix")),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ActorSource::Azp(patterns))
}
