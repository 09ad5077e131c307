//! `POST /app/installations/{id}/access_tokens`: an installation token restricted to some
//! repositories and permissions. GitHub's REST conventions: `Accept:
//! application/vnd.github+json`, `X-GitHub-Api-Version`, a `User-Agent`, errors as
//! `{"message": …, "documentation_url": …}`.
//!
//! Written with reqwest rather than a GitHub crate: this is the one call needed, and
//! the crates that wrap it (octocrab) bring a second HTTP and TLS stack.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::CredentialError;
use crate::config::GithubAppConfig;
use crate::http_client;

/// Largest answer read from GitHub.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// An installation token as GitHub issued it.
#[derive(Deserialize)]
pub(super) struct InstallationToken {
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
    #[serde(default)]
    pub permissions: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "repository_names")]
    pub repositories: Vec<String>,
}

impl InstallationToken {
    /// Time left until `expires_at` (zero when past or unreadable: never cached).
    pub fn lifetime(&self) -> Duration {
        parse_rfc3339(&self.expires_at)
            .and_then(|t| t.duration_since(std::time::SystemTime::now()).ok())
            .unwrap_or_default()
    }
}

/// Parses an RFC 3339 UTC time (`2026-11-25T10:00:00Z`) as GitHub writes it.
fn parse_rfc3339(s: &str) -> Option<std::time::SystemTime> {
    let dt = aws_sdk_sts::primitives::DateTime::from_str(
        s,
        aws_sdk_sts::primitives::DateTimeFormat::DateTime,
    )
    .ok()?;
    std::time::SystemTime::try_from(dt).ok()
}

fn repository_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    struct Repo {
        name: String,
    }
    let repos: Vec<Repo> = Vec::deserialize(d)?;
    Ok(repos
        .into_iter()
        .map(|r| r.name.to_ascii_lowercase())
        .collect())
}

#[derive(Serialize)]
struct TokenRequest<'a> {
    repositories: &'a [String],
    permissions: &'a BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct GithubError {
    message: String,
}

pub(super) struct TokenClient {
    http: reqwest::Client,
    url: url::Url,
    app_id: u64,
    key: crate::config::SigningKey,
    permissions: BTreeMap<String, String>,
}

impl TokenClient {
    pub fn new(cfg: &GithubAppConfig) -> TokenClient {
        let base = cfg.api_url.as_str().trim_end_matches('/');
        let url = format!(
            "{base}/app/installations/{}/access_tokens",
            cfg.installation_id
        );
        TokenClient {
            http: http_client::build(cfg.timeout),
            url: url::Url::parse(&url).unwrap_or_else(|_| cfg.api_url.clone()),
            app_id: cfg.app_id,
            key: cfg.private_key.clone(),
            permissions: cfg.permissions.clone(),
        }
    }

    pub async fn installation_token(
        &self,
        repositories: &[String],
    ) -> Result<InstallationToken, CredentialError> {
        let jwt = super::app_jwt::sign(self.app_id, &self.key.0)?;
        // The trace context of the calling span (the `credential` stage).
        let resp = http_client::traced(self.http.post(self.url.clone()))
            .bearer_auth(jwt)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header("user-agent", "actbridge")
            .json(&TokenRequest {
                repositories,
                permissions: &self.permissions,
            })
            .send()
            .await
            .map_err(|e| {
                CredentialError::Unavailable(if e.is_timeout() {
                    "GitHub timed out".into()
                } else {
                    "GitHub unreachable".into()
                })
            })?;
        let status = resp.status();
        let body = http_client::read_limited(resp, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| CredentialError::Unavailable(e.to_string()))?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(CredentialError::Unavailable(format!(
                "GitHub HTTP {status}"
            )));
        }
        if !status.is_success() {
            let message: String = serde_json::from_slice::<GithubError>(&body)
                .map(|e| {
                    e.message
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(200)
                        .collect()
                })
                .unwrap_or_default();
            tracing::warn!(%status, message, "GitHub refused the installation token");
            return Err(CredentialError::Refused {
                code: format!("HTTP {}", status.as_u16()),
            });
        }
        let token: InstallationToken = serde_json::from_slice(&body).map_err(|e| {
            CredentialError::InvalidResponse(format!("not an installation token: {e}"))
        })?;
        // A token for more than was asked would widen the grant: never used.
        let wider_permission =
            token
                .permissions
                .iter()
                .any(|(name, level)| match self.permissions.get(name) {
                    Some(asked) => asked == "read" && level != "read",
                    None => name != "metadata",
                });
        if token.token.is_empty()
            || token.repositories.is_empty()
            || token.repositories.iter().any(|r| !repositories.contains(r))
            || wider_permission
        {
            return Err(CredentialError::InvalidResponse(
                "the token is wider than requested (repositories or permissions)".into(),
            ));
        }
        Ok(token)
    }
}
