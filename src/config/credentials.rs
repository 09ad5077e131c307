//! The `credentials` section: named credential backends that outbound routes use for
//! destinations that do not accept actbridge's JWTs, as written ([`RawCredential`]) and
//! validated ([`CredentialConfig`]).
//!
//! ```text
//! credentials:
//!   - name: documents-s3
//!     aws_sts:
//!       role_arn: arn:aws:iam::123456789012:role/actbridge-documents
//!       region: us-east-1
//!       bucket: zt-demo-documents
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::ConfigError;

/// `credentials[]`: one named backend. Exactly one backend key is set.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCredential {
    /// The name routes refer to (`credential: NAME`, `services: {s3: NAME}`).
    pub name: String,
    /// AWS: session credentials from STS `AssumeRole`, scoped by an inline session policy
    /// built from the grant.
    #[serde(default)]
    pub aws_sts: Option<RawAwsSts>,
    /// GitHub: installation tokens of a GitHub App, restricted to the repositories the
    /// grant maps to.
    #[serde(default)]
    pub github_app: Option<RawGithubApp>,
    /// SSH: user certificates signed by a CA key actbridge holds, for the public key the
    /// agent sends, with principals derived from the grant.
    #[serde(default)]
    pub ssh_cert: Option<RawSshCert>,
    /// PostgreSQL: a dynamic login role per (user, agent chain, grant), member of the
    /// roles the grant maps to, expiring on its own.
    #[serde(default)]
    pub postgres: Option<RawPostgres>,
    /// An API with no scoped credentials (a chat API, say): actbridge injects the one
    /// service token it holds and lets through only requests that a rule allows for the
    /// grant.
    #[serde(default)]
    pub filter: Option<RawFilter>,
}

/// `credentials[].filter`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    /// A file holding the service token. Exactly one of this and `token_env`.
    #[serde(default)]
    pub token_file: Option<String>,
    /// An environment variable holding the service token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// The rules; a request no rule allows is refused (403, naming the rule or its
    /// absence). Required, non-empty.
    pub rules: Vec<RawFilterRule>,
    /// Largest request body read (JSON or form). Default `65536`.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
}

/// `credentials[].filter.rules[]`: one allowed request shape.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFilterRule {
    /// The HTTP method, e.g. `POST`. Required.
    pub method: String,
    /// The exact path (query string excluded), e.g. `/api/chat.postMessage`. Required.
    pub path: String,
    /// The top-level body field whose value must be allowed (e.g. `channel`), read from
    /// a JSON or form body as its `Content-Type` declares; the same name in the query is
    /// refused. Exactly one of this and `query`.
    #[serde(default)]
    pub body_field: Option<String>,
    /// The query parameter whose value must be allowed (spelled once, exactly; a request
    /// with a body is refused). Exactly one of this and `body_field`.
    #[serde(default)]
    pub query: Option<String>,
    /// The values each grant entry allows, e.g. `{finance: [finance-general]}`. Required.
    pub allow: BTreeMap<String, Vec<String>>,
}

/// `credentials[].postgres`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPostgres {
    /// The server's host, as vended to agents and used by actbridge. Required.
    pub host: String,
    /// Its port. Default `5432`.
    #[serde(default)]
    pub port: Option<u16>,
    /// The database vended (and connected to). Required.
    pub database: String,
    /// The administrative role actbridge creates and drops roles with. Required. It needs
    /// `CREATEROLE`, `INHERIT` (the default) and ADMIN OPTION on every mapped role
    /// (`GRANT finance_reader TO admin WITH ADMIN OPTION`); not a superuser, and not
    /// `pg_signal_backend` (docs/credentials.md, "What the database must trust").
    /// Checked at start and at every reaper pass: while one is missing, the vends that
    /// need it are refused (503) and an error names what is missing.
    pub admin_user: String,
    /// A file holding the administrative role's password. Exactly one of this and
    /// `admin_password_env`.
    #[serde(default)]
    pub admin_password_file: Option<String>,
    /// An environment variable holding that password.
    #[serde(default)]
    pub admin_password_env: Option<String>,
    /// The existing roles each grant entry maps to; a dynamic role is made a member
    /// (`IN ROLE`) of them, so it gets exactly their privileges (e.g. `finance:
    /// [finance_reader]`, a role with SELECT on the finance views). Required.
    pub roles: BTreeMap<String, Vec<String>>,
    /// How long a dynamic role may log in (`VALID UNTIL`). Default `15m`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
    /// `CONNECTION LIMIT` of a dynamic role. Default `2`.
    #[serde(default)]
    pub connection_limit: Option<u32>,
    /// Name prefix of the dynamic roles; the reaper drops expired roles with it.
    /// Default `actbridge_`.
    #[serde(default)]
    pub role_prefix: Option<String>,
    /// How often expired roles are revoked, their sessions terminated and dropped (also
    /// at start, so roles left by a previous run go too). Default `60s`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub reaper_interval: Option<Duration>,
    /// Timeout of a whole vend (connecting and its statements), and of each reaper
    /// statement (also set as the server's `statement_timeout` and `lock_timeout` on
    /// actbridge's connections). It must end 500 ms before
    /// `listen.envoy_message_timeout` (checked at start), so a hung server gives
    /// actbridge's 503 with `Retry-After`, not Envoy's 504. Default `2s`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

/// `credentials[].ssh_cert`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSshCert {
    /// The SSH user CA's private key, OpenSSH format, unencrypted, Ed25519. Required.
    /// Servers trust its public half (`TrustedUserCAKeys`).
    pub ca_key_file: String,
    /// The principals each grant entry maps to, e.g. `{finance: [finance]}`. Required;
    /// unlisted entries map to nothing.
    pub principals: BTreeMap<String, Vec<String>>,
    /// How long a certificate is valid. Default `5m`; at most `24h`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub validity: Option<Duration>,
    /// Certificate extensions. Default `[permit-pty]`: no agent, port or X11 forwarding
    /// unless listed (`permit-agent-forwarding`, `permit-port-forwarding`,
    /// `permit-X11-forwarding`, `permit-user-rc`).
    #[serde(default)]
    pub extensions: Option<Vec<String>>,
    /// Where a certificate may be used from: IP addresses or CIDR blocks (e.g.
    /// `[10.20.0.0/16, 192.0.2.7]`), written into the `source-address` critical option,
    /// so sshd refuses a login with it from any other address even if the certificate
    /// leaks. Default none (no restriction).
    #[serde(default)]
    pub source_addresses: Vec<String>,
    /// How many certificates are cached, keyed by (public key, user, chain, principals);
    /// each for 80 % of its validity. Default `10000`.
    #[serde(default)]
    pub cache_entries: Option<u64>,
}

/// `credentials[].github_app`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGithubApp {
    /// The App's id (the `iss` of the App JWT). Required.
    pub app_id: u64,
    /// PEM file of the App's private key (RSA), which signs the App JWT. Required.
    pub private_key_file: String,
    /// The installation whose tokens are requested. Required.
    pub installation_id: u64,
    /// The GitHub API base URL. Default `https://api.github.com`.
    #[serde(default)]
    pub api_url: Option<String>,
    /// The account (organisation or user) owning the repositories. Required: requests
    /// for another owner's repositories are refused.
    pub owner: String,
    /// The repositories each grant entry maps to (names within `owner`), e.g.
    /// `{finance: [finance-reports]}`. Required; unlisted entries map to nothing.
    pub repositories: BTreeMap<String, Vec<String>>,
    /// The permissions every token asks for, e.g. `{contents: read}`. Default
    /// `{contents: read, metadata: read}`.
    #[serde(default)]
    pub permissions: Option<BTreeMap<String, String>>,
    /// Timeout of one token request. Default `2s`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// How many tokens are cached, keyed by (repositories, permissions); each until 5
    /// minutes before its `expires_at`. Default `1000`.
    #[serde(default)]
    pub cache_entries: Option<u64>,
}

/// `credentials[].aws_sts`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAwsSts {
    /// The role assumed for every session (required), e.g.
    /// `arn:aws:iam::123456789012:role/actbridge-documents`. Its trust policy must let
    /// actbridge's base identity call `sts:AssumeRole`, `sts:TagSession` and
    /// `sts:SetSourceIdentity`; its permissions bound every session.
    pub role_arn: String,
    /// The AWS region (required): STS is called there and S3 requests are signed for it.
    pub region: String,
    /// STS endpoint URL. Default: the SDK's regional endpoint for `region`.
    #[serde(default)]
    pub sts_endpoint: Option<String>,
    /// Session life (`DurationSeconds`), 15m to 12h (and at most the role's maximum
    /// session duration). Default `15m`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub duration: Option<Duration>,
    /// Timeout of one STS call, retries included. Keep it below Envoy's ext_proc
    /// `message_timeout`. Default `2s`.
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// The S3 bucket the sessions are for (required). Requests for another bucket are
    /// refused.
    pub bucket: String,
    /// The S3 endpoint host names (no port) requests may address: path-style
    /// (`ENDPOINT/BUCKET/KEY`) or virtual-hosted (`BUCKET.ENDPOINT/KEY`). A request to
    /// any other host — another bucket's virtual host above all — is never signed.
    /// Default `[s3.REGION.amazonaws.com, s3.amazonaws.com]`.
    #[serde(default)]
    pub s3_endpoints: Option<Vec<String>>,
    /// The key prefix one grant entry maps to; `{grant}` stands for the entry. Default
    /// `{grant}/` (the department is the first path segment). Ignored for entries listed
    /// in `prefixes`.
    #[serde(default)]
    pub prefix_template: Option<String>,
    /// Explicit key prefixes per grant entry (`{finance: [finance/, reports/finance/]}`).
    /// When set, only the entries listed here map to anything.
    #[serde(default)]
    pub prefixes: Option<BTreeMap<String, Vec<String>>>,
    /// Key prefixes every session may read, whatever its grant (documents of no
    /// department, e.g. `[public/]`). Default none.
    #[serde(default)]
    pub public_prefixes: Vec<String>,
    /// Send session tags (`actbridge-user`, `actbridge-agent-1`…, newest agent first) and
    /// `SourceIdentity` = the user. Needs `sts:TagSession` and `sts:SetSourceIdentity` in
    /// the role's trust policy. Default `true`.
    #[serde(default)]
    pub session_tags: Option<bool>,
    /// How many sessions are cached, keyed by (user, agent chain, grant). Each is kept
    /// until 80 % of its life. Default `10000`.
    #[serde(default)]
    pub cache_entries: Option<u64>,
}

/// A validated credential backend.
#[derive(Debug, Clone)]
pub struct CredentialConfig {
    /// Its name.
    pub name: String,
    /// The backend and its settings.
    pub backend: BackendConfig,
}

/// Which backend, with its settings.
#[derive(Debug, Clone)]
pub enum BackendConfig {
    /// AWS STS session credentials.
    AwsSts(AwsStsConfig),
    /// GitHub App installation tokens.
    GithubApp(GithubAppConfig),
    /// SSH user certificates (boxed: the CA key is large).
    SshCert(Box<SshCertConfig>),
    /// Dynamic PostgreSQL roles.
    Postgres(PostgresConfig),
    /// A filtering proxy with a service token.
    Filter(FilterConfig),
}

impl BackendConfig {
    /// The backend's kind, as in the config (`aws_sts`, `github_app`, `ssh_cert`,
    /// `postgres`, `filter`).
    pub fn kind(&self) -> &'static str {
        match self {
            BackendConfig::AwsSts(_) => "aws_sts",
            BackendConfig::GithubApp(_) => "github_app",
            BackendConfig::SshCert(_) => "ssh_cert",
            BackendConfig::Postgres(_) => "postgres",
            BackendConfig::Filter(_) => "filter",
        }
    }
}

/// The validated `filter` settings.
#[derive(Debug, Clone)]
pub struct FilterConfig {
    /// The service token injected.
    pub token: super::Secret,
    /// The rules.
    pub rules: Vec<FilterRule>,
    /// Largest body read.
    pub max_body_bytes: usize,
}

/// One filter rule.
#[derive(Debug, Clone)]
pub struct FilterRule {
    /// Method.
    pub method: String,
    /// Exact path.
    pub path: String,
    /// Where the checked value is.
    pub value_at: ValueAt,
    /// Grant entry → allowed values.
    pub allow: BTreeMap<String, Vec<String>>,
}

/// Where a filter rule finds the value it checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueAt {
    /// A top-level JSON body field.
    BodyField(String),
    /// A query parameter.
    Query(String),
}

/// The validated `postgres` settings.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// The credential's name (`credentials[].name`), for the operator's messages.
    pub name: String,
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Database.
    pub database: String,
    /// Administrative role.
    pub admin_user: String,
    /// Its password.
    pub admin_password: super::Secret,
    /// Grant entry → roles.
    pub roles: BTreeMap<String, Vec<String>>,
    /// Role life.
    pub ttl: Duration,
    /// Connection limit per role.
    pub connection_limit: u32,
    /// Role name prefix.
    pub role_prefix: String,
    /// Reaper period.
    pub reaper_interval: Duration,
    /// Connect and statement timeout.
    pub timeout: Duration,
}

/// The validated `ssh_cert` settings.
#[derive(Debug, Clone)]
pub struct SshCertConfig {
    /// The CA key (its `Debug` is redacted by ssh-key).
    pub ca_key: ssh_key::PrivateKey,
    /// Grant entry → principals.
    pub principals: BTreeMap<String, Vec<String>>,
    /// Certificate validity.
    pub validity: Duration,
    /// Extensions granted.
    pub extensions: Vec<String>,
    /// The `source-address` critical option (empty: none).
    pub source_addresses: Vec<ipnet::IpNet>,
    /// Certificate cache capacity.
    pub cache_entries: u64,
}

/// The validated `github_app` settings.
#[derive(Debug, Clone)]
pub struct GithubAppConfig {
    /// App id.
    pub app_id: u64,
    /// The App's private key.
    pub private_key: super::SigningKey,
    /// Installation id.
    pub installation_id: u64,
    /// API base URL (no trailing `/`).
    pub api_url: Url,
    /// Repository owner.
    pub owner: String,
    /// Grant entry → repository names.
    pub repositories: BTreeMap<String, Vec<String>>,
    /// Permissions requested.
    pub permissions: BTreeMap<String, String>,
    /// Timeout of one token request.
    pub timeout: Duration,
    /// Token cache capacity.
    pub cache_entries: u64,
}

/// The validated `aws_sts` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsStsConfig {
    /// Role assumed.
    pub role_arn: String,
    /// Region.
    pub region: String,
    /// STS endpoint override.
    pub sts_endpoint: Option<Url>,
    /// Session life.
    pub duration: Duration,
    /// Timeout of one STS call.
    pub timeout: Duration,
    /// Bucket.
    pub bucket: String,
    /// S3 endpoint hosts (lower case).
    pub s3_endpoints: Vec<String>,
    /// How a grant entry becomes key prefixes.
    pub prefixes: PrefixMapping,
    /// Prefixes every session may read.
    pub public_prefixes: Vec<String>,
    /// Send session tags and `SourceIdentity`.
    pub session_tags: bool,
    /// Session cache capacity.
    pub cache_entries: u64,
}

/// How grant entries map to S3 key prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixMapping {
    /// `{grant}` in the template is replaced by the entry.
    Template(String),
    /// Listed entries only.
    Explicit(BTreeMap<String, Vec<String>>),
}

const MIN_SESSION: Duration = Duration::from_secs(900);
const MAX_SESSION: Duration = Duration::from_secs(12 * 3600);

pub(super) fn validate_credentials(
    raw: &[RawCredential],
    env: &super::sources::Sources<'_>,
) -> Result<Vec<CredentialConfig>, ConfigError> {
    // Every credential checked, every problem reported.
    super::Problems::each(raw.iter().enumerate(), |(i, c)| {
        let key = format!("credentials[{i}]");
        if c.name.is_empty() || raw[..i].iter().any(|x| x.name == c.name) {
            return Err(ConfigError::invalid(
                format!("{key}.name"),
                "must be non-empty and unique",
            ));
        }
        let set = [
            c.aws_sts.is_some(),
            c.github_app.is_some(),
            c.ssh_cert.is_some(),
            c.postgres.is_some(),
            c.filter.is_some(),
        ];
        let backend = match (&c.aws_sts, &c.github_app, &c.ssh_cert, &c.postgres) {
            _ if set.iter().filter(|b| **b).count() != 1 => {
                return Err(ConfigError::invalid(
                    key,
                    "exactly one backend is required: `aws_sts`, `github_app`, `ssh_cert`, `postgres` or `filter`",
                ));
            }
            (Some(a), ..) => BackendConfig::AwsSts(validate_aws_sts(&format!("{key}.aws_sts"), a)?),
            (_, Some(g), ..) => BackendConfig::GithubApp(super::github_app::validate(
                &format!("{key}.github_app"),
                g,
                env,
            )?),
            (_, _, Some(s), _) => BackendConfig::SshCert(Box::new(super::ssh_cert::validate(
                &format!("{key}.ssh_cert"),
                s,
                env,
            )?)),
            (_, _, _, Some(p)) => BackendConfig::Postgres(super::postgres::validate(
                &format!("{key}.postgres"),
                &c.name,
                p,
                env,
            )?),
            (None, None, None, None) => match &c.filter {
                Some(f) => BackendConfig::Filter(super::filter::validate(
                    &format!("{key}.filter"),
                    f,
                    env,
                )?),
                None => return Err(ConfigError::invalid(key, "no backend is set")),
            },
        };
        Ok(CredentialConfig {
            name: c.name.clone(),
            backend,
        })
    })
}

/// An `aws_sts` credential. Long by design: its keys in the order
/// docs/credentials.md lists them, each error naming the key.
fn validate_aws_sts(key: &str, a: &RawAwsSts) -> Result<AwsStsConfig, ConfigError> {
    if !is_role_arn(&a.role_arn) {
        return Err(ConfigError::invalid(
            format!("{key}.role_arn"),
            format_args!(
                "`{}` is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)",
                a.role_arn
            ),
        ));
    }
    let region_ok = !a.region.is_empty()
        && a.region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !region_ok {
        return Err(ConfigError::invalid(
            format!("{key}.region"),
            "must be an AWS region name such as `us-east-1`",
        ));
    }
    let duration = a.duration.unwrap_or(MIN_SESSION);
    if !(MIN_SESSION..=MAX_SESSION).contains(&duration) || duration.subsec_nanos() != 0 {
        return Err(ConfigError::invalid(
            format!("{key}.duration"),
            "must be whole seconds between 15m and 12h (STS limits)",
        ));
    }
    let timeout = a.timeout.unwrap_or(Duration::from_secs(2));
    if timeout.is_zero() {
        return Err(ConfigError::invalid(
            format!("{key}.timeout"),
            "must be greater than zero",
        ));
    }
    if !is_bucket_name(&a.bucket) {
        return Err(ConfigError::invalid(
            format!("{key}.bucket"),
            format_args!("`{}` is not an S3 bucket name", a.bucket),
        ));
    }
    let prefixes = match (&a.prefix_template, &a.prefixes) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                key,
                "set at most one of `prefix_template` and `prefixes`",
            ));
        }
        (_, Some(map)) => {
            for (entry, list) in map {
                for (i, p) in list.iter().enumerate() {
                    check_prefix(&format!("{key}.prefixes.{entry}[{i}]"), p)?;
                }
            }
            PrefixMapping::Explicit(map.clone())
        }
        (template, None) => {
            let t = template.clone().unwrap_or_else(|| "{grant}/".into());
            if t.matches("{grant}").count() != 1 {
                return Err(ConfigError::invalid(
                    format!("{key}.prefix_template"),
                    "must contain `{grant}` exactly once",
                ));
            }
            check_prefix(
                &format!("{key}.prefix_template"),
                &t.replace("{grant}", "x"),
            )?;
            PrefixMapping::Template(t)
        }
    };
    for (i, p) in a.public_prefixes.iter().enumerate() {
        check_prefix(&format!("{key}.public_prefixes[{i}]"), p)?;
    }
    let s3_endpoints = match &a.s3_endpoints {
        None => vec![
            format!("s3.{}.amazonaws.com", a.region),
            "s3.amazonaws.com".to_string(),
        ],
        Some(list) if list.is_empty() => {
            return Err(ConfigError::invalid(
                format!("{key}.s3_endpoints"),
                "list at least one S3 endpoint host",
            ));
        }
        Some(list) => list.clone(),
    };
    for (i, host) in s3_endpoints.iter().enumerate() {
        let ok = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        if !ok {
            return Err(ConfigError::invalid(
                format!("{key}.s3_endpoints[{i}]"),
                format_args!("`{host}` is not a lower-case host name (no port, no wildcard)"),
            ));
        }
    }
    let cache_entries = a.cache_entries.unwrap_or(10_000);
    if cache_entries == 0 {
        return Err(ConfigError::invalid(
            format!("{key}.cache_entries"),
            "must be at least 1",
        ));
    }
    Ok(AwsStsConfig {
        role_arn: a.role_arn.clone(),
        region: a.region.clone(),
        sts_endpoint: a
            .sts_endpoint
            .as_deref()
            .map(|u| super::validate::http_url(&format!("{key}.sts_endpoint"), u))
            .transpose()?,
        duration,
        timeout,
        bucket: a.bucket.clone(),
        s3_endpoints,
        prefixes,
        public_prefixes: a.public_prefixes.clone(),
        session_tags: a.session_tags.unwrap_or(true),
        cache_entries,
    })
}

/// A key prefix is non-empty, ends with `/`, and holds no wildcard, `..` segment or
/// leading `/`: in a session policy `*` and `?` would widen it.
fn check_prefix(key: &str, p: &str) -> Result<(), ConfigError> {
    let ok = !p.is_empty()
        && p.ends_with('/')
        && !p.starts_with('/')
        && !p.contains(['*', '?', '$'])
        && !p.chars().any(char::is_control)
        && p.split('/').all(|s| s != ".." && s != ".");
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            "a key prefix must end with `/`, not start with `/`, and hold no `*`, `?`, `$`, `.` or `..` segment",
        ))
    }
}

fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|n| !n.is_empty()))
}

/// S3's bucket naming rules (3–63 characters, lower case, digits, `.` and `-`, starting
/// and ending with a letter or digit).
fn is_bucket_name(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !s.contains("..")
}
