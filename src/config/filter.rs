//! Validation of `credentials[].filter` (the raw types are in [`super::credentials`]).

use super::ConfigError;
use super::credentials::{FilterConfig, FilterRule, RawFilter, ValueAt};
use super::sources::Sources;

pub(super) fn validate(
    key: &str,
    f: &RawFilter,
    env: &Sources<'_>,
) -> Result<FilterConfig, ConfigError> {
    if f.token_file.is_some() == f.token_env.is_some() {
        return Err(ConfigError::invalid(
            key,
            "set exactly one of `token_file` and `token_env`",
        ));
    }
    let token = super::validate::external_secret(
        (&format!("{key}.token_file"), f.token_file.as_deref()),
        (&format!("{key}.token_env"), f.token_env.as_deref()),
        env,
    )?;
    let valid =
        |t: &str| !t.is_empty() && http::HeaderValue::from_str(&format!("Bearer {t}")).is_ok();
    if !valid(&token.expose()) {
        return Err(ConfigError::invalid(
            key,
            "the service token is empty or not a header value",
        ));
    }
    if f.rules.is_empty() {
        return Err(ConfigError::invalid(
            format!("{key}.rules"),
            "at least one rule",
        ));
    }
    let mut rules = Vec::with_capacity(f.rules.len());
    for (i, r) in f.rules.iter().enumerate() {
        let k = format!("{key}.rules[{i}]");
        if r.method.is_empty() || !r.method.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ConfigError::invalid(
                format!("{k}.method"),
                "an HTTP method in capitals",
            ));
        }
        if !r.path.starts_with('/') || r.path.contains(['?', '#', '%']) {
            return Err(ConfigError::invalid(
                format!("{k}.path"),
                "an exact path starting with `/`, without query or escapes",
            ));
        }
        let value_at = match (&r.body_field, &r.query) {
            (Some(f), None) if !f.is_empty() => ValueAt::BodyField(f.clone()),
            (None, Some(q)) if !q.is_empty() => ValueAt::Query(q.clone()),
            _ => {
                return Err(ConfigError::invalid(
                    k,
                    "set exactly one of `body_field` and `query` (non-empty)",
                ));
            }
        };
        if r.allow.is_empty() {
            return Err(ConfigError::invalid(
                format!("{k}.allow"),
                "map at least one grant entry to values",
            ));
        }
        rules.push(FilterRule {
            method: r.method.clone(),
            path: r.path.clone(),
            value_at,
            allow: r.allow.clone(),
        });
    }
    let max_body_bytes = f.max_body_bytes.unwrap_or(64 * 1024);
    if !(1..=1 << 20).contains(&max_body_bytes) {
        return Err(ConfigError::invalid(
            format!("{key}.max_body_bytes"),
            "must be between 1 and 1048576",
        ));
    }
    Ok(FilterConfig {
        token,
        rules,
        max_body_bytes,
    })
}
