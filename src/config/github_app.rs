//! Validation of `credentials[].github_app` (the raw type is in [`super::credentials`]).

use std::collections::BTreeMap;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::credentials::{GithubAppConfig, RawGithubApp};
use super::sources::Sources;
use super::{ConfigError, SigningKey};

pub(super) fn validate(
    key: &str,
    g: &RawGithubApp,
    env: &Sources<'_>,
) -> Result<GithubAppConfig, ConfigError> {
    if g.app_id == 0 {
        return Err(ConfigError::invalid(
            format!("{key}.app_id"),
            "must be the App's id",
        ));
    }
    if g.installation_id == 0 {
        return Err(ConfigError::invalid(
            format!("{key}.installation_id"),
            "must be the installation's id",
        ));
    }
    let file_key = format!("{key}.private_key_file");
    let private_key = match env.secret_file(&file_key, &g.private_key_file)? {
        Some(pem) => super::client::signing_key_from_pem(&pem, Algorithm::RS256)
            .map_err(|e| ConfigError::invalid(&file_key, e))?,
        None => super::client::offline_signing_key(&file_key, Algorithm::RS256)?,
    };
    let api_url = super::validate::http_url(
        &format!("{key}.api_url"),
        g.api_url.as_deref().unwrap_or("https://api.github.com"),
    )?;
    if !is_login(&g.owner) {
        return Err(ConfigError::invalid(
            format!("{key}.owner"),
            "must be a GitHub account name (letters, digits, `-`)",
        ));
    }
    if g.repositories.is_empty() {
        return Err(ConfigError::invalid(
            format!("{key}.repositories"),
            "map at least one grant entry to repositories",
        ));
    }
    for (entry, repos) in &g.repositories {
        for (i, r) in repos.iter().enumerate() {
            if !is_repo_name(r) {
                return Err(ConfigError::invalid(
                    format!("{key}.repositories.{entry}[{i}]"),
                    "a repository name within `owner` (letters, digits, `.`, `_`, `-`)",
                ));
            }
        }
    }
    let permissions = g.permissions.clone().unwrap_or_else(|| {
        BTreeMap::from([
            ("contents".to_string(), "read".to_string()),
            ("metadata".to_string(), "read".to_string()),
        ])
    });
    for (name, level) in &permissions {
        let name_ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        if !name_ok || !matches!(level.as_str(), "read" | "write") {
            return Err(ConfigError::invalid(
                format!("{key}.permissions.{name}"),
                "a GitHub App permission name with level `read` or `write`",
            ));
        }
    }
    let timeout = g.timeout.unwrap_or(Duration::from_secs(2));
    if timeout.is_zero() {
        return Err(ConfigError::invalid(
            format!("{key}.timeout"),
            "must be greater than zero",
        ));
    }
    let cache_entries = g.cache_entries.unwrap_or(1000);
    if cache_entries == 0 {
        return Err(ConfigError::invalid(
            format!("{key}.cache_entries"),
            "must be at least 1",
        ));
    }
    Ok(GithubAppConfig {
        app_id: g.app_id,
        private_key: SigningKey(std::sync::Arc::new(private_key)),
        installation_id: g.installation_id,
        api_url,
        owner: g.owner.clone(),
        repositories: g.repositories.clone(),
        permissions,
        timeout,
        cache_entries,
    })
}

/// A GitHub account name: letters, digits and `-`, 1–39 characters.
fn is_login(s: &str) -> bool {
    (1..=39).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A repository name: letters, digits, `.`, `_`, `-`, 1–100 characters, not `.`/`..`.
pub(crate) fn is_repo_name(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && s != "."
        && s != ".."
}
