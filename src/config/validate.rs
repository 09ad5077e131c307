//! Turns [`RawConfig`] into the typed [`Config`], filling defaults and refusing what
//! would be unsafe or meaningless. Every error names its key. The `outbound` section is
//! validated in [`super::outbound`], the `policy` and `credentials` sections in their own
//! modules; the helpers they share (URLs, secrets, algorithms) are here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use url::Url;

use super::raw::{RawConfig, RawIssuer, RawPathMatch};
use super::types::{
    Config, IdentityHeaders, InboundConfig, IssuerConfig, JwksSource, ListenAddr, PathMatch,
    RouteAction,
};
use super::{ConfigError, Env};

const DEFAULT_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

/// The whole file, section by section (each section's own function), then the rules
/// that tie sections together (delegation and custody need `outbound`, credential routes
/// the `policy`, the deadlines).
pub(super) fn validate(raw: RawConfig, env: &dyn Env) -> Result<Config, ConfigError> {
    let listen = validate_listen(&raw)?;
    let mut issuers = validate_issuers(&raw)?;
    let tokens = validate_tokens(&raw)?;
    let credentials = super::credentials::validate_credentials(&raw.credentials, env)?;
    let outbound = raw
        .outbound
        .as_ref()
        .map(|o| super::outbound::validate_outbound(o, env, &credentials))
        .transpose()?;
    if raw.policy.is_none()
        && let Some(i) = outbound.iter().flat_map(|o| &o.routes).position(|r| {
            matches!(
                r.action,
                RouteAction::Credential { .. } | RouteAction::Vend { .. }
            )
        })
    {
        return Err(ConfigError::invalid(
            format!("outbound.routes[{i}].action"),
            "`credential` and `vend` need the `policy` section: its grant scopes the credential",
        ));
    }
    let inbound = validate_inbound(&raw, outbound.is_some())?;
    let admin_api = raw
        .admin_api
        .as_ref()
        .map(super::admin::validate_admin_api)
        .transpose()?;
    let spiffe = raw
        .spiffe
        .as_ref()
        .map(|s| super::spiffe::validate_spiffe(s, env))
        .transpose()?;
    let mut outbound = outbound;
    super::spiffe::bind_jwt_svid(&mut outbound, spiffe.as_ref())?;
    super::introspection::validate_introspection(&raw, &mut issuers, outbound.as_ref(), env)?;
    let config = Config {
        ext_proc_listen: listen.ext_proc,
        sds_listen: listen.sds,
        admin_listen: listen.admin,
        envoy_message_timeout: listen.envoy_message_timeout,
        issuers,
        max_token_bytes: tokens.max_bytes,
        verified_cache_entries: raw.tokens.verified_cache_entries.unwrap_or(10_000),
        max_actor_chain: tokens.max_actor_chain,
        replay_cache_entries: tokens.replay_cache_entries,
        inbound,
        outbound,
        policy: raw
            .policy
            .as_ref()
            .map(super::policy::validate_policy)
            .transpose()?,
        credentials,
        audit: raw
            .audit
            .as_ref()
            .map(super::audit::validate_audit)
            .transpose()?,
        spiffe,
        admin_api: admin_api.clone(),
        approvals: raw
            .approvals
            .as_ref()
            .map(|a| super::admin::validate_approvals(a, admin_api.as_ref()))
            .transpose()?,
        revocation: raw
            .revocation
            .as_ref()
            .map(super::admin::validate_revocation)
            .transpose()?,
        telemetry: super::telemetry::validate_telemetry(raw.telemetry.as_ref(), env)?,
    };
    super::deadlines::check(&config)?;
    Ok(config)
}

/// `listen`: the gRPC listeners, the admin listener and Envoy's message timeout.
struct Listen {
    ext_proc: ListenAddr,
    sds: Option<ListenAddr>,
    admin: Option<SocketAddr>,
    envoy_message_timeout: Duration,
}

fn validate_listen(raw: &RawConfig) -> Result<Listen, ConfigError> {
    let ext_proc = parse_listen("listen.ext_proc", &raw.listen.ext_proc)?;
    let sds = raw
        .listen
        .sds
        .as_deref()
        .map(|s| parse_listen("listen.sds", s))
        .transpose()?;
    if sds.as_ref() == Some(&ext_proc) {
        return Err(ConfigError::invalid(
            "listen.sds",
            "must differ from listen.ext_proc: the SVID's private key gets its own socket",
        ));
    }
    if sds.is_some() && raw.spiffe.is_none() {
        return Err(ConfigError::invalid(
            "listen.sds",
            "set without a `spiffe` section: there is no SVID to serve",
        ));
    }
    let admin = match &raw.listen.admin {
        None => None,
        Some(a) => Some(a.parse::<SocketAddr>().map_err(|e| {
            ConfigError::invalid("listen.admin", format_args!("`{a}` is not HOST:PORT ({e})"))
        })?),
    };
    let envoy_message_timeout = raw
        .listen
        .envoy_message_timeout
        .unwrap_or(std::time::Duration::from_secs(3));
    if envoy_message_timeout < super::deadlines::HEADROOM * 2 {
        return Err(ConfigError::invalid(
            "listen.envoy_message_timeout",
            "must be at least 1s",
        ));
    }
    Ok(Listen {
        ext_proc,
        sds,
        admin,
        envoy_message_timeout,
    })
}

/// `issuers`: at least one, none twice.
fn validate_issuers(raw: &RawConfig) -> Result<Vec<IssuerConfig>, ConfigError> {
    if raw.issuers.is_empty() {
        return Err(ConfigError::invalid(
            "issuers",
            "at least one trusted issuer is required",
        ));
    }
    let mut issuers = Vec::with_capacity(raw.issuers.len());
    for (i, ri) in raw.issuers.iter().enumerate() {
        let key = format!("issuers[{i}]");
        if issuers.iter().any(|x: &IssuerConfig| x.issuer == ri.issuer) {
            return Err(ConfigError::invalid(
                format!("{key}.issuer"),
                "listed twice",
            ));
        }
        issuers.push(validate_issuer(&key, ri)?);
    }
    Ok(issuers)
}

/// `tokens`: the bounds on what a token may be.
struct Tokens {
    max_bytes: usize,
    max_actor_chain: usize,
    replay_cache_entries: usize,
}

fn validate_tokens(raw: &RawConfig) -> Result<Tokens, ConfigError> {
    let max_token_bytes = raw.tokens.max_bytes.unwrap_or(8192);
    if !(256..=1 << 20).contains(&max_token_bytes) {
        return Err(ConfigError::invalid(
            "tokens.max_bytes",
            "must be between 256 and 1048576",
        ));
    }
    let max_actor_chain = raw.tokens.max_actor_chain.unwrap_or(10);
    if !(1..=64).contains(&max_actor_chain) {
        return Err(ConfigError::invalid(
            "tokens.max_actor_chain",
            "must be between 1 and 64",
        ));
    }
    let replay_cache_entries = raw.tokens.replay_cache_entries.unwrap_or(100_000);
    if replay_cache_entries == 0 {
        return Err(ConfigError::invalid(
            "tokens.replay_cache_entries",
            "must be at least 1",
        ));
    }
    Ok(Tokens {
        max_bytes: max_token_bytes,
        max_actor_chain,
        replay_cache_entries,
    })
}

/// `inbound`: the identity headers, the paths, delegation and custody (`has_outbound`:
/// both need the `outbound` section).
fn validate_inbound(raw: &RawConfig, has_outbound: bool) -> Result<InboundConfig, ConfigError> {
    let ih = &raw.inbound.identity_headers;
    let identity_headers = IdentityHeaders {
        subject: header_name(
            "inbound.identity_headers.subject",
            ih.subject.as_deref(),
            "x-actbridge-subject",
        )?,
        username: header_name(
            "inbound.identity_headers.username",
            ih.username.as_deref(),
            "x-actbridge-username",
        )?,
        actors: header_name(
            "inbound.identity_headers.actors",
            ih.actors.as_deref(),
            "x-actbridge-actors",
        )?,
        grant: header_name(
            "inbound.identity_headers.grant",
            ih.grant.as_deref(),
            "x-actbridge-grant",
        )?,
    };
    let bypass_paths = path_matches("inbound.bypass_paths", &raw.inbound.bypass_paths)?;
    let single_use_paths = path_matches("inbound.single_use_paths", &raw.inbound.single_use_paths)?;
    let introspect_paths = path_matches("inbound.introspect_paths", &raw.inbound.introspect_paths)?;
    let delegation = raw.inbound.delegation.unwrap_or(false);
    if delegation && !has_outbound {
        return Err(ConfigError::invalid(
            "inbound.delegation",
            "needs the `outbound` section (its token_endpoint and client perform the exchange)",
        ));
    }
    let custody_entries = match (raw.inbound.token_custody, raw.inbound.custody_entries) {
        (Some(true), _) if !has_outbound => {
            return Err(ConfigError::invalid(
                "inbound.token_custody",
                "needs the `outbound` section (placeholders are resolved on its exchange routes)",
            ));
        }
        (Some(true), Some(0)) => {
            return Err(ConfigError::invalid(
                "inbound.custody_entries",
                "must be at least 1",
            ));
        }
        (Some(true), n) => Some(n.unwrap_or(100_000)),
        (_, Some(_)) => {
            return Err(ConfigError::invalid(
                "inbound.custody_entries",
                "only with `token_custody: true`",
            ));
        }
        _ => None,
    };
    Ok(InboundConfig {
        identity_headers,
        bypass_paths,
        delegation,
        single_use_paths,
        introspect_paths,
        single_use_scopes: raw
            .inbound
            .single_use_scopes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                glob::Pattern::new(s).map_err(|e| {
                    ConfigError::invalid(
                        format!("inbound.single_use_scopes[{i}]"),
                        format_args!("`{s}` is not a valid glob ({e})"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        custody_entries,
        protected_resource: raw
            .inbound
            .protected_resource
            .as_ref()
            .map(super::agent_protocols::validate_protected_resource)
            .transpose()?,
        public_agent_card: raw.inbound.public_agent_card.unwrap_or(false),
    })
}

/// A gRPC listener only Envoy may reach: a Unix socket (the default of the shipped
/// manifests), or TCP on a loopback address — never an address the network reaches.
fn parse_listen(key: &str, s: &str) -> Result<ListenAddr, ConfigError> {
    if let Some(rest) = s.strip_prefix("tcp://") {
        let addr = rest.parse::<SocketAddr>().map_err(|e| {
            ConfigError::invalid(key, format_args!("`{s}`: expected tcp://HOST:PORT ({e})"))
        })?;
        if !addr.ip().is_loopback() {
            return Err(ConfigError::invalid(
                key,
                format_args!(
                    "`{s}`: a TCP listener must bind a loopback address (127.0.0.1, ::1): only Envoy may ask for a decision or a secret; prefer unix:///PATH in a directory only Envoy and actbridge share"
                ),
            ));
        }
        return Ok(ListenAddr::Tcp(addr));
    }
    if let Some(rest) = s.strip_prefix("unix://") {
        if !rest.starts_with('/') {
            return Err(ConfigError::invalid(
                key,
                format_args!("`{s}`: the socket path must be absolute"),
            ));
        }
        return Ok(ListenAddr::Unix(PathBuf::from(rest)));
    }
    Err(ConfigError::invalid(
        key,
        format_args!("`{s}`: expected tcp://HOST:PORT or unix:///PATH"),
    ))
}

fn validate_issuer(key: &str, ri: &RawIssuer) -> Result<IssuerConfig, ConfigError> {
    if ri.issuer.trim().is_empty() {
        return Err(ConfigError::invalid(
            format!("{key}.issuer"),
            "must not be empty",
        ));
    }
    let jwks = match &ri.jwks_uri {
        Some(u) => JwksSource::Uri(http_url(&format!("{key}.jwks_uri"), u)?),
        None => {
            let base = http_url(&format!("{key}.issuer"), &ri.issuer).map_err(|_| {
                ConfigError::invalid(
                    format!("{key}.jwks_uri"),
                    "not set, and the issuer is not an http(s) URL that OIDC discovery could use",
                )
            })?;
            let disc = format!(
                "{}/.well-known/openid-configuration",
                base.as_str().trim_end_matches('/')
            );
            JwksSource::Discovery(http_url(&format!("{key}.issuer"), &disc)?)
        }
    };
    let algorithms = match &ri.algorithms {
        None => DEFAULT_ALGORITHMS.to_vec(),
        Some(list) if list.is_empty() => {
            return Err(ConfigError::invalid(
                format!("{key}.algorithms"),
                "must not be empty",
            ));
        }
        Some(list) => list
            .iter()
            .map(|a| asymmetric_algorithm(&format!("{key}.algorithms"), a))
            .collect::<Result<Vec<_>, _>>()?,
    };
    for (i, a) in ri.audiences.iter().enumerate() {
        if a.is_empty() {
            return Err(ConfigError::invalid(
                format!("{key}.audiences[{i}]"),
                "must not be empty",
            ));
        }
    }
    let positive =
        |k: &str, d: Option<Duration>, default: Duration| -> Result<Duration, ConfigError> {
            let v = d.unwrap_or(default);
            if v.is_zero() {
                return Err(ConfigError::invalid(
                    format!("{key}.{k}"),
                    "must be greater than zero",
                ));
            }
            Ok(v)
        };
    let leeway = ri.leeway.unwrap_or(Duration::from_secs(30));
    if leeway > Duration::from_secs(300) {
        return Err(ConfigError::invalid(
            format!("{key}.leeway"),
            "must be at most 5m",
        ));
    }
    let jwks_refresh_interval = positive(
        "jwks_refresh_interval",
        ri.jwks_refresh_interval,
        Duration::from_secs(300),
    )?;
    let jwks_max_age = positive(
        "jwks_max_age",
        ri.jwks_max_age,
        Duration::from_secs(24 * 3600),
    )?;
    if jwks_max_age <= jwks_refresh_interval {
        return Err(ConfigError::invalid(
            format!("{key}.jwks_max_age"),
            "must be longer than jwks_refresh_interval (or keys would lapse between refreshes)",
        ));
    }
    Ok(IssuerConfig {
        issuer: ri.issuer.clone(),
        jwks,
        audiences: ri.audiences.clone(),
        algorithms,
        leeway,
        jwks_refresh_interval,
        jwks_min_refetch_interval: positive(
            "jwks_min_refetch_interval",
            ri.jwks_min_refetch_interval,
            Duration::from_secs(30),
        )?,
        jwks_timeout: positive("jwks_timeout", ri.jwks_timeout, Duration::from_secs(2))?,
        jwks_max_age,
        // Filled in once `outbound` is known (super::introspection).
        introspection: None,
        token_types: super::token_types::validate_token_types(
            &format!("{key}.token_types"),
            ri.token_types.as_ref(),
        )?,
    })
}

/// Parses an asymmetric JWS algorithm name. HMAC and `none` are refused: a verifier that
/// accepts HS256 with an RSA public key as the secret is the classic key-confusion hole.
pub(crate) fn asymmetric_algorithm(key: &str, name: &str) -> Result<Algorithm, ConfigError> {
    let alg: Algorithm = name
        .parse()
        .map_err(|_| ConfigError::invalid(key, format_args!("unknown algorithm `{name}`")))?;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(ConfigError::invalid(
            key,
            format_args!(
                "`{name}` is a shared-secret algorithm; only asymmetric algorithms are accepted"
            ),
        ));
    }
    Ok(alg)
}

pub(super) fn http_url(key: &str, s: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(s)
        .map_err(|e| ConfigError::invalid(key, format_args!("`{s}` is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::invalid(
            key,
            format_args!("`{s}` must be an http or https URL"),
        ));
    }
    Ok(url)
}

fn header_name(key: &str, v: Option<&str>, default: &str) -> Result<http::HeaderName, ConfigError> {
    let name = v.unwrap_or(default);
    if name.starts_with(':')
        || name.eq_ignore_ascii_case("host")
        || name.eq_ignore_ascii_case("authorization")
    {
        return Err(ConfigError::invalid(
            key,
            format_args!("`{name}` cannot carry identity"),
        ));
    }
    http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
        .map_err(|_| ConfigError::invalid(key, format_args!("`{name}` is not a valid header name")))
}

/// A list of path matchers; an error names the entry (`key[i]`).
fn path_matches(key: &str, list: &[RawPathMatch]) -> Result<Vec<PathMatch>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, p)| path_match(&format!("{key}[{i}]"), p))
        .collect()
}

fn path_match(key: &str, p: &RawPathMatch) -> Result<PathMatch, ConfigError> {
    let canonical = |k: &str, path: &str| {
        if path.contains('?') {
            return Err(ConfigError::invalid(
                format!("{key}.{k}"),
                "a path matcher has no query string",
            ));
        }
        crate::http_path::CanonicalPath::parse(path).map_err(|e| {
            ConfigError::invalid(
                format!("{key}.{k}"),
                format_args!("`{path}`: {e}; write the path as requests spell it, from `/`"),
            )
        })
    };
    match (&p.exact, &p.prefix) {
        (Some(e), None) => Ok(PathMatch::Exact(canonical("exact", e)?)),
        (None, Some(pre)) => Ok(PathMatch::Prefix(canonical("prefix", pre)?)),
        (Some(_), Some(_)) | (None, None) => Err(ConfigError::invalid(
            key,
            "set exactly one of `exact` or `prefix`",
        )),
    }
}

/// A secret read from a file (trailing newline dropped) when `file` is set, else from
/// the environment variable `var`; each pair is (its config key, its value).
pub(super) fn external_secret(
    (file_key, file): (&str, Option<&str>),
    (var_key, var): (&str, Option<&str>),
    env: &dyn Env,
) -> Result<String, ConfigError> {
    if let Some(f) = file {
        return Ok(std::fs::read_to_string(f)
            .map_err(|e| ConfigError::invalid(file_key, format_args!("cannot read `{f}`: {e}")))?
            .trim_end_matches(['\n', '\r'])
            .to_string());
    }
    let var = var.unwrap_or_default();
    env.get(var).ok_or_else(|| {
        ConfigError::invalid(
            var_key,
            format_args!("environment variable `{var}` is not set"),
        )
    })
}
