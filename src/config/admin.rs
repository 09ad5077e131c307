//! The `admin_api` and `revocation` sections: who may use the admin API on the admin
//! listener, and where the deny list is kept, as written and validated.
//!
//! ```text
//! admin_api:
//!   audiences: [actbridge-admin]
//!   roles: [actbridge-admin]
//! revocation:
//!   file: /var/lib/actbridge/revocations.json
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// `admin_api`: the authenticated part of the admin listener (revocations, approvals).
/// Without it those routes answer 404 and only `/healthz`, `/readyz` and `/metrics` are
/// served. Callers present a bearer token from one of the configured `issuers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminApi {
    /// Audiences an admin token must carry (one of them). Required, non-empty.
    pub audiences: Vec<String>,
    /// Roles that make a token's holder an admin (one of them): matched against the
    /// token's `realm_access.roles` (Keycloak realm roles), `roles` and `groups`.
    /// Required, non-empty.
    pub roles: Vec<String>,
}

/// `revocation`: the deny list checked on every request.
#[derive(Debug, Deserialize)]
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApprovals {
    /// How long a request waits before it is denied. Default `60s`; at most `590s` (the
    /// shipped Envoy config lets a held request wait up to `max_message_timeout: 600s`).
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

/// The validated `admin_api` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminApiConfig {
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
