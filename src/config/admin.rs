//! The `admin_api` and `revocation` sections: where the admin API listens and who may
//! use it, and where the deny list is kept, as written and validated.
//!
//! ```text
//! admin_api:
//!   listen: 127.0.0.1:9903
//!   audiences: [actbridge-admin]
//!   roles: [actbridge-admin]
//! revocation:
//!   file: /var/lib/actbridge/revocations.json
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// `admin_api`: the authenticated admin API (revocations, approvals), on a loopback
/// listener of its own, apart from the probes and metrics of `listen.admin` (which the
/// kubelet and Prometheus reach over the pod network). Without it the API is not
/// served. Callers present a bearer token from one of the configured `issuers`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAdminApi {
    /// `HOST:PORT` on loopback (`127.0.0.1`, `::1`): reached from the pod only (`kubectl
    /// exec`, `kubectl port-forward`). Any other address is refused. Default
    /// `127.0.0.1:9903`.
    #[serde(default)]
    pub listen: Option<String>,
    /// Audiences an admin token must carry (one of them). Required, non-empty.
    pub audiences: Vec<String>,
    /// Roles that make a token's holder an admin (one of them): matched against the
    /// token's `realm_access.roles` (Keycloak realm roles), `roles` and `groups`.
    /// Required, non-empty.
    pub roles: Vec<String>,
}

/// `revocation`: the deny list checked on every request.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRevocation {
    /// The file the deny list is kept in (JSON, written atomically on every change and
    /// read at start; created when missing). Without this section the list lives in
    /// memory only and a restart forgets it. A relative path is taken from the config
    /// file's directory.
    pub file: String,
}

/// `approvals`: requests the policy answers with `approval_required: true` wait for a
/// person (the admin API's `/approvals`, or `actbridge approvals`). Needs `admin_api`.
/// Without this section such requests are refused (403 `approval_unavailable`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApprovals {
    /// How long a request waits before it is denied. Default `60s`; at most `590s` (the
    /// shipped Envoy config lets a held request wait up to `max_message_timeout: 600s`).
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Requests waiting at once, at most; more are refused with 503. Default `100`.
    #[serde(default)]
    pub max_pending: Option<usize>,
}

/// The validated `approvals` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalsConfig {
    /// Wait limit.
    pub timeout: Duration,
    /// Pending limit.
    pub max_pending: usize,
}

/// The admin API's default address.
pub(super) const DEFAULT_ADMIN_API_LISTEN: &str = "127.0.0.1:9903";

/// The validated `admin_api` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminApiConfig {
    /// Where the API is served (loopback).
    pub listen: std::net::SocketAddr,
    /// Accepted audiences.
    pub audiences: Vec<String>,
    /// Admin roles.
    pub roles: Vec<String>,
}

/// The validated `revocation` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationConfig {
    /// The deny list's file.
    pub file: PathBuf,
}

pub(super) fn validate_admin_api(a: &RawAdminApi) -> Result<AdminApiConfig, ConfigError> {
    let written = a.listen.as_deref().unwrap_or(DEFAULT_ADMIN_API_LISTEN);
    let listen: std::net::SocketAddr = written.parse().map_err(|e| {
        ConfigError::invalid(
            "admin_api.listen",
            format_args!("`{written}` is not HOST:PORT ({e})"),
        )
    })?;
    if !listen.ip().is_loopback() {
        return Err(ConfigError::invalid(
            "admin_api.listen",
            format_args!(
                "`{written}` is not a loopback address: the admin API revokes and approves, and is reached from the pod only (kubectl exec or port-forward)"
            ),
        ));
    }
    if a.audiences.is_empty() || a.audiences.iter().any(String::is_empty) {
        return Err(ConfigError::invalid(
            "admin_api.audiences",
            "must list at least one non-empty audience",
        ));
    }
    if a.roles.is_empty() || a.roles.iter().any(String::is_empty) {
        return Err(ConfigError::invalid(
            "admin_api.roles",
            "must list at least one non-empty role",
        ));
    }
    Ok(AdminApiConfig {
        listen,
        audiences: a.audiences.clone(),
        roles: a.roles.clone(),
    })
}

pub(super) fn validate_revocation(r: &RawRevocation) -> Result<RevocationConfig, ConfigError> {
    if r.file.is_empty() {
        return Err(ConfigError::invalid("revocation.file", "must not be empty"));
    }
    Ok(RevocationConfig {
        file: PathBuf::from(&r.file),
    })
}

pub(super) fn validate_approvals(
    a: &RawApprovals,
    admin_api: Option<&AdminApiConfig>,
) -> Result<ApprovalsConfig, ConfigError> {
    if admin_api.is_none() {
        return Err(ConfigError::invalid(
            "approvals",
            "needs the `admin_api` section (approvals are given through it)",
        ));
    }
    let timeout = a.timeout.unwrap_or(Duration::from_secs(60));
    if timeout < Duration::from_secs(1) || timeout > Duration::from_secs(590) {
        return Err(ConfigError::invalid(
            "approvals.timeout",
            "must be between 1s and 590s (Envoy's max_message_timeout in envoy/sidecar.yaml is 600s)",
        ));
    }
    let max_pending = a.max_pending.unwrap_or(100);
    if max_pending == 0 {
        return Err(ConfigError::invalid(
            "approvals.max_pending",
            "must be at least 1",
        ));
    }
    Ok(ApprovalsConfig {
        timeout,
        max_pending,
    })
}
