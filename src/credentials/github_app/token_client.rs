//! `POST /app/installations/{id}/access_tokens`: an installation token restricted to some
//! repositories and permissions. GitHub's REST conventions: `Accept:
//! application/vnd.github+json`, `X-GitHub-Api-Version`, a `User-Agent`, errors as
//! `{"message": …, "documentation_url": …}`.
//!
//! Written with reqwest rather than a GitHub crate: this is the one call needed, and
//! the crates that wrap it (octocrab) bring a second HTTP and TLS stack.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::CredentialError;
use crate::config::GithubAppConfig;
use crate::http_client;

/// Largest answer read from GitHub.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Longest installation token accepted: GitHub's live one hour, plus 5 minutes for a
/// clock that differs from GitHub's. An `expires_at` beyond it, not after now, or not
/// an RFC 3339 time (a year past 9999 included) is a garbage answer: the token is
/// never used.
const MAX_TOKEN_LIFE: Duration = Duration::from_secs(3600 + 300);

/// An installation token as GitHub issued it, checked.
pub(super) struct InstallationToken {
    pub token: String,
    /// RFC 3339, as GitHub wrote it.
    pub expires_at: String,
    pub permissions: BTreeMap<String, String>,
    pub repositories: Vec<String>,
    /// From when it was read until `expires_at`: within 1 s..=`MAX_TOKEN_LIFE`.
    pub life: Duration,
}

/// The answer as it arrives.
#[derive(Deserialize)]
struct RawToken {
    token: String,
    expires_at: String,
    #[serde(default)]
    permissions: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "repository_names")]
    repositories: Vec<String>,
    /// `selected` for a token restricted to `repositories`; `all` is every repository of
    /// the installation, whatever the list says.
    #[serde(default)]
    repository_selection: Option<String>,
}

/// Parses an RFC 3339 UTC time (`2026-11-25T10:00:00Z`) as GitHub writes it.
fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    crate::clock::parse_rfc3339(s)
}

/// GitHub's permission levels, narrowest first; `None` for a level it does not have.
fn rank(level: &str) -> Option<u8> {
    match level {
        "read" => Some(0),
        "write" => Some(1),
        "admin" => Some(2),
        _ => None,
    }
}

/// Reads GitHub's answer (its HTTP status and body) to a request for `repositories`
/// with `permissions`, as of `now`: the checked token, or why there is none. 5xx and
/// 429 are `Unavailable`, another non-2xx `Refused`; a token that is wider than asked
/// (repositories, a permission or level not asked, a level GitHub does not have) or
/// whose `expires_at` is outside (now, now + `MAX_TOKEN_LIFE`] is `InvalidResponse`.
/// Pure: the backend and fuzz target `peer` both use it.
pub(super) fn parse_answer(
    status: u16,
    body: &[u8],
    repositories: &[String],
    permissions: &BTreeMap<String, String>,
    now: SystemTime,
) -> Result<InstallationToken, CredentialError> {
    let Ok(status) = reqwest::StatusCode::from_u16(status) else {
        return Err(CredentialError::InvalidResponse(format!(
            "GitHub HTTP status {status} is not a status"
        )));
    };
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(CredentialError::Unavailable(format!(
            "GitHub HTTP {status}"
        )));
    }
    if !status.is_success() {
        let message: String = serde_json::from_slice::<GithubError>(body)
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
    let raw: RawToken = serde_json::from_slice(body)
        .map_err(|e| CredentialError::InvalidResponse(format!("not an installation token: {e}")))?;
    // A token for more than was asked would widen the grant: never used.
    let wider_permission =
        raw.permissions
            .iter()
            .any(|(name, level)| match permissions.get(name) {
                Some(asked) => {
                    !matches!((rank(level), rank(asked)), (Some(got), Some(want)) if got <= want)
                }
                None => name != "metadata" || level != "read",
            });
    if raw.repository_selection.as_deref() != Some("selected") {
        return Err(CredentialError::InvalidResponse(
            "the token is not restricted to selected repositories (repository_selection)".into(),
        ));
    }
    if raw.token.is_empty()
        || raw.repositories.is_empty()
        || raw.repositories.iter().any(|r| !repositories.contains(r))
        || wider_permission
    {
        return Err(CredentialError::InvalidResponse(
            "the token is wider than requested (repositories or permissions)".into(),
        ));
    }
    let life = parse_rfc3339(&raw.expires_at)
        .and_then(|at| at.duration_since(now).ok())
        .filter(|life| !life.is_zero() && *life <= MAX_TOKEN_LIFE)
        .ok_or_else(|| {
            CredentialError::InvalidResponse(format!(
                "expires_at `{}` is not a time within {} s from now",
                raw.expires_at
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(40)
                    .collect::<String>(),
                MAX_TOKEN_LIFE.as_secs()
            ))
        })?;
    Ok(InstallationToken {
        token: raw.token,
        expires_at: raw.expires_at,
        permissions: raw.permissions,
        repositories: raw.repositories,
        life,
    })
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
    pub(super) fn new(cfg: &GithubAppConfig) -> TokenClient {
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

    pub(super) async fn installation_token(
        &self,
        repositories: &[String],
    ) -> Result<InstallationToken, CredentialError> {
        crate::telemetry::metrics::timed("github_app", self.request_token(repositories)).await
    }

    async fn request_token(
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
                CredentialError::Unavailable(format!("GitHub: {}", http_client::describe(&e)))
            })?;
        let status = resp.status();
        let body = http_client::read_limited(resp, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| CredentialError::Unavailable(e.to_string()))?;
        parse_answer(
            status.as_u16(),
            &body,
            repositories,
            &self.permissions,
            SystemTime::now(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-11-24T16:00:00Z.
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000)
    }

    fn asked() -> (Vec<String>, BTreeMap<String, String>) {
        (
            vec!["docs".into()],
            BTreeMap::from([("contents".to_string(), "read".to_string())]),
        )
    }

    fn read(expires_at: &str, permissions: &str) -> Result<Duration, CredentialError> {
        let body = format!(
            r#"{{"token":"ghs_secret","expires_at":{expires_at},"permissions":{permissions},"repository_selection":"selected","repositories":[{{"name":"Docs"}}]}}"#
        );
        let (repos, perms) = asked();
        parse_answer(201, body.as_bytes(), &repos, &perms, now()).map(|t| t.life)
    }

    const READ: &str = r#"{"contents":"read","metadata":"read"}"#;

    #[test]
    fn expires_at_must_be_a_time_within_the_next_hour_and_five_minutes() {
        assert_eq!(
            read(r#""2025-11-24T17:00:00Z""#, READ),
            Ok(Duration::from_secs(3600))
        );
        assert_eq!(read(r#""2025-11-24T17:05:00Z""#, READ), Ok(MAX_TOKEN_LIFE));
        for bad in [
            r#""99999-11-24T17:00:00Z""#,
            r#""9999-12-31T23:59:59Z""#,
            r#""2025-11-24T17:05:01Z""#,
            r#""2025-11-24T16:00:00Z""#,
            r#""1970-01-01T00:00:00Z""#,
            r#""2025-11-24T18:00:00+01:00""#,
            r#""garbage""#,
            r#""""#,
            "1764003600",
            "1e300",
            "null",
        ] {
            let got = read(bad, READ);
            match got {
                Err(CredentialError::InvalidResponse(why)) => {
                    assert!(!why.contains("ghs_secret"), "{bad}: {why}")
                }
                other => panic!("expires_at {bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_permission_or_level_not_asked_for_is_a_wider_token() {
        let soon = r#""2025-11-24T17:00:00Z""#;
        assert!(read(soon, r#"{"contents":"read"}"#).is_ok());
        assert!(read(soon, "{}").is_ok());
        for wider in [
            r#"{"contents":"write"}"#,
            r#"{"contents":"admin"}"#,
            r#"{"contents":"READ"}"#,
            r#"{"contents":""}"#,
            r#"{"metadata":"write"}"#,
            r#"{"issues":"read"}"#,
        ] {
            assert!(
                matches!(read(soon, wider), Err(CredentialError::InvalidResponse(_))),
                "{wider}"
            );
        }
        // Asked for write: read or write is within it, admin is not.
        let (repos, _) = asked();
        let perms = BTreeMap::from([("contents".to_string(), "write".to_string())]);
        let answer = |level: &str| {
            let body = format!(
                r#"{{"token":"t","expires_at":"2025-11-24T17:00:00Z","permissions":{{"contents":"{level}"}},"repository_selection":"selected","repositories":[{{"name":"docs"}}]}}"#
            );
            parse_answer(201, body.as_bytes(), &repos, &perms, now()).is_ok()
        };
        assert!(answer("read") && answer("write"));
        assert!(!answer("admin") && !answer("root"));
    }

    #[test]
    fn a_token_for_all_repositories_is_never_used() {
        let (repos, perms) = asked();
        let answer = |selection: &str| {
            let body = format!(
                r#"{{"token":"t","expires_at":"2025-11-24T17:00:00Z","permissions":{{"contents":"read"}},{selection}"repositories":[{{"name":"docs"}}]}}"#
            );
            parse_answer(201, body.as_bytes(), &repos, &perms, now()).map(|t| t.life)
        };
        assert!(answer(r#""repository_selection":"selected","#).is_ok());
        for selection in [
            r#""repository_selection":"all","#,
            "",
            r#""repository_selection":null,"#,
        ] {
            assert!(
                matches!(answer(selection), Err(CredentialError::InvalidResponse(_))),
                "{selection}"
            );
        }
    }

    #[test]
    fn statuses_sort_into_unavailable_refused_and_invalid() {
        let (repos, perms) = asked();
        let kind = |status: u16| match parse_answer(status, b"{}", &repos, &perms, now()) {
            Err(CredentialError::Unavailable(_)) => "unavailable",
            Err(CredentialError::Refused { .. }) => "refused",
            Err(CredentialError::InvalidResponse(_)) => "invalid",
            other => panic!("{status}: {:?}", other.map(|t| t.life)),
        };
        assert_eq!(kind(502), "unavailable");
        assert_eq!(kind(429), "unavailable");
        assert_eq!(kind(422), "refused");
        assert_eq!(kind(201), "invalid");
        assert_eq!(kind(0), "invalid");
    }
}
