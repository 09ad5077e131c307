//! `state`: where the stores a security promise rests on are kept when several actbridge
//! processes must share them. Without this section every store is in this process's
//! memory (one replica; `make demo`). With `state.redis`, they are shared through Redis:
//! a `jti` accepted by one replica is refused by every other, a revocation posted to one
//! is enforced by all (within a second; see `sync_interval` for the bound when Redis
//! fails), and a request held for approval by one may be approved through any.

use std::time::Duration;

use serde::Deserialize;

use super::sources::Sources;
use super::validate::external_secret;
use super::{ConfigError, Secret};

/// `state`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// The Redis every replica shares (see [`RawRedis`]). Required in this section.
    pub redis: RawRedis,
}

/// `state.redis`: one Redis server (Redis 6.2 or later; Debian's `redis-server`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// `redis://HOST:PORT/DB` or, with TLS, `rediss://HOST:PORT/DB`. No password here:
    /// use `password_file` or `password_env`.
    pub url: String,
    /// A file holding the password (`AUTH`), e.g. a mounted Secret. Optional.
    #[serde(default)]
    pub password_file: Option<String>,
    /// An environment variable holding the password. Optional; not with `password_file`.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The ACL user the password belongs to (Redis 6 ACLs). Default: the default user.
    #[serde(default)]
    pub username: Option<String>,
    /// Longest wait for one Redis command, connecting included; past it the request is
    /// refused (503, fail closed). Default `250ms`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Prepended to every key (and to the events channel), so that deployments can
    /// share one Redis without sharing their memories. Default `actbridge:`.
    #[serde(default)]
    pub key_prefix: Option<String>,
    /// How often each replica reads the shared deny list again besides being told of a
    /// change (pub/sub loses a message sent while a replica reconnects): the bound on
    /// how late a revocation can be enforced while Redis answers. While Redis does not,
    /// the last list read is enforced (its age is `actbridge_revocations_sync_age_seconds`).
    /// Default `5s`, at least `100ms`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub sync_interval: Option<Duration>,
    /// `rediss://` only: a PEM file of the CA certificates the server's certificate must
    /// chain to (a private CA). Default: the system's roots.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// `rediss://` only: a PEM certificate (chain) for client authentication, when the
    /// server requires one (`tls-auth-clients yes`). With `key_file`.
    #[serde(default)]
    pub cert_file: Option<String>,
    /// `rediss://` only: the PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<String>,
    /// Redis Sentinel: the sentinels' `HOST:PORT`s. With them, the `url`'s host is the
    /// name of the master they watch (`redis://mymaster/0`, no port): actbridge asks a
    /// sentinel for the master's address when it connects, and again after a failure, so
    /// a failover is followed with no restart. Not with `ca_file`, `cert_file`.
    #[serde(default)]
    pub sentinels: Option<Vec<String>>,
}

/// The validated `state.redis`.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// The server's URL, credentials added (so never logged: [`Secret`]).
    pub url: Secret,
    /// The URL without credentials, for logs.
    pub display_url: String,
    /// One command's deadline.
    pub timeout: Duration,
    /// Every key's prefix.
    pub key_prefix: String,
    /// How often the deny list is read again.
    pub sync_interval: Duration,
    /// The TLS material beyond the system's roots (`ca_file`, `cert_file`/`key_file`).
    pub tls: Option<RedisTls>,
    /// With Redis Sentinel: the sentinels (`redis://HOST:PORT`) and the master's name
    /// (the `url`'s host).
    pub sentinel: Option<SentinelConfig>,
}

/// `state.redis.sentinels`, validated.
#[derive(Debug, Clone)]
pub struct SentinelConfig {
    /// `redis://HOST:PORT` of each sentinel.
    pub sentinels: Vec<String>,
    /// The master's name.
    pub master: String,
}

/// `state.redis.ca_file`, `cert_file` and `key_file`, read at start.
#[derive(Clone)]
pub struct RedisTls {
    /// PEM CA certificates; `None`: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate and key.
    pub client: Option<(Vec<u8>, Secret)>,
}

impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.client.is_some())
            .finish()
    }
}

/// `state`: `None` without the section (every store in memory).
pub(super) fn validate_state(
    raw: Option<&RawState>,
    env: &Sources<'_>,
) -> Result<Option<RedisConfig>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let r = &raw.redis;
    let mut url = url::Url::parse(&r.url)
        .map_err(|e| ConfigError::invalid("state.redis.url", format_args!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "redis" | "rediss") || url.host_str().is_none() {
        return Err(ConfigError::invalid(
            "state.redis.url",
            "must be redis://HOST[:PORT][/DB] or rediss://HOST[:PORT][/DB]",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::invalid(
            "state.redis.url",
            "holds credentials: use state.redis.username and password_file or password_env",
        ));
    }
    let display_url = url.to_string();
    let password = match (&r.password_file, &r.password_env) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                "state.redis.password_file",
                "set at most one of `password_file`, `password_env`",
            ));
        }
        (None, None) => None,
        (file, var) => Some(external_secret(
            ("state.redis.password_file", file.as_deref()),
            ("state.redis.password_env", var.as_deref()),
            env,
        )?),
    };
    if let Some(password) = &password {
        let username = r.username.as_deref().unwrap_or("default");
        let bad = |_| ConfigError::invalid("state.redis.username", "cannot be put in the URL");
        url.set_username(username).map_err(bad)?;
        // Read at start only: the URL holds it (rotating it needs a restart).
        url.set_password(Some(&password.expose())).map_err(bad)?;
    } else if r.username.is_some() {
        return Err(ConfigError::invalid(
            "state.redis.username",
            "needs password_file or password_env",
        ));
    }
    let timeout = r.timeout.unwrap_or(Duration::from_millis(250));
    if timeout.is_zero() {
        return Err(ConfigError::invalid(
            "state.redis.timeout",
            "must be greater than zero",
        ));
    }
    let key_prefix = r.key_prefix.clone().unwrap_or_else(|| "actbridge:".into());
    if key_prefix
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ConfigError::invalid(
            "state.redis.key_prefix",
            "must not hold whitespace or control characters",
        ));
    }
    let sync_interval = r.sync_interval.unwrap_or(Duration::from_secs(5));
    if sync_interval < Duration::from_millis(100) {
        return Err(ConfigError::invalid(
            "state.redis.sync_interval",
            "must be at least 100ms",
        ));
    }
    let tls = redis_tls(r, url.scheme() == "rediss", env)?;
    let sentinel = sentinel_of(r, &url, tls.is_some())?;
    redis::Client::open(url.as_str()).map_err(|e| {
        ConfigError::invalid("state.redis.url", format_args!("not a Redis URL: {e}"))
    })?;
    Ok(Some(RedisConfig {
        url: Secret::new(url.to_string()),
        display_url,
        timeout,
        key_prefix,
        sync_interval,
        tls,
        sentinel,
    }))
}

/// `state.redis.sentinels` with the master's name from `url`.
fn sentinel_of(
    r: &RawRedis,
    url: &url::Url,
    tls_files: bool,
) -> Result<Option<SentinelConfig>, ConfigError> {
    let Some(addresses) = &r.sentinels else {
        return Ok(None);
    };
    const KEY: &str = "state.redis.sentinels";
    if addresses.is_empty() {
        return Err(ConfigError::invalid(
            KEY,
            "name at least one sentinel, or leave it out",
        ));
    }
    if tls_files {
        return Err(ConfigError::invalid(
            KEY,
            "not with ca_file, cert_file or key_file",
        ));
    }
    if url.port().is_some() {
        return Err(ConfigError::invalid(
            "state.redis.url",
            "with sentinels, the host is the master's name: no port",
        ));
    }
    let mut sentinels = Vec::new();
    for (i, a) in addresses.iter().enumerate() {
        let parsed = url::Url::parse(&format!("redis://{a}")).ok().filter(|u| {
            u.host_str().is_some()
                && u.port().is_some()
                && u.path() == ""
                && u.username().is_empty()
        });
        let Some(parsed) = parsed else {
            return Err(ConfigError::invalid(
                format!("{KEY}[{i}]"),
                format_args!("`{a}` is not HOST:PORT"),
            ));
        };
        sentinels.push(parsed.to_string());
    }
    Ok(Some(SentinelConfig {
        sentinels,
        master: url.host_str().unwrap_or_default().to_string(),
    }))
}

/// The TLS files of `state.redis`, read now (each error names its key); only with
/// `rediss://`.
fn redis_tls(
    r: &RawRedis,
    rediss: bool,
    env: &Sources<'_>,
) -> Result<Option<RedisTls>, ConfigError> {
    let given = |key: &str, path: &Option<String>| -> Result<Option<String>, ConfigError> {
        match path {
            Some(_) if !rediss => Err(ConfigError::invalid(key, "only with a rediss:// url")),
            other => Ok(other.clone()),
        }
    };
    let ca_pem = given("state.redis.ca_file", &r.ca_file)?
        .map(|p| env.file("state.redis.ca_file", &p))
        .transpose()?;
    let cert = given("state.redis.cert_file", &r.cert_file)?
        .map(|p| env.file("state.redis.cert_file", &p))
        .transpose()?;
    // The private key is a secret: offline it is not read (an empty stand-in).
    let key = given("state.redis.key_file", &r.key_file)?
        .map(|p| env.secret_file("state.redis.key_file", &p))
        .transpose()?
        .map(Option::unwrap_or_default);
    let client =
        match (cert, key) {
            (Some(cert), Some(key)) => Some((
                cert,
                Secret::new(String::from_utf8(key).map_err(|_| {
                    ConfigError::invalid("state.redis.key_file", "is not a PEM file")
                })?),
            )),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    "state.redis.key_file",
                    "needed with cert_file",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "state.redis.cert_file",
                    "needed with key_file",
                ));
            }
        };
    Ok((ca_pem.is_some() || client.is_some()).then_some(RedisTls { ca_pem, client }))
}
