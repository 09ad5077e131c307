//! Turns [`RawConfig`] into the typed [`Config`], filling defaults and refusing what
//! would be unsafe or meaningless. Every error names its key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use url::Url;

use super::credentials::{BackendConfig, CredentialConfig};
use super::raw::{
    RawClient, RawClientAuth, RawConfig, RawIssuer, RawOutbound, RawPathMatch, RawRoute,
};
use super::types::{
    ACCESS_TOKEN_TYPE, ClientAuthConfig, ClientConfig, Config, CredentialMode, ExchangeTarget,
    IdentityHeaders, InboundConfig, IssuerConfig, JwksSource, ListenAddr, OutboundConfig,
    PathMatch, RouteAction, RouteConfig, Secret, SigningKey, TokenRules, signing_key_from_pem,
};
use super::{ConfigError, Env};

const DEFAULT_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

pub(super) fn validate(raw: RawConfig, env: &dyn Env) -> Result<Config, ConfigError> {
    let ext_proc_listen = parse_listen(&raw.listen.ext_proc)?;
    let admin_listen = match &raw.listen.admin {
        None => None,
        Some(a) => Some(a.parse::<SocketAddr>().map_err(|e| {
            ConfigError::invalid("listen.admin", format_args!("`{a}` is not HOST:PORT ({e})"))
        })?),
    };
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
    let replay_cache_entries = raw.tokens.replay_cache_entries.unwrap_or(100_000);
    if replay_cache_entries == 0 {
        return Err(ConfigError::invalid(
            "tokens.replay_cache_entries",
            "must be at least 1",
        ));
    }
    let credentials = super::credentials::validate_credentials(&raw.credentials, env)?;
    let outbound = raw
        .outbound
        .as_ref()
        .map(|o| validate_outbound(o, env, &credentials))
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
    let delegation = raw.inbound.delegation.unwrap_or(false);
    if delegation && outbound.is_none() {
        return Err(ConfigError::invalid(
            "inbound.delegation",
            "needs the `outbound` section (its token_endpoint and client perform the exchange)",
        ));
    }
    let custody_entries = match (raw.inbound.token_custody, raw.inbound.custody_entries) {
        (Some(true), _) if outbound.is_none() => {
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
    Ok(Config {
        ext_proc_listen,
        admin_listen,
        issuers,
        max_token_bytes,
        verified_cache_entries: raw.tokens.verified_cache_entries.unwrap_or(10_000),
        max_actor_chain,
        replay_cache_entries,
        inbound: InboundConfig {
            identity_headers,
            bypass_paths,
            delegation,
            single_use_paths,
            custody_entries,
        },
        outbound,
        policy: raw
            .policy
            .as_ref()
            .map(super::policy::validate_policy)
            .transpose()?,
        credentials,
    })
}

fn parse_listen(s: &str) -> Result<ListenAddr, ConfigError> {
    const KEY: &str = "listen.ext_proc";
    if let Some(rest) = s.strip_prefix("tcp://") {
        let addr = rest.parse::<SocketAddr>().map_err(|e| {
            ConfigError::invalid(KEY, format_args!("`{s}`: expected tcp://HOST:PORT ({e})"))
        })?;
        return Ok(ListenAddr::Tcp(addr));
    }
    if let Some(rest) = s.strip_prefix("unix://") {
        if !rest.starts_with('/') {
            return Err(ConfigError::invalid(
                KEY,
                format_args!("`{s}`: the socket path must be absolute"),
            ));
        }
        return Ok(ListenAddr::Unix(PathBuf::from(rest)));
    }
    Err(ConfigError::invalid(
        KEY,
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
    Ok(IssuerConfig {
        issuer: ri.issuer.clone(),
        jwks,
        audiences: ri.audiences.clone(),
        algorithms,
        leeway,
        jwks_refresh_interval: positive(
            "jwks_refresh_interval",
            ri.jwks_refresh_interval,
            Duration::from_secs(300),
        )?,
        jwks_min_refetch_interval: positive(
            "jwks_min_refetch_interval",
            ri.jwks_min_refetch_interval,
            Duration::from_secs(30),
        )?,
        jwks_timeout: positive("jwks_timeout", ri.jwks_timeout, Duration::from_secs(5))?,
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
    match (&p.exact, &p.prefix) {
        (Some(e), None) if e.starts_with('/') => Ok(PathMatch::Exact(e.clone())),
        (None, Some(pre)) if pre.starts_with('/') => Ok(PathMatch::Prefix(pre.clone())),
        (Some(_), Some(_)) | (None, None) => Err(ConfigError::invalid(
            key,
            "set exactly one of `exact` or `prefix`",
        )),
        _ => Err(ConfigError::invalid(key, "a path must start with `/`")),
    }
}

fn validate_outbound(
    o: &RawOutbound,
    env: &dyn Env,
    credentials: &[CredentialConfig],
) -> Result<OutboundConfig, ConfigError> {
    let token_endpoint = http_url("outbound.token_endpoint", &o.token_endpoint)?;
    let client = validate_client(&o.client, &token_endpoint, env)?;
    let subject_audiences = o
        .subject_audiences
        .clone()
        .unwrap_or_else(|| vec![client.client_id.clone()]);
    if subject_audiences.is_empty() {
        return Err(ConfigError::invalid(
            "outbound.subject_audiences",
            "must not be empty",
        ));
    }
    let default_action = match o.default_action.as_deref() {
        None | Some("deny") => RouteAction::Deny,
        Some("passthrough") => RouteAction::Passthrough {
            forward_authorization: false,
        },
        Some(other) => {
            return Err(ConfigError::invalid(
                "outbound.default_action",
                format_args!("`{other}`: expected `deny` or `passthrough`"),
            ));
        }
    };
    let routes = o
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| validate_route(&format!("outbound.routes[{i}]"), r, credentials))
        .collect::<Result<Vec<_>, _>>()?;
    let token_timeout = o.token_timeout.unwrap_or(Duration::from_secs(2));
    if token_timeout.is_zero() {
        return Err(ConfigError::invalid(
            "outbound.token_timeout",
            "must be greater than zero",
        ));
    }
    let max_entries = o.cache.max_entries.unwrap_or(10_000);
    if max_entries == 0 {
        return Err(ConfigError::invalid(
            "outbound.cache.max_entries",
            "must be at least 1",
        ));
    }
    Ok(OutboundConfig {
        token_endpoint,
        client,
        send_actor_token: o.send_actor_token.unwrap_or(true),
        subject_audiences,
        token_timeout,
        retry_after: o.retry_after.unwrap_or(Duration::from_secs(5)),
        cache_max_entries: max_entries,
        cache_expiry_skew: o.cache.expiry_skew.unwrap_or(Duration::from_secs(30)),
        default_action,
        routes,
    })
}

fn validate_client(
    c: &RawClient,
    token_endpoint: &Url,
    env: &dyn Env,
) -> Result<ClientConfig, ConfigError> {
    if c.client_id.is_empty() {
        return Err(ConfigError::invalid(
            "outbound.client.client_id",
            "must not be empty",
        ));
    }
    let auth = client_auth(&c.auth, token_endpoint, env)?;
    Ok(ClientConfig {
        client_id: c.client_id.clone(),
        auth,
    })
}

fn client_auth(
    a: &RawClientAuth,
    token_endpoint: &Url,
    env: &dyn Env,
) -> Result<ClientAuthConfig, ConfigError> {
    const KEY: &str = "outbound.client.auth";
    let secret_fields = [
        a.secret.is_some(),
        a.secret_file.is_some(),
        a.secret_env.is_some(),
    ];
    let secret_count = secret_fields.iter().filter(|b| **b).count();
    let key_fields = a.private_key_file.is_some()
        || a.algorithm.is_some()
        || a.key_id.is_some()
        || a.assertion_audience.is_some();
    let secret = || -> Result<Secret, ConfigError> {
        if secret_count != 1 {
            return Err(ConfigError::invalid(
                KEY,
                "set exactly one of `secret`, `secret_file`, `secret_env`",
            ));
        }
        if key_fields {
            return Err(ConfigError::invalid(
                KEY,
                "private_key_jwt keys are set, but the method uses a secret",
            ));
        }
        let s = match &a.secret {
            Some(s) => s.clone(),
            None => external_secret(
                (&format!("{KEY}.secret_file"), a.secret_file.as_deref()),
                (&format!("{KEY}.secret_env"), a.secret_env.as_deref()),
                env,
            )?,
        };
        if s.is_empty() {
            return Err(ConfigError::invalid(KEY, "the client secret is empty"));
        }
        Ok(Secret::new(s))
    };
    match a.method.as_str() {
        "client_secret_post" => Ok(ClientAuthConfig::SecretPost(secret()?)),
        "client_secret_basic" => Ok(ClientAuthConfig::SecretBasic(secret()?)),
        "private_key_jwt" => {
            if secret_count != 0 {
                return Err(ConfigError::invalid(
                    KEY,
                    "private_key_jwt takes `private_key_file`, not a secret",
                ));
            }
            let file = a.private_key_file.as_deref().ok_or_else(|| {
                ConfigError::invalid(
                    format!("{KEY}.private_key_file"),
                    "required for private_key_jwt",
                )
            })?;
            let pem = std::fs::read_to_string(file).map_err(|e| {
                ConfigError::invalid(
                    format!("{KEY}.private_key_file"),
                    format_args!("cannot read `{file}`: {e}"),
                )
            })?;
            let algorithm = asymmetric_algorithm(
                &format!("{KEY}.algorithm"),
                a.algorithm.as_deref().unwrap_or("RS256"),
            )?;
            let key = signing_key_from_pem(pem.as_bytes(), algorithm).map_err(|e| {
                ConfigError::invalid(
                    format!("{KEY}.private_key_file"),
                    format_args!("`{file}`: {e}"),
                )
            })?;
            Ok(ClientAuthConfig::PrivateKeyJwt {
                key: SigningKey(std::sync::Arc::new(key)),
                algorithm,
                key_id: a.key_id.clone(),
                audience: a
                    .assertion_audience
                    .clone()
                    .unwrap_or_else(|| token_endpoint.to_string()),
            })
        }
        other => Err(ConfigError::invalid(
            format!("{KEY}.method"),
            format_args!(
                "`{other}`: expected client_secret_post, client_secret_basic or private_key_jwt"
            ),
        )),
    }
}

fn validate_route(
    key: &str,
    r: &RawRoute,
    credentials: &[CredentialConfig],
) -> Result<RouteConfig, ConfigError> {
    let host_lower = r.host.to_ascii_lowercase();
    let host = glob::Pattern::new(&host_lower).map_err(|e| {
        ConfigError::invalid(
            format!("{key}.host"),
            format_args!("`{}` is not a valid glob ({e})", r.host),
        )
    })?;
    // Every key that only some actions read, with the actions that read it: a key set on
    // another action is an error, not silently ignored.
    let scoped: [(&str, bool, &[&str]); 9] = [
        ("audience", r.audience.is_some(), &["exchange"]),
        ("scopes", !r.scopes.is_empty(), &["exchange"]),
        (
            "requested_token_type",
            r.requested_token_type.is_some(),
            &["exchange"],
        ),
        (
            "forward_authorization",
            r.forward_authorization.is_some(),
            &["passthrough"],
        ),
        (
            "allow_direct_use",
            r.allow_direct_use.is_some(),
            &["exchange", "credential", "vend"],
        ),
        (
            "single_use",
            r.single_use.is_some(),
            &["exchange", "credential", "vend"],
        ),
        ("credential", r.credential.is_some(), &["credential"]),
        ("mode", r.mode.is_some(), &["credential"]),
        ("services", r.services.is_some(), &["vend"]),
    ];
    for (name, set, actions) in scoped {
        if set && !actions.contains(&r.action.as_str()) {
            return Err(ConfigError::invalid(
                format!("{key}.{name}"),
                format_args!("only applies to action {}", actions.join(", ")),
            ));
        }
    }
    let rules = TokenRules {
        allow_direct_use: r.allow_direct_use.unwrap_or(false),
        single_use: r.single_use.unwrap_or(false),
    };
    let known = |k: &str, name: &str| -> Result<String, ConfigError> {
        if credentials.iter().any(|c| c.name == name) {
            Ok(name.to_string())
        } else {
            Err(ConfigError::invalid(
                k,
                format_args!("`{name}` is not a `credentials[].name`"),
            ))
        }
    };
    let action = match r.action.as_str() {
        "exchange" => {
            let audience = r
                .audience
                .clone()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| {
                    ConfigError::invalid(
                        format!("{key}.audience"),
                        "required for action `exchange`",
                    )
                })?;
            for (i, s) in r.scopes.iter().enumerate() {
                if s.is_empty() || s.contains(char::is_whitespace) {
                    return Err(ConfigError::invalid(
                        format!("{key}.scopes[{i}]"),
                        "a scope is one non-empty word",
                    ));
                }
            }
            RouteAction::Exchange {
                target: ExchangeTarget {
                    audience,
                    scopes: r.scopes.clone(),
                    requested_token_type: r
                        .requested_token_type
                        .clone()
                        .unwrap_or_else(|| ACCESS_TOKEN_TYPE.to_string()),
                },
                rules,
            }
        }
        "credential" => {
            let name = r.credential.as_deref().ok_or_else(|| {
                ConfigError::invalid(
                    format!("{key}.credential"),
                    "required for action `credential`",
                )
            })?;
            let credential = known(&format!("{key}.credential"), name)?;
            let mode = match r.mode.as_deref() {
                Some("sign") => CredentialMode::Sign,
                Some("inject") => CredentialMode::Inject,
                Some("filter") => CredentialMode::Filter,
                Some(other) => {
                    return Err(ConfigError::invalid(
                        format!("{key}.mode"),
                        format_args!("`{other}`: expected `sign`, `inject` or `filter`"),
                    ));
                }
                None => {
                    return Err(ConfigError::invalid(
                        format!("{key}.mode"),
                        "required for action `credential`",
                    ));
                }
            };
            let backend = credentials.iter().find(|c| c.name == credential);
            let fits = matches!(
                (mode, backend.map(|c| &c.backend)),
                (CredentialMode::Sign, Some(BackendConfig::AwsSts(_)))
                    | (CredentialMode::Inject, Some(BackendConfig::GithubApp(_)))
                    | (CredentialMode::Filter, Some(BackendConfig::Filter(_)))
            );
            if !fits {
                return Err(ConfigError::invalid(
                    format!("{key}.mode"),
                    "`aws_sts` credentials are applied with `mode: sign`, `github_app` ones with `mode: inject`, `filter` ones with `mode: filter`; `ssh_cert` and `postgres` ones are only vended",
                ));
            }
            RouteAction::Credential {
                credential,
                mode,
                rules,
            }
        }
        "vend" => {
            let services = r.services.clone().unwrap_or_default();
            if services.is_empty() {
                return Err(ConfigError::invalid(
                    format!("{key}.services"),
                    "required for action `vend`: at least one `target_service: credential`",
                ));
            }
            for (service, name) in &services {
                let k = format!("{key}.services.{service}");
                known(&k, name)?;
                let filter = credentials
                    .iter()
                    .any(|c| &c.name == name && matches!(c.backend, BackendConfig::Filter(_)));
                if filter {
                    return Err(ConfigError::invalid(
                        k,
                        "a `filter` credential's service token is never vended",
                    ));
                }
            }
            RouteAction::Vend { services, rules }
        }
        "passthrough" => RouteAction::Passthrough {
            forward_authorization: r.forward_authorization.unwrap_or(false),
        },
        "deny" => RouteAction::Deny,
        other => {
            return Err(ConfigError::invalid(
                format!("{key}.action"),
                format_args!("`{other}`: expected exchange, credential, vend, passthrough or deny"),
            ));
        }
    };
    Ok(RouteConfig {
        name: r.name.clone().unwrap_or_else(|| r.host.clone()),
        host,
        action,
    })
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
