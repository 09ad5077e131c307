//! The one YAML configuration file: raw serde types ([`raw`]) kept apart from the
//! validated runtime form ([`Config`]). Every error names the key it is about.
//!
//! Secrets never appear in the config's `Debug` output.

mod admin;
mod agent_protocols;
mod audit;
mod client;
mod credentials;
mod deadlines;
mod error;
mod filter;
mod github_app;
mod inbound;
mod introspection;
mod issuers;
mod lines;
mod listen;
mod outbound;
mod policy;
mod postgres;
mod rate_limits;
mod raw;
mod routes;
mod schema;
pub mod secret_files;
mod sources;
mod spiffe;
mod ssh_cert;
mod state;
mod telemetry;
mod token_types;
mod tokens;
mod types;
mod validate;
mod vars;

pub use admin::{AdminApiConfig, ApprovalsConfig, RevocationConfig};
pub use agent_protocols::{
    DEFAULT_MAX_BODY_BYTES, PROTECTED_RESOURCE_PATH, ProtectedResource, RouteProtocol,
};
pub use audit::{AuditConfig, CheckpointConfig, QueueFullPolicy};
pub use client::{ClientAuthConfig, ClientConfig, SigningKey};
pub use credentials::{
    AwsStsConfig, BackendConfig, CredentialConfig, FilterConfig, FilterRule, GithubAppConfig,
    PostgresConfig, PrefixMapping, SshCertConfig, ValueAt,
};
pub use error::ConfigError;
pub(crate) use error::Problems;
pub(crate) use github_app::is_repo_name;
pub use inbound::{IdentityHeaders, InboundConfig, PathMatch};
pub use introspection::{IntrospectionConfig, RawIntrospection};
pub use issuers::{ActorSource, ClientPattern, IssuerConfig, JwksSource};
pub use listen::ListenAddr;
pub use outbound::{DEFAULT_RETRY_AFTER, OutboundConfig};
pub use policy::{PolicyConfig, PolicySource};
pub use rate_limits::{Dimension, LimitConfig, OnUnavailable, RateLimitsConfig};
pub use raw::RawConfig;
pub use routes::{
    ACCESS_TOKEN_TYPE, CredentialMode, ExchangeTarget, RouteAction, RouteConfig, RouteTable,
    TokenRules,
};
pub use schema::json_schema;
pub use spiffe::{SPIFFE_ENDPOINT_SOCKET, SpiffeConfig};
pub use state::{RedisConfig, RedisTls, SentinelConfig};
pub use telemetry::{DEFAULT_LOG_ALLOWED, OtlpProtocol, Root, Sampling, TelemetryConfig};
pub use token_types::{RawTokenTypes, TokenTypes};
pub use types::{Config, Secret};

use sources::Sources;

/// Reads process environment variables. Tests inject a map instead of touching the
/// real environment (`std::env::set_var` races in multi-threaded tests).
pub trait Env {
    /// The value of `key`, if set and valid UTF-8.
    fn get(&self, key: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        std::collections::HashMap::get(self, key).cloned()
    }
}

impl Config {
    /// Reads, parses and validates the YAML file at `path`. Relative paths in it are
    /// read from its directory.
    pub fn load(path: &std::path::Path, env: &dyn Env) -> Result<Config, ConfigError> {
        let text = read(path)?;
        Self::from_sources(&text, &Sources::new(env).relative_to(path.parent()))
            .map_err(|e| e.in_file(path))
    }

    /// As [`Config::load`], without reading secrets (`check-config --offline`): a
    /// secret file need not exist nor a secret variable be set. Also returns the keys
    /// whose secret was not read. The config is for checking, never for serving.
    pub fn check_offline(
        path: &std::path::Path,
        env: &dyn Env,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let text = read(path)?;
        let sources = Sources::new(env).relative_to(path.parent()).offline(true);
        let cfg = Self::from_sources(&text, &sources).map_err(|e| e.in_file(path))?;
        Ok((cfg, sources.unread()))
    }

    /// Parses and validates a YAML document; relative paths are read from the working
    /// directory.
    pub fn from_yaml(text: &str, env: &dyn Env) -> Result<Config, ConfigError> {
        Self::from_sources(text, &Sources::new(env))
    }

    /// Every problem found, each with the line of its key.
    fn from_sources(text: &str, sources: &Sources<'_>) -> Result<Config, ConfigError> {
        let expanded = vars::expand(text, sources.env())?;
        let mut parsed = RawConfig::parse_all(&expanded);
        // What parsed is validated even when a part did not: one run, every problem.
        let validated = parsed
            .raw
            .take()
            .map(|raw| validate::validate(raw, sources));
        let mut problems = std::mem::take(&mut parsed.problems);
        match validated {
            Some(Ok(cfg)) if problems.is_empty() => return Ok(cfg),
            Some(Err(e)) => {
                for e in parsed.worth_reporting(e) {
                    problems.push(e);
                }
            }
            _ => {}
        }
        Err(problems
            .finish()
            .err()
            .unwrap_or_else(|| ConfigError::invalid(".", "not a config"))
            .located(None, &expanded))
    }
}

fn read(path: &std::path::Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.display().to_string(),
        source: e,
    })
}

/// The outbound route table of a YAML config, validated alone — no secret, key, policy or
/// peer is read — for generating Envoy's routes (`actbridge envoy-routes`) where the
/// sidecar's secrets are not. `None` when the config has no `outbound` section.
pub fn route_table_from_yaml(text: &str) -> Result<Option<RouteTable>, ConfigError> {
    let raw = RawConfig::parse(text)?;
    let kinds: Vec<(&str, &'static str)> = raw
        .credentials
        .iter()
        .map(|c| {
            let kind = match c {
                c if c.aws_sts.is_some() => "aws_sts",
                c if c.github_app.is_some() => "github_app",
                c if c.ssh_cert.is_some() => "ssh_cert",
                c if c.postgres.is_some() => "postgres",
                c if c.filter.is_some() => "filter",
                _ => "",
            };
            (c.name.as_str(), kind)
        })
        .collect();
    raw.outbound
        .as_ref()
        .map(|o| routes::validate_route_table(o.default_action, &o.routes, &kinds))
        .transpose()
}

#[cfg(test)]
mod tests;
