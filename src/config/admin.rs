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
