//! Validation of `credentials[].postgres` (the raw type is in [`super::credentials`]).

use std::time::Duration;

use super::ConfigError;
use super::credentials::{PostgresConfig, RawPostgres};
use super::sources::Sources;

/// A `postgres` credential. Long by design: its keys in the order docs/credentials.md
/// lists them, each error naming the key.
pub(super) fn validate(
    key: &str,
    name: &str,
    p: &RawPostgres,
    env: &Sources<'_>,
) -> Result<PostgresConfig, ConfigError> {
    if p.host.is_empty() || p.host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::invalid(
            format!("{key}.host"),
            "a host name or address",
        ));
    }
    for (field, value) in [("database", &p.database), ("admin_user", &p.admin_user)] {
        if value.is_empty() || value.chars().any(char::is_control) {
            return Err(ConfigError::invalid(
                format!("{key}.{field}"),
                "must be a name",
            ));
        }
    }
    if p.admin_password_file.is_some() == p.admin_password_env.is_some() {
        return Err(ConfigError::invalid(
            key,
            "set exactly one of `admin_password_file` and `admin_password_env`",
        ));
    }
    let password = super::validate::external_secret(
        (
            &format!("{key}.admin_password_file"),
            p.admin_password_file.as_deref(),
        ),
        (
            &format!("{key}.admin_password_env"),
            p.admin_password_env.as_deref(),
        ),
        env,
    )?;
    if p.roles.is_empty() {
        return Err(ConfigError::invalid(
            format!("{key}.roles"),
            "map at least one grant entry to roles",
        ));
    }
    for (entry, roles) in &p.roles {
        for (i, r) in roles.iter().enumerate() {
            if !is_role_name(r) {
                return Err(ConfigError::invalid(
                    format!("{key}.roles.{entry}[{i}]"),
                    "a role name: 1–63 letters, digits or `_`",
                ));
            }
        }
    }
    let role_prefix = p.role_prefix.clone().unwrap_or_else(|| "actbridge_".into());
    if !is_role_name(&role_prefix) || role_prefix.len() > 30 {
        return Err(ConfigError::invalid(
            format!("{key}.role_prefix"),
            "1–30 letters, digits or `_`",
        ));
    }
    let ttl = p.ttl.unwrap_or(Duration::from_secs(900));
    if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(7 * 24 * 3600) {
        return Err(ConfigError::invalid(
            format!("{key}.ttl"),
            "must be between 1s and 7d",
        ));
    }
    let connection_limit = p.connection_limit.unwrap_or(2);
    if connection_limit == 0 || connection_limit > 10_000 {
        return Err(ConfigError::invalid(
            format!("{key}.connection_limit"),
            "must be between 1 and 10000",
        ));
    }
    let reaper_interval = p.reaper_interval.unwrap_or(Duration::from_secs(60));
    // Inside Envoy's ext_proc `message_timeout` (3 s as shipped): a hung server is
    // actbridge's 503, not Envoy's 504.
    let timeout = p.timeout.unwrap_or(Duration::from_secs(2));
    for (field, d) in [("reaper_interval", reaper_interval), ("timeout", timeout)] {
        if d < Duration::from_millis(100) {
            return Err(ConfigError::invalid(
                format!("{key}.{field}"),
                "must be at least 100ms",
            ));
        }
    }
    Ok(PostgresConfig {
        name: name.to_string(),
        host: p.host.clone(),
        port: p.port.unwrap_or(5432),
        database: p.database.clone(),
        admin_user: p.admin_user.clone(),
        admin_password: password,
        roles: p.roles.clone(),
        ttl,
        connection_limit,
        role_prefix,
        reaper_interval,
        timeout,
    })
}

/// A plain role name: 1–63 ASCII letters, digits or `_` (still quoted when used).
fn is_role_name(s: &str) -> bool {
    (1..=63).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
