//! The `spiffe` section: where the SPIFFE Workload API is and what actbridge serves to
//! Envoy over SDS, as written and validated.
//!
//! ```text
//! spiffe:
//!   endpoint: unix:///run/spire/sockets/agent.sock
//! ```

use serde::Deserialize;

use super::sources::Sources;
use super::{ClientAuthConfig, ConfigError, OutboundConfig};

/// The environment variable the SPIFFE specification names for the Workload API.
pub const SPIFFE_ENDPOINT_SOCKET: &str = "SPIFFE_ENDPOINT_SOCKET";

/// `spiffe`: the pod's workload identity (X.509-SVIDs) from the SPIFFE Workload API,
/// served to Envoy over SDS on the ext_proc gRPC server. With this section, `/readyz`
/// waits for the first SVID and outbound requests are refused (503) while no valid SVID
/// is held. Without it, no SDS is served.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSpiffe {
    /// The Workload API: `unix:///path` or `tcp://host:port`. Default: the
    /// `SPIFFE_ENDPOINT_SOCKET` environment variable (one of them is required).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The SDS name of the SVID (`tls_certificate`). Default `default` (SPIRE's name,
    /// so Envoy configs written for SPIRE's SDS work unchanged).
    #[serde(default)]
    pub svid_secret: Option<String>,
    /// The SDS name of the trust bundle (`validation_context`). Default `ROOTCA`.
    #[serde(default)]
    pub bundle_secret: Option<String>,
}

/// The validated `spiffe` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiffeConfig {
    /// The Workload API endpoint.
    pub endpoint: String,
    /// SDS name of the SVID.
    pub svid_secret: String,
    /// SDS name of the bundle.
    pub bundle_secret: String,
}

pub(super) fn validate_spiffe(
    s: &RawSpiffe,
    env: &Sources<'_>,
) -> Result<SpiffeConfig, ConfigError> {
    let endpoint = match &s.endpoint {
        Some(e) => e.clone(),
        None => env.var(SPIFFE_ENDPOINT_SOCKET).unwrap_or_default(),
    };
    if endpoint.is_empty() {
        return Err(ConfigError::invalid(
            "spiffe.endpoint",
            format_args!("not set, and {SPIFFE_ENDPOINT_SOCKET} is empty"),
        ));
    }
    let well_formed = endpoint
        .strip_prefix("unix://")
        .is_some_and(|p| p.starts_with('/'))
        || endpoint
            .strip_prefix("tcp://")
            .is_some_and(|a| a.parse::<std::net::SocketAddr>().is_ok());
    if !well_formed {
        return Err(ConfigError::invalid(
            "spiffe.endpoint",
            format_args!("`{endpoint}`: expected unix:///absolute/path or tcp://IP:PORT"),
        ));
    }
    let name = |key: &str, v: &Option<String>, default: &str| -> Result<String, ConfigError> {
        let v = v.clone().unwrap_or_else(|| default.to_string());
        if v.is_empty() || v.chars().any(char::is_control) {
            return Err(ConfigError::invalid(key, "must be a non-empty name"));
        }
        Ok(v)
    };
    let svid_secret = name("spiffe.svid_secret", &s.svid_secret, "default")?;
    let bundle_secret = name("spiffe.bundle_secret", &s.bundle_secret, "ROOTCA")?;
    if svid_secret == bundle_secret {
        return Err(ConfigError::invalid(
            "spiffe.bundle_secret",
            "must differ from spiffe.svid_secret",
        ));
    }
    Ok(SpiffeConfig {
        endpoint,
        svid_secret,
        bundle_secret,
    })
}

/// Points `outbound.client.auth` `jwt_svid` at the `spiffe` section's Workload API; an
/// error when that section is missing, for it or for `outbound.tls`.
pub(super) fn bind_jwt_svid(
    outbound: &mut Option<OutboundConfig>,
    spiffe: Option<&SpiffeConfig>,
) -> Result<(), ConfigError> {
    if spiffe.is_none()
        && outbound
            .as_ref()
            .is_some_and(|o| o.token_endpoint_spiffe_id.is_some())
    {
        return Err(ConfigError::invalid(
            "outbound.tls",
            "needs the `spiffe` section (the SVID is the client certificate)",
        ));
    }
    if let Some(ClientAuthConfig::JwtSvid { workload_api, .. }) =
        outbound.as_mut().map(|o| &mut o.client.auth)
    {
        let s = spiffe.ok_or_else(|| {
            ConfigError::invalid(
                "outbound.client.auth.method",
                "jwt_svid needs the `spiffe` section (where the Workload API is)",
            )
        })?;
        *workload_api = s.endpoint.clone();
    }
    Ok(())
}
