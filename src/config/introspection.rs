//! `issuers[].introspection`: live checks of an issuer's tokens at its RFC 7662
//! introspection endpoint, for the requests that ask for one (`inbound.introspect_paths`,
//! routes with `introspect: true`), as written and validated; and the rule that every
//! issuer whose tokens such a request may carry has the section.
//!
//! ```text
//! issuers:
//!   - issuer: https://keycloak.example.com/realms/demo
//!     audiences: [spiffe://demo.example.com/agent/summarizer-tech]
//!     introspection:
//!       endpoint: https://keycloak.example.com/realms/demo/protocol/openid-connect/token/introspect
//!       client:                # default: outbound.client
//!         client_id: actbridge-introspection
//!         auth: {method: client_secret_basic, secret_env: INTROSPECTION_SECRET}
//!       cache_ttl: 5s          # default 0s: every checked request asks the issuer
//! inbound:
//!   introspect_paths: [{prefix: /payments/}]
//! ```

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::ConfigError;
use super::client::{
    AssertionAudiences, ClientAuthConfig, ClientConfig, RawClient, validate_client,
};
use super::issuers::IssuerConfig;
use super::outbound::OutboundConfig;
use super::raw::RawConfig;
use super::routes::RouteAction;
use super::sources::Sources;
use super::validate::http_url;

/// Longest `cache_ttl` accepted: a revocation at the issuer must take effect soon.
const MAX_CACHE_TTL: Duration = Duration::from_secs(60);

/// `issuers[].introspection`: where and as whom this issuer's tokens are checked live.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIntrospection {
    /// The issuer's RFC 7662 introspection endpoint. Keycloak:
    /// `{issuer}/protocol/openid-connect/token/introspect`. Required.
    pub endpoint: String,
    /// The OAuth client actbridge introspects as (Keycloak: any confidential client of
    /// the realm), written as `outbound.client` is (`client_id` and `auth`: secrets
    /// inline, from `secret_file` or `secret_env`, or `private_key_jwt`, whose assertion
    /// `aud` defaults to the issuer; `jwt_svid` only by way of the default). Default:
    /// `outbound.client`.
    #[serde(default)]
    pub client: Option<RawClient>,
    /// Timeout of one introspection request; past it the request being decided is
    /// refused (503). Keep it below Envoy's ext_proc `message_timeout`. Default `2s`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// How long an `active: true` answer is reused for the same token (never past the
    /// token's `exp`; an inactive answer is never kept). `0s` asks the issuer on every
    /// checked request; a revocation at the issuer then takes effect at once, and
    /// otherwise within this time. At most `60s`. Default `0s`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub cache_ttl: Option<Duration>,
    /// Most answers kept when `cache_ttl` is set. Default `10000`.
    #[serde(default)]
    pub cache_entries: Option<u64>,
}

/// The validated `issuers[].introspection` section.
#[derive(Debug, Clone)]
pub struct IntrospectionConfig {
    /// The introspection endpoint.
    pub endpoint: Url,
    /// The client actbridge authenticates as.
    pub client: ClientConfig,
    /// Timeout of one request.
    pub timeout: Duration,
    /// How long an active answer is reused (zero = never).
    pub cache_ttl: Duration,
    /// Capacity of the answer cache.
    pub cache_entries: u64,
}

/// Fills `issuers[i].introspection` from the raw sections (after `outbound`, whose client
/// is the default, is validated and bound to the Workload API), then checks that every
/// issuer a checked request's token may come from has one.
pub(super) fn validate_introspection(
    raw: &RawConfig,
    issuers: &mut [IssuerConfig],
    outbound: Option<&OutboundConfig>,
    env: &Sources<'_>,
) -> Result<(), ConfigError> {
    for (i, (ri, issuer)) in raw.issuers.iter().zip(issuers.iter_mut()).enumerate() {
        if let Some(r) = &ri.introspection {
            let key = format!("issuers[{i}].introspection");
            issuer.introspection = Some(validate_one(&key, r, &ri.issuer, outbound, env)?);
        }
    }
    // Inbound tokens come from any issuer with audiences (verification needs them).
    if !raw.inbound.introspect_paths.is_empty() {
        let lacking = issuers
            .iter()
            .position(|i| !i.audiences.is_empty() && i.introspection.is_none());
        if let Some(j) = lacking {
            return Err(ConfigError::invalid(
                "inbound.introspect_paths",
                format_args!(
                    "issuers[{j}] (`{}`) accepts inbound tokens but has no `introspection` section",
                    issuers[j].issuer
                ),
            ));
        }
    }
    // The agent's token may come from any issuer.
    let introspected = outbound.iter().flat_map(|o| &o.routes).position(|r| {
        matches!(
            &r.action,
            RouteAction::Exchange { rules, .. }
                | RouteAction::Credential { rules, .. }
                | RouteAction::Vend { rules, .. } if rules.introspect
        )
    });
    if let Some(route) = introspected
        && let Some(j) = issuers.iter().position(|i| i.introspection.is_none())
    {
        return Err(ConfigError::invalid(
            format!("outbound.routes[{route}].introspect"),
            format_args!(
                "issuers[{j}] (`{}`) has no `introspection` section",
                issuers[j].issuer
            ),
        ));
    }
    Ok(())
}

fn validate_one(
    key: &str,
    r: &RawIntrospection,
    issuer: &str,
    outbound: Option<&OutboundConfig>,
    env: &Sources<'_>,
) -> Result<IntrospectionConfig, ConfigError> {
    let endpoint = http_url(&format!("{key}.endpoint"), &r.endpoint)?;
    let client = match (&r.client, outbound) {
        (Some(c), _) => {
            let audiences = AssertionAudiences {
                private_key_jwt: issuer.to_string(),
                jwt_svid: issuer.to_string(),
            };
            let client = validate_client(&format!("{key}.client"), c, audiences, env)?;
            if matches!(client.auth, ClientAuthConfig::JwtSvid { .. }) {
                return Err(ConfigError::invalid(
                    format!("{key}.client.auth.method"),
                    "jwt_svid is not supported here; leave `client` out to introspect as outbound.client",
                ));
            }
            client
        }
        (None, Some(o)) => o.client.clone(),
        (None, None) => {
            return Err(ConfigError::invalid(
                format!("{key}.client"),
                "required when there is no `outbound` section (whose client is the default)",
            ));
        }
    };
    let timeout = r.timeout.unwrap_or(Duration::from_secs(2));
    if timeout.is_zero() {
        return Err(ConfigError::invalid(
            format!("{key}.timeout"),
            "must be greater than zero",
        ));
    }
    let cache_ttl = r.cache_ttl.unwrap_or(Duration::ZERO);
    if cache_ttl > MAX_CACHE_TTL {
        return Err(ConfigError::invalid(
            format!("{key}.cache_ttl"),
            "must be at most 60s (a revocation at the issuer takes effect after at most this long)",
        ));
    }
    let cache_entries = match r.cache_entries {
        Some(_) if cache_ttl.is_zero() => {
            return Err(ConfigError::invalid(
                format!("{key}.cache_entries"),
                "only with a `cache_ttl` above 0s",
            ));
        }
        Some(0) => {
            return Err(ConfigError::invalid(
                format!("{key}.cache_entries"),
                "must be at least 1",
            ));
        }
        n => n.unwrap_or(10_000),
    };
    Ok(IntrospectionConfig {
        endpoint,
        client,
        timeout,
        cache_ttl,
        cache_entries,
    })
}
