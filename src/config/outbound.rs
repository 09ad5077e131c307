//! The `outbound` section: requests the agent makes. The token service, the
//! exchanged-token cache and what a destination no route matches gets; actbridge's own
//! client is in [`super::client`], the route table in [`super::routes`].

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::client::{AssertionAudiences, ClientConfig, RawClient, validate_client};
use super::credentials::CredentialConfig;
use super::routes::{
    RawDefaultAction, RawRoute, RouteAction, RouteConfig, RouteTable, validate_route_table,
};
use super::validate::http_url;

/// `outbound.retry_after` when not set, and the `Retry-After` of a sidecar without an
/// `outbound` section.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
use super::ConfigError;
use super::sources::Sources;

/// `outbound`: requests the agent makes.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOutbound {
    /// The token service's token endpoint (RFC 8693), e.g.
    /// `https://keycloak.example.com/realms/demo/protocol/openid-connect/token`.
    pub token_endpoint: String,
    /// actbridge's own OAuth client at the token service.
    pub client: RawClient,
    /// Send `actor_token` = actbridge's own client-credentials token with every exchange,
    /// so the issued token names this agent in a nested `act` claim. Default `true`.
    #[serde(default)]
    pub send_actor_token: Option<bool>,
    /// Audiences the agent's (subject) token must carry. Default: `[client.client_id]`
    /// (a token exchange also requires that).
    #[serde(default)]
    pub subject_audiences: Option<Vec<String>>,
    /// Timeout of one request to the token service. Keep it below Envoy's ext_proc
    /// `message_timeout`. Default `2s`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub token_timeout: Option<Duration>,
    /// `Retry-After` sent with a 503 (the token service, a credential backend, the
    /// shared state unavailable…). Default `5s`, also without an `outbound` section.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub retry_after: Option<Duration>,
    /// The exchanged-token cache.
    #[serde(default)]
    pub cache: RawExchangeCache,
    /// What happens to a destination no route matches: `deny` (default) or `passthrough`.
    #[serde(default)]
    pub default_action: RawDefaultAction,
    /// Routes, keyed by destination host (`:authority`); the first match wins.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// mTLS to the token endpoint with the pod's X.509-SVID (needs the `spiffe` section
    /// and an `https` token endpoint).
    #[serde(default)]
    pub tls: Option<RawOutboundTls>,
}

/// `outbound.tls`: the token endpoint over mTLS with the pod's current X.509-SVID as the
/// client certificate; the server must chain to the trust bundle and present `spiffe_id`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOutboundTls {
    /// The token service's SPIFFE ID, e.g. `spiffe://demo.example.com/service/keycloak`.
    pub spiffe_id: String,
}

/// `outbound.cache`: the exchanged-token cache.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExchangeCache {
    /// Most exchanged tokens kept. Default `10000`.
    #[serde(default)]
    pub max_entries: Option<u64>,
    /// An entry is dropped this long before the exchanged token's `exp` (and in any case
    /// at 80 % of its life). Default `30s`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub expiry_skew: Option<Duration>,
}

/// Outbound settings.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Token endpoint.
    pub token_endpoint: Url,
    /// actbridge's own client.
    pub client: ClientConfig,
    /// Whether to send an actor token.
    pub send_actor_token: bool,
    /// Audiences the subject token must carry.
    pub subject_audiences: Vec<String>,
    /// Timeout of one token-service request.
    pub token_timeout: Duration,
    /// `Retry-After` on 503.
    pub retry_after: Duration,
    /// Exchanged-token cache capacity.
    pub cache_max_entries: u64,
    /// Exchanged-token cache skew before `exp`.
    pub cache_expiry_skew: Duration,
    /// Action for hosts no route matches (never `Exchange`).
    pub default_action: RouteAction,
    /// Routes in order.
    pub routes: Vec<RouteConfig>,
    /// With `outbound.tls`: the token service's SPIFFE ID; the token endpoint is then
    /// called over mTLS with the pod's SVID.
    pub token_endpoint_spiffe_id: Option<String>,
}

pub(super) fn validate_outbound(
    o: &RawOutbound,
    env: &Sources<'_>,
    credentials: &[CredentialConfig],
) -> Result<OutboundConfig, ConfigError> {
    let token_endpoint = http_url("outbound.token_endpoint", &o.token_endpoint)?;
    let endpoint = token_endpoint.as_str();
    let audiences = AssertionAudiences {
        private_key_jwt: endpoint.to_string(),
        jwt_svid: endpoint
            .strip_suffix("/protocol/openid-connect/token")
            .unwrap_or(endpoint)
            .to_string(),
    };
    let kinds: Vec<(&str, &'static str)> = credentials
        .iter()
        .map(|c| (c.name.as_str(), c.backend.kind()))
        .collect();
    // The client and the route table are independent: both checked, both reported.
    let client = validate_client("outbound.client", &o.client, audiences, env);
    let table = validate_route_table(o.default_action, &o.routes, &kinds);
    let (client, table) = match (client, table) {
        (Ok(c), Ok(t)) => (c, t),
        (Err(a), Err(b)) => return Err(super::Problems::both(a, b)),
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let subject_audiences = o
        .subject_audiences
        .clone()
        .unwrap_or_else(|| vec![client.client_id.clone()]);
    if subject_audiences.is_empty() {
        return Err(ConfigError::invalid(
            "outbound.subject_audiences",
            "must not be empty",
        ));
    }
    let RouteTable {
        routes,
        default_action,
    } = table;
    let token_timeout = o.token_timeout.unwrap_or(Duration::from_secs(2));
    if token_timeout.is_zero() {
        return Err(ConfigError::invalid(
            "outbound.token_timeout",
            "must be greater than zero",
        ));
    }
    let max_entries = o.cache.max_entries.unwrap_or(10_000);
    if max_entries == 0 {
        return Err(ConfigError::invalid(
            "outbound.cache.max_entries",
            "must be at least 1",
        ));
    }
    let token_endpoint_spiffe_id = match &o.tls {
        None => None,
        Some(t) => {
            let well_formed = t
                .spiffe_id
                .strip_prefix("spiffe://")
                .and_then(|r| r.split_once('/'))
                .is_some_and(|(td, path)| !td.is_empty() && !path.is_empty());
            if !well_formed {
                return Err(ConfigError::invalid(
                    "outbound.tls.spiffe_id",
                    format_args!("`{}`: expected spiffe://TRUST_DOMAIN/PATH", t.spiffe_id),
                ));
            }
            if token_endpoint.scheme() != "https" {
                return Err(ConfigError::invalid(
                    "outbound.tls",
                    "needs an https outbound.token_endpoint",
                ));
            }
            Some(t.spiffe_id.clone())
        }
    };
    Ok(OutboundConfig {
        token_endpoint_spiffe_id,
        token_endpoint,
        client,
        send_actor_token: o.send_actor_token.unwrap_or(true),
        subject_audiences,
        token_timeout,
        retry_after: o.retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
        cache_max_entries: max_entries,
        cache_expiry_skew: o.cache.expiry_skew.unwrap_or(Duration::from_secs(30)),
        default_action,
        routes,
    })
}
