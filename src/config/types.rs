//! The validated configuration types: what the rest of actbridge reads.

use std::fmt;
use std::net::SocketAddr;

use super::inbound::InboundConfig;
use super::issuers::IssuerConfig;
use super::listen::ListenAddr;
use super::outbound::OutboundConfig;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the ext_proc server listens.
    pub ext_proc_listen: ListenAddr,
    /// Where the SDS server (the pod's SVID and bundle, for Envoy) listens; `None`: SDS
    /// is not served.
    pub sds_listen: Option<ListenAddr>,
    /// Where the admin listener listens, if enabled.
    pub admin_listen: Option<SocketAddr>,
    /// Envoy's ext_proc `message_timeout`: every in-request timeout ends before it.
    pub envoy_message_timeout: std::time::Duration,
    /// Trusted issuers.
    pub issuers: Vec<IssuerConfig>,
    /// Largest bearer token accepted, in bytes.
    pub max_token_bytes: usize,
    /// Capacity of the verified-token cache (0 = off).
    pub verified_cache_entries: u64,
    /// Longest `act` chain accepted.
    pub max_actor_chain: usize,
    /// Capacity of the single-use token memory.
    pub replay_cache_entries: usize,
    /// Inbound settings.
    pub inbound: InboundConfig,
    /// Outbound settings; `None` refuses every outbound request.
    pub outbound: Option<OutboundConfig>,
    /// The Rego policy; `None` = no policy decisions.
    pub policy: Option<super::PolicyConfig>,
    /// Credential backends, by name.
    pub credentials: Vec<super::CredentialConfig>,
    /// The audit log; `None` = decisions are logged but not audited.
    pub audit: Option<super::AuditConfig>,
    /// The authenticated admin API; `None` = its routes answer 404.
    pub admin_api: Option<super::AdminApiConfig>,
    /// The deny list's file; `None` = kept in memory only.
    pub revocation: Option<super::RevocationConfig>,
    /// Human approvals; `None` = requests needing one are refused.
    pub approvals: Option<super::ApprovalsConfig>,
    /// The SPIFFE workload identity; `None` = no SVIDs, no SDS.
    pub spiffe: Option<super::SpiffeConfig>,
    /// Trace export (the `telemetry` section and `OTEL_*`).
    pub telemetry: super::TelemetryConfig,
    /// The Redis the replicas share (`state.redis`); `None` = every store in memory.
    pub redis: Option<super::RedisConfig>,
    /// Per-identity rate limits (`rate_limits`); `None` = none.
    pub rate_limits: Option<super::RateLimitsConfig>,
}

/// A secret string; `Debug` prints `[redacted]`. One read from a `*_file` key is
/// re-read when the file changes (`super::secret_files`): every use takes the value of
/// the moment, so a rotated Kubernetes Secret applies without a restart.
#[derive(Clone)]
pub struct Secret(std::sync::Arc<arc_swap::ArcSwap<String>>);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(
            s.into(),
        )))
    }

    /// The secret now. Never log it.
    pub fn expose(&self) -> std::sync::Arc<String> {
        self.0.load_full()
    }

    /// The shared cell, for the file watcher.
    pub(crate) fn cell(&self) -> std::sync::Weak<arc_swap::ArcSwap<String>> {
        std::sync::Arc::downgrade(&self.0)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        *self.expose() == *other.expose()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
