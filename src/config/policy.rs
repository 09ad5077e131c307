//! The `policy` section: where the Rego policy lives and how it is evaluated, as written
//! ([`RawPolicy`]) and validated ([`PolicyConfig`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// `policy`: the Rego policy every inbound request and every outbound request on an
/// `exchange` route is judged by. Without this section no policy is applied (tokens are
/// still verified and the delegation rules still hold).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Directory of the policy: every `*.rego` file under it (recursively) is a module,
    /// every `*.json`, `*.yaml` and `*.yml` file is data merged into `data`. A relative
    /// path is taken from the config file's directory. Exactly one of `dir` and `opa_url`.
    #[serde(default)]
    pub dir: Option<String>,
    /// A remote OPA server's base URL (`http://127.0.0.1:8181`) to ask instead of the
    /// in-process engine: `POST {opa_url}/v1/data/{entrypoint as a path}`. Unreachable, a
    /// timeout (`eval_timeout`) or 502/503/504 refuse with 503; any other failure with 403.
    #[serde(default)]
    pub opa_url: Option<String>,
    /// The rule evaluated for each request; it must produce
    /// `{allow, reason, grant, approval_required}`. Default `data.actbridge.decision`.
    #[serde(default)]
    pub entrypoint: Option<String>,
    /// How often the directory is checked for changes; a change is loaded atomically, and
    /// a version that fails to load is reported and the running one kept. `0s` disables
    /// reloading. Default `2s`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub reload_interval: Option<Duration>,
    /// How many decisions are remembered, keyed by (policy version, input document).
    /// Default `10000`; `0` disables the cache.
    #[serde(default)]
    pub decision_cache_entries: Option<u64>,
    /// How long a remembered decision is kept. Default `60s`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub decision_cache_ttl: Option<Duration>,
    /// Longest one evaluation may run (for `opa_url`, one OPA request); past it the request
    /// is refused. Default `100ms`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub eval_timeout: Option<Duration>,
}

/// Where the policy is evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// In process, over this directory.
    Directory(PathBuf),
    /// A remote OPA at this base URL.
    Opa(url::Url),
}

/// The validated `policy` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Where the policy is evaluated.
    pub source: PolicySource,
    /// Rule evaluated per request (`data.<package>.<rule>`).
    pub entrypoint: String,
    /// Reload check period; `None` = no reloading.
    pub reload_interval: Option<Duration>,
    /// Decision cache capacity (0 = off).
    pub decision_cache_entries: u64,
    /// Decision cache time to live.
    pub decision_cache_ttl: Duration,
    /// Evaluation time limit.
    pub eval_timeout: Duration,
}

pub(super) fn validate_policy(p: &RawPolicy) -> Result<PolicyConfig, ConfigError> {
    let source = match (&p.dir, &p.opa_url) {
        (Some(dir), None) if dir.is_empty() => {
            return Err(ConfigError::invalid("policy.dir", "must not be empty"));
        }
        (Some(dir), None) => PolicySource::Directory(PathBuf::from(dir)),
        (None, Some(url)) => PolicySource::Opa(super::validate::http_url("policy.opa_url", url)?),
        _ => {
            return Err(ConfigError::invalid(
                "policy",
                "exactly one of `dir` and `opa_url` is required",
            ));
        }
    };
    let entrypoint = p
        .entrypoint
        .clone()
        .unwrap_or_else(|| "data.actbridge.decision".into());
    let well_formed = entrypoint.strip_prefix("data.").is_some_and(|rest| {
        rest.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !part.starts_with(|c: char| c.is_ascii_digit())
        })
    });
    if !well_formed {
        return Err(ConfigError::invalid(
            "policy.entrypoint",
            format_args!("`{entrypoint}` is not a rule path like `data.actbridge.decision`"),
        ));
    }
    let eval_timeout = p.eval_timeout.unwrap_or(Duration::from_millis(100));
    if eval_timeout.is_zero() || eval_timeout > Duration::from_secs(5) {
        return Err(ConfigError::invalid(
            "policy.eval_timeout",
            "must be more than 0 and at most 5s",
        ));
    }
    let decision_cache_ttl = p.decision_cache_ttl.unwrap_or(Duration::from_secs(60));
    if decision_cache_ttl.is_zero() {
        return Err(ConfigError::invalid(
            "policy.decision_cache_ttl",
            "must be more than 0 (set decision_cache_entries: 0 to disable the cache)",
        ));
    }
    Ok(PolicyConfig {
        source,
        entrypoint,
        reload_interval: Some(p.reload_interval.unwrap_or(Duration::from_secs(2)))
            .filter(|d| !d.is_zero()),
        decision_cache_entries: p.decision_cache_entries.unwrap_or(10_000),
        decision_cache_ttl,
        eval_timeout,
    })
}
