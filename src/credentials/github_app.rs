//! `github_app`: GitHub App installation tokens restricted to the repositories the grant
//! maps to.
//!
//! actbridge holds the App's private key. For a request to
//! `/repos/{owner}/{repo}/…` it checks that the repository is one the grant maps to
//! (before any token request), then injects `Authorization: Bearer <installation token>`
//! where the token was requested for exactly the grant's repositories and the configured
//! permissions. GitHub enforces both on every call made with it. Injected tokens are
//! cached per (repositories, permissions) until 5 minutes before their `expires_at`, and
//! forgotten as soon as GitHub answers 401 to one (revoked, or the App's key rotated):
//! the next request mints a new one.
//!
//! A token actbridge injects is shared by every request with the same repositories and
//! never leaves actbridge; a vended token is minted for that one caller and never cached
//! or injected, so no holder can revoke (`DELETE /installation/token`) or leak a token
//! anyone else relies on.

mod app_jwt;
mod token_client;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderValue;
use http::header::{AUTHORIZATION, PROXY_AUTHORIZATION};

use super::{CredentialError, Grantee, HeaderChanges, HttpRequest, Scope, Vended};
use crate::config::GithubAppConfig;
use crate::config::is_repo_name;

/// A token is dropped from the cache this long before GitHub's `expires_at`.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

struct CacheFor;

impl<K> moka::Expiry<K, Arc<token_client::InstallationToken>> for CacheFor {
    fn expire_after_create(
        &self,
        _: &K,
        v: &Arc<token_client::InstallationToken>,
        _: Instant,
    ) -> Option<Duration> {
        Some(v.life.saturating_sub(EXPIRY_MARGIN))
    }
}

/// GitHub's answer to an installation-token request, read as the backend reads it (see
/// `credentials::parse_github_token_response`): the token's life, or why it is unusable.
pub(super) fn parse_token_answer(
    status: u16,
    body: &[u8],
    repositories: &[String],
    permissions: &std::collections::BTreeMap<String, String>,
    now: std::time::SystemTime,
) -> Result<Duration, CredentialError> {
    token_client::parse_answer(status, body, repositories, permissions, now).map(|t| t.life)
}

/// The `github_app` backend.
pub struct GithubApp {
    cfg: GithubAppConfig,
    client: token_client::TokenClient,
    tokens: moka::future::Cache<Vec<String>, Arc<token_client::InstallationToken>>,
    /// Hits and misses of `tokens`; a miss is one mint.
    stats: Arc<crate::telemetry::metrics::CacheStats>,
}

impl GithubApp {
    pub(super) fn new(cfg: &GithubAppConfig) -> GithubApp {
        GithubApp {
            cfg: cfg.clone(),
            client: token_client::TokenClient::new(cfg),
            stats: crate::telemetry::metrics::CacheStats::shared(),
            tokens: moka::future::Cache::builder()
                .max_capacity(cfg.cache_entries)
                .expire_after(CacheFor)
                .build(),
        }
    }

    /// `/repos/{owner}/{repo}/…` of the configured owner: the resource is the
    /// repository and the rest of the path. Any other API path cannot be scoped to
    /// repositories and is refused.
    pub(super) fn scope(&self, req: &HttpRequest<'_>) -> Result<Scope, CredentialError> {
        let path = req.path.split(['?', '#']).next().unwrap_or("");
        let mut segments = path.trim_start_matches('/').split('/');
        let (Some("repos"), Some(owner), Some(repo)) =
            (segments.next(), segments.next(), segments.next())
        else {
            return Err(CredentialError::Unsupported(
                "only /repos/{owner}/{repo}/… can be scoped to repositories".into(),
            ));
        };
        if !owner.eq_ignore_ascii_case(&self.cfg.owner) {
            return Err(CredentialError::Unsupported("another owner".into()));
        }
        if !is_repo_name(repo) {
            return Err(CredentialError::Unsupported(
                "a malformed repository name".into(),
            ));
        }
        let rest: Vec<&str> = segments.collect();
        if rest
            .iter()
            .any(|s| matches!(*s, "." | "..") || s.contains('%'))
        {
            return Err(CredentialError::Unsupported(
                "dot or encoded segments in a repository path".into(),
            ));
        }
        let action = super::action_of(req.method);
        Ok(Scope {
            action,
            resource: std::iter::once(repo.to_string())
                .chain(rest.iter().filter(|s| !s.is_empty()).map(|s| s.to_string()))
                .collect(),
            object: repo.to_ascii_lowercase(),
        })
    }

    pub(super) fn vend_scope(&self, action: &str) -> Result<Scope, CredentialError> {
        if action != "read" {
            return Err(CredentialError::BadVendRequest(
                "`action` must be `read` for GitHub".into(),
            ));
        }
        Ok(Scope {
            action: "read",
            resource: Vec::new(),
            object: String::new(),
        })
    }

    pub(super) async fn inject(
        &self,
        who: &Grantee<'_>,
        scope: &Scope,
    ) -> Result<HeaderChanges, CredentialError> {
        let repositories = self.repositories(who.grant)?;
        if !repositories.contains(&scope.object) {
            return Err(CredentialError::OutsideGrant(format!(
                "repository `{}` is not one the grant maps to",
                scope.object
            )));
        }
        let token = self.token(repositories.clone()).await?;
        let value = HeaderValue::from_str(&format!("Bearer {}", token.token))
            .map_err(|_| CredentialError::InvalidResponse("token is not a header value".into()))?;
        Ok(HeaderChanges {
            set: vec![(AUTHORIZATION, value)],
            remove: vec![PROXY_AUTHORIZATION],
            on_rejected: Some(self.forget_on_rejection(repositories, token)),
        })
    }

    pub(super) fn forget_cached(&self) {
        self.tokens.invalidate_all();
    }

    pub(super) fn cache_stats(&self) -> &Arc<crate::telemetry::metrics::CacheStats> {
        &self.stats
    }

    /// Forgets `token` (cached for `repositories`) when GitHub rejects it — only if it is
    /// still the cached one: a token minted meanwhile stays.
    fn forget_on_rejection(
        &self,
        repositories: Vec<String>,
        token: Arc<token_client::InstallationToken>,
    ) -> super::OnRejected {
        let tokens = self.tokens.clone();
        super::OnRejected::new(move || {
            let (tokens, key, rejected) = (tokens.clone(), repositories.clone(), token.clone());
            Box::pin(async move {
                let repositories = key.join(",");
                tokens
                    .entry(key)
                    .and_compute_with(|cached| async move {
                        match cached {
                            Some(c) if Arc::ptr_eq(c.value(), &rejected) => {
                                moka::ops::compute::Op::Remove
                            }
                            _ => moka::ops::compute::Op::Nop,
                        }
                    })
                    .await;
                tracing::warn!(
                    repositories,
                    "GitHub rejected an installation token (401): forgotten, the next request mints a new one"
                );
            })
        })
    }

    /// A token minted for this caller alone: never cached, never injected.
    pub(super) async fn vend(&self, who: &Grantee<'_>) -> Result<Vended, CredentialError> {
        let repositories = self.repositories(who.grant)?;
        let token = self.client.installation_token(&repositories).await?;
        tracing::info!(
            installation = self.cfg.installation_id,
            repositories = repositories.join(","),
            expires_at = token.expires_at,
            for_whom = who.credential_name(),
            "GitHub installation token vended"
        );
        Ok(Vended(serde_json::json!({
            "token": token.token,
            "expires_at": token.expires_at,
            "owner": self.cfg.owner,
            "repositories": token.repositories,
            "permissions": token.permissions,
        })))
    }

    /// The repositories `grant` maps to (lower case, sorted); none is a refusal.
    fn repositories(&self, grant: &[String]) -> Result<Vec<String>, CredentialError> {
        // GitHub repository names are case-insensitive: compared lower case.
        let mut repos: Vec<String> = super::mapped(grant, &self.cfg.repositories)?
            .iter()
            .map(|r| r.to_ascii_lowercase())
            .collect();
        repos.sort();
        repos.dedup();
        Ok(repos)
    }

    /// An installation token for exactly `repositories`, cached; concurrent misses
    /// share one request.
    async fn token(
        &self,
        repositories: Vec<String>,
    ) -> Result<Arc<token_client::InstallationToken>, CredentialError> {
        self.stats
            .get_or_mint(&self.tokens, repositories.clone(), async {
                let t = self.client.installation_token(&repositories).await?;
                tracing::info!(
                    installation = self.cfg.installation_id,
                    repositories = repositories.join(","),
                    expires_at = t.expires_at,
                    "GitHub installation token issued"
                );
                Ok(Arc::new(t))
            })
            .await
            .map_err(|e: Arc<CredentialError>| (*e).clone())
    }
}
