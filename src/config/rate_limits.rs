//! `rate_limits`: how often one identity may call, enforced before the policy on every
//! verified request. Each limit names the parts of the request that make its bucket
//! (`per`) and, optionally, the routes it applies to; with `state.redis` a bucket is
//! shared by every replica, else it is this process's.
//!
//! ```text
//! rate_limits:
//!   on_unavailable: refuse        # Redis not answering: refuse (503) or allow
//!   limits:
//!     - name: tool-calls
//!       per: [user, agent, tool]  # user, agent, route, tool
//!       rate: 30/minute
//!       burst: 10
//!       routes: [mcp-documents]
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// `rate_limits`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimits {
    /// What a request gets when the buckets cannot be read (the shared Redis does not
    /// answer, or this process's table is full): `refuse` (503
    /// `rate_limit_unavailable`, the default) or `allow` (served unlimited; counted in
    /// `actbridge_rate_limit_unchecked_total` and logged).
    #[serde(default)]
    pub on_unavailable: Option<OnUnavailable>,
    /// The limits; a request must be within every one that applies to it.
    pub limits: Vec<RawLimit>,
}

/// `rate_limits.on_unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnUnavailable {
    /// Refuse (fail closed).
    #[default]
    Refuse,
    /// Serve without the limit (fail open).
    Allow,
}

/// What makes a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// The user: the token's `preferred_username`, else `sub`.
    User,
    /// The agent acting: the newest of the chain the destination sees (outbound, this
    /// sidecar's own agent when it adds itself).
    Agent,
    /// The route (`inbound` for inbound requests).
    Route,
    /// The MCP tool of a `tools/call`.
    Tool,
}

impl Dimension {
    /// Its name in keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::User => "user",
            Dimension::Agent => "agent",
            Dimension::Route => "route",
            Dimension::Tool => "tool",
        }
    }
}

/// `rate_limits.limits[]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    /// The limit's name: in the refusal, the log, the audit record and
    /// `actbridge_rate_limited_total{limit}`. Letters, digits, `-`, `_`, `.`; unique.
    pub name: String,
    /// The parts of the request that make one bucket: any of `user`, `agent`, `route`,
    /// `tool` (at least one, each once). A request lacking one of them (no agent in the
    /// chain; not a `tools/call`) is not counted by this limit.
    pub per: Vec<Dimension>,
    /// The sustained rate: `N/second`, `N/minute`, `N/hour`, or `N/<duration>` (`N/10s`).
    pub rate: String,
    /// How many requests may come at once before the rate applies. Default: `N`.
    #[serde(default)]
    pub burst: Option<u32>,
    /// The routes it applies to (`outbound.routes[].name`, or `inbound`). Default: every
    /// route, inbound included.
    #[serde(default)]
    pub routes: Option<Vec<String>>,
}

/// The validated `rate_limits`.
#[derive(Debug, Clone)]
pub struct RateLimitsConfig {
    /// What a request gets when the buckets cannot be read.
    pub on_unavailable: OnUnavailable,
    /// The limits.
    pub limits: Vec<LimitConfig>,
}

/// One validated limit (GCRA: one request every `interval`, `burst` at once).
#[derive(Debug, Clone)]
pub struct LimitConfig {
    /// Its name.
    pub name: String,
    /// What makes a bucket, in the order written.
    pub per: Vec<Dimension>,
    /// The time one request uses up: the rate's period divided by its count.
    pub interval: Duration,
    /// How many requests may come at once.
    pub burst: u32,
    /// The routes it applies to; `None`: every route.
    pub routes: Option<Vec<String>>,
}

/// `rate_limits`, its routes checked against `route_names` (and `inbound`).
pub(super) fn validate_rate_limits(
    raw: Option<&RawRateLimits>,
    route_names: &[&str],
) -> Result<Option<RateLimitsConfig>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let mut limits: Vec<LimitConfig> = Vec::new();
    for (i, l) in raw.limits.iter().enumerate() {
        let key = format!("rate_limits.limits[{i}]");
        if l.name.is_empty()
            || !l
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ConfigError::invalid(
                format!("{key}.name"),
                "letters, digits, `-`, `_` and `.` only",
            ));
        }
        if limits.iter().any(|o| o.name == l.name) {
            return Err(ConfigError::invalid(
                format!("{key}.name"),
                format_args!("`{}` is used by another limit", l.name),
            ));
        }
        if l.per.is_empty() {
            return Err(ConfigError::invalid(
                format!("{key}.per"),
                "name at least one of user, agent, route, tool",
            ));
        }
        if l.per
            .iter()
            .enumerate()
            .any(|(j, d)| l.per[..j].contains(d))
        {
            return Err(ConfigError::invalid(
                format!("{key}.per"),
                "names a part twice",
            ));
        }
        let (count, period) =
            parse_rate(&l.rate).map_err(|why| ConfigError::invalid(format!("{key}.rate"), why))?;
        let interval = period / count;
        if interval < Duration::from_micros(1) {
            return Err(ConfigError::invalid(
                format!("{key}.rate"),
                "more than a million a second is not a limit",
            ));
        }
        let burst = l.burst.unwrap_or(count);
        if burst == 0 {
            return Err(ConfigError::invalid(
                format!("{key}.burst"),
                "must be at least 1",
            ));
        }
        if let Some(routes) = &l.routes {
            if routes.is_empty() {
                return Err(ConfigError::invalid(
                    format!("{key}.routes"),
                    "leave it out for every route, or name at least one",
                ));
            }
            if let Some(unknown) = routes
                .iter()
                .find(|r| r.as_str() != "inbound" && !route_names.contains(&r.as_str()))
            {
                return Err(ConfigError::invalid(
                    format!("{key}.routes"),
                    format_args!("`{unknown}` is neither `inbound` nor an outbound route's name"),
                ));
            }
        }
        limits.push(LimitConfig {
            name: l.name.clone(),
            per: l.per.clone(),
            interval,
            burst,
            routes: l.routes.clone(),
        });
    }
    if limits.is_empty() {
        return Err(ConfigError::invalid(
            "rate_limits.limits",
            "name at least one limit, or leave the section out",
        ));
    }
    Ok(Some(RateLimitsConfig {
        on_unavailable: raw.on_unavailable.unwrap_or_default(),
        limits,
    }))
}

/// `N/second`, `N/minute`, `N/hour`, `N/<duration>` → (N, period).
fn parse_rate(rate: &str) -> Result<(u32, Duration), String> {
    let bad = || format!("`{rate}` is not `N/second`, `N/minute`, `N/hour` or `N/<duration>`");
    let (count, per) = rate.split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    if count == 0 {
        return Err("a rate of 0 refuses everything: use a deny route or the policy".into());
    }
    let period = match per.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        other => humantime::parse_duration(other).map_err(|_| bad())?,
    };
    if period.is_zero() {
        return Err(bad());
    }
    Ok((count, period))
}
