//! Validation of the `outbound` section: the token service, actbridge's own client and
//! its authentication, and the route table (each route's action and the keys it reads).

use std::time::Duration;

use super::credentials::CredentialConfig;
use super::raw::{RawAction, RawClient, RawClientAuth, RawOutbound, RawRoute};
use super::types::{
    ACCESS_TOKEN_TYPE, ClientAuthConfig, ClientConfig, CredentialMode, ExchangeTarget,
    OutboundConfig, RouteAction, RouteConfig, Secret, SigningKey, TokenRules, signing_key_from_pem,
};
use super::validate::{asymmetric_algorithm, external_secret, http_url};
use super::{ConfigError, Env};

/// A byte of an Envoy route or cluster name as actbridge writes them.
fn envoy_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

/// An outbound route table: the routes, first match wins, and what no route matches.
#[derive(Debug, Clone)]
pub struct RouteTable {
    /// The routes.
    pub routes: Vec<RouteConfig>,
    /// What a destination no route matches gets.
    pub default_action: RouteAction,
}

/// Validates `outbound.default_action` and `outbound.routes`; `credentials` names each
/// credential with its backend kind (all a route needs to know of it).
pub(super) fn validate_route_table(
    o: &RawOutbound,
    credentials: &[(&str, &'static str)],
) -> Result<RouteTable, ConfigError> {
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
    for (i, r) in routes.iter().enumerate() {
        if routes[..i].iter().any(|o| o.name == r.name) {
            return Err(ConfigError::invalid(
                format!("outbound.routes[{i}].name"),
                format_args!("`{}` names two routes", r.name),
            ));
        }
        if routes[..i].iter().any(|o| o.host == r.host) {
            return Err(ConfigError::invalid(
                format!("outbound.routes[{i}].host"),
                format_args!("`{}` is matched by an earlier route", r.host),
            ));
        }
    }
    Ok(RouteTable {
        routes,
        default_action,
    })
}

pub(super) fn validate_outbound(
    o: &RawOutbound,
    env: &dyn Env,
    credentials: &[CredentialConfig],
) -> Result<OutboundConfig, ConfigError> {
    let token_endpoint = http_url("outbound.token_endpoint", &o.token_endpoint)?;
    let endpoint = token_endpoint.as_str();
    let audiences = AssertionAudiences {
        private_key_jwt: endpoint.to_string(),
        jwt_svid: endpoint
            .strip_suffix("/protocol/openid-connect/token")
            .unwrap_or(endpoint)
            .to_string(),
    };
    let client = validate_client("outbound.client", &o.client, audiences, env)?;
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
    let kinds: Vec<(&str, &'static str)> = credentials
        .iter()
        .map(|c| (c.name.as_str(), c.backend.kind()))
        .collect();
    let RouteTable {
        routes,
        default_action,
    } = validate_route_table(o, &kinds)?;
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
    let token_endpoint_spiffe_id = match &o.tls {
        None => None,
        Some(t) => {
            let well_formed = t
                .spiffe_id
                .strip_prefix("spiffe://")
                .and_then(|r| r.split_once('/'))
                .is_some_and(|(td, path)| !td.is_empty() && !path.is_empty());
            if !well_formed {
                return Err(ConfigError::invalid(
                    "outbound.tls.spiffe_id",
                    format_args!("`{}`: expected spiffe://TRUST_DOMAIN/PATH", t.spiffe_id),
                ));
            }
            if token_endpoint.scheme() != "https" {
                return Err(ConfigError::invalid(
                    "outbound.tls",
                    "needs an https outbound.token_endpoint",
                ));
            }
            Some(t.spiffe_id.clone())
        }
    };
    Ok(OutboundConfig {
        token_endpoint_spiffe_id,
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

/// Where a client assertion is addressed unless `assertion_audience` says otherwise.
pub(super) struct AssertionAudiences {
    /// `private_key_jwt`'s default `aud`.
    pub private_key_jwt: String,
    /// `jwt_svid`'s default `aud`.
    pub jwt_svid: String,
}

/// Validates an OAuth client section (`outbound.client`, `issuers[].introspection.client`);
/// errors name keys under `key`.
pub(super) fn validate_client(
    key: &str,
    c: &RawClient,
    audiences: AssertionAudiences,
    env: &dyn Env,
) -> Result<ClientConfig, ConfigError> {
    if c.client_id.is_empty() {
        return Err(ConfigError::invalid(
            format!("{key}.client_id"),
            "must not be empty",
        ));
    }
    let auth = client_auth(&format!("{key}.auth"), &c.auth, audiences, env)?;
    Ok(ClientConfig {
        client_id: c.client_id.clone(),
        auth,
    })
}

/// `outbound.client.auth`, by method. Long by design: one arm per client
/// authentication method, each refusing the keys the others read.
fn client_auth(
    key: &str,
    a: &RawClientAuth,
    audiences: AssertionAudiences,
    env: &dyn Env,
) -> Result<ClientAuthConfig, ConfigError> {
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
                key,
                "set exactly one of `secret`, `secret_file`, `secret_env`",
            ));
        }
        if key_fields {
            return Err(ConfigError::invalid(
                key,
                "private_key_jwt keys are set, but the method uses a secret",
            ));
        }
        let s = match &a.secret {
            Some(s) => s.clone(),
            None => external_secret(
                (&format!("{key}.secret_file"), a.secret_file.as_deref()),
                (&format!("{key}.secret_env"), a.secret_env.as_deref()),
                env,
            )?,
        };
        if s.is_empty() {
            return Err(ConfigError::invalid(key, "the client secret is empty"));
        }
        Ok(Secret::new(s))
    };
    match a.method.as_str() {
        "client_secret_post" => Ok(ClientAuthConfig::SecretPost(secret()?)),
        "client_secret_basic" => Ok(ClientAuthConfig::SecretBasic(secret()?)),
        "private_key_jwt" => {
            if secret_count != 0 {
                return Err(ConfigError::invalid(
                    key,
                    "private_key_jwt takes `private_key_file`, not a secret",
                ));
            }
            let file = a.private_key_file.as_deref().ok_or_else(|| {
                ConfigError::invalid(
                    format!("{key}.private_key_file"),
                    "required for private_key_jwt",
                )
            })?;
            let pem = std::fs::read_to_string(file).map_err(|e| {
                ConfigError::invalid(
                    format!("{key}.private_key_file"),
                    format_args!("cannot read `{file}`: {e}"),
                )
            })?;
            let algorithm = asymmetric_algorithm(
                &format!("{key}.algorithm"),
                a.algorithm.as_deref().unwrap_or("RS256"),
            )?;
            let key = signing_key_from_pem(pem.as_bytes(), algorithm).map_err(|e| {
                ConfigError::invalid(
                    format!("{key}.private_key_file"),
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
                    .unwrap_or(audiences.private_key_jwt),
            })
        }
        "jwt_svid" => {
            if secret_count != 0
                || a.private_key_file.is_some()
                || a.algorithm.is_some()
                || a.key_id.is_some()
            {
                return Err(ConfigError::invalid(
                    key,
                    "jwt_svid takes no secret and no key: the Workload API provides the JWT-SVID",
                ));
            }
            Ok(ClientAuthConfig::JwtSvid {
                audience: a.assertion_audience.clone().unwrap_or(audiences.jwt_svid),
                // Filled in from the `spiffe` section (super::spiffe::bind_jwt_svid).
                workload_api: String::new(),
            })
        }
        other => Err(ConfigError::invalid(
            format!("{key}.method"),
            format_args!(
                "`{other}`: expected client_secret_post, client_secret_basic, private_key_jwt or jwt_svid"
            ),
        )),
    }
}

fn validate_route(
    key: &str,
    r: &RawRoute,
    credentials: &[(&str, &'static str)],
) -> Result<RouteConfig, ConfigError> {
    let host = crate::authority::HostPattern::parse(&r.host)
        .map_err(|e| ConfigError::invalid(format!("{key}.host"), e))?;
    check_scoped_keys(key, r)?;
    let rules = TokenRules {
        allow_direct_use: r.allow_direct_use.unwrap_or(false),
        single_use: r.single_use.unwrap_or(false),
        introspect: r.introspect.unwrap_or(false),
    };
    // Read for every action: `protocol` and its keys set elsewhere are refused.
    let protocol = super::agent_protocols::route_protocol(key, r)?;
    let action = match r.action {
        RawAction::Exchange => exchange_action(key, r, rules, protocol)?,
        RawAction::Credential => credential_action(key, r, credentials, rules)?,
        RawAction::Vend => vend_action(key, r, credentials, rules)?,
        RawAction::Passthrough => RouteAction::Passthrough {
            forward_authorization: r.forward_authorization.unwrap_or(false),
        },
        RawAction::Deny => RouteAction::Deny,
    };
    let cluster = route_cluster(key, r, &action)?;
    let name = route_name(key, r)?;
    Ok(RouteConfig {
        name,
        host,
        cluster,
        action,
    })
}

/// Refuses a key that only other actions read: set on this action it would be
/// silently ignored.
fn check_scoped_keys(key: &str, r: &RawRoute) -> Result<(), ConfigError> {
    let scoped: [(&str, bool, &[&str]); 11] = [
        (
            "cluster",
            r.cluster.is_some(),
            &["exchange", "credential", "passthrough"],
        ),
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
        (
            "introspect",
            r.introspect.is_some(),
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
    Ok(())
}

/// `credentials[].name` `name` (read at `k`), when it is one.
fn known_credential(
    credentials: &[(&str, &'static str)],
    k: &str,
    name: &str,
) -> Result<String, ConfigError> {
    if credentials.iter().any(|(n, _)| *n == name) {
        Ok(name.to_string())
    } else {
        Err(ConfigError::invalid(
            k,
            format_args!("`{name}` is not a `credentials[].name`"),
        ))
    }
}

/// `action: exchange`: the audience (required), the scopes, the token type and the
/// protocol the destination speaks.
fn exchange_action(
    key: &str,
    r: &RawRoute,
    rules: TokenRules,
    protocol: super::agent_protocols::RouteProtocol,
) -> Result<RouteAction, ConfigError> {
    let audience = r
        .audience
        .clone()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            ConfigError::invalid(format!("{key}.audience"), "required for action `exchange`")
        })?;
    for (i, s) in r.scopes.iter().enumerate() {
        if s.is_empty() || s.contains(char::is_whitespace) {
            return Err(ConfigError::invalid(
                format!("{key}.scopes[{i}]"),
                "a scope is one non-empty word",
            ));
        }
    }
    Ok(RouteAction::Exchange {
        target: ExchangeTarget {
            audience,
            scopes: r.scopes.clone(),
            requested_token_type: r
                .requested_token_type
                .clone()
                .unwrap_or_else(|| ACCESS_TOKEN_TYPE.to_string()),
        },
        rules,
        protocol,
    })
}

/// `action: credential`: a known credential and the mode its backend is applied with.
fn credential_action(
    key: &str,
    r: &RawRoute,
    credentials: &[(&str, &'static str)],
    rules: TokenRules,
) -> Result<RouteAction, ConfigError> {
    let name = r.credential.as_deref().ok_or_else(|| {
        ConfigError::invalid(
            format!("{key}.credential"),
            "required for action `credential`",
        )
    })?;
    let credential = known_credential(credentials, &format!("{key}.credential"), name)?;
    let mode = r.mode.ok_or_else(|| {
        ConfigError::invalid(format!("{key}.mode"), "required for action `credential`")
    })?;
    let kind = credentials
        .iter()
        .find(|(n, _)| *n == credential)
        .map(|(_, k)| *k);
    let fits = matches!(
        (mode, kind),
        (CredentialMode::Sign, Some("aws_sts"))
            | (CredentialMode::Inject, Some("github_app"))
            | (CredentialMode::Filter, Some("filter"))
    );
    if !fits {
        return Err(ConfigError::invalid(
            format!("{key}.mode"),
            "`aws_sts` credentials are applied with `mode: sign`, `github_app` ones with `mode: inject`, `filter` ones with `mode: filter`; `ssh_cert` and `postgres` ones are only vended",
        ));
    }
    Ok(RouteAction::Credential {
        credential,
        mode,
        rules,
    })
}

/// `action: vend`: at least one service, each a known credential that may be vended.
fn vend_action(
    key: &str,
    r: &RawRoute,
    credentials: &[(&str, &'static str)],
    rules: TokenRules,
) -> Result<RouteAction, ConfigError> {
    let services = r.services.clone().unwrap_or_default();
    if services.is_empty() {
        return Err(ConfigError::invalid(
            format!("{key}.services"),
            "required for action `vend`: at least one `target_service: credential`",
        ));
    }
    for (service, name) in &services {
        let k = format!("{key}.services.{service}");
        known_credential(credentials, &k, name)?;
        let filter = credentials.iter().any(|(n, k)| n == name && *k == "filter");
        if filter {
            return Err(ConfigError::invalid(
                k,
                "a `filter` credential's service token is never vended",
            ));
        }
    }
    Ok(RouteAction::Vend { services, rules })
}

/// The Envoy cluster a route's requests must leave by: required where a credential is
/// attached, never the forward proxy's.
fn route_cluster(
    key: &str,
    r: &RawRoute,
    action: &RouteAction,
) -> Result<Option<String>, ConfigError> {
    Ok(match (&r.cluster, action) {
        (None, RouteAction::Exchange { .. } | RouteAction::Credential { .. }) => {
            return Err(ConfigError::invalid(
                format!("{key}.cluster"),
                format_args!(
                    "required for action `{}`: the Envoy cluster its requests leave by (a credential is attached only when Envoy reports it)",
                    r.action
                ),
            ));
        }
        (Some(c), RouteAction::Exchange { .. } | RouteAction::Credential { .. })
            if c == crate::envoy_routes::FORWARD_PROXY_CLUSTER =>
        {
            return Err(ConfigError::invalid(
                format!("{key}.cluster"),
                "a credential never leaves through the forward proxy (`egress`): name the destination's own cluster",
            ));
        }
        (Some(c), _) if c.is_empty() || !c.bytes().all(envoy_name_byte) => {
            return Err(ConfigError::invalid(
                format!("{key}.cluster"),
                format_args!("`{c}`: letters, digits, `-`, `_`, `.`"),
            ));
        }
        (c, _) => c.clone(),
    })
}

/// The route's name (default: its host): an Envoy name, never `default`.
fn route_name(key: &str, r: &RawRoute) -> Result<String, ConfigError> {
    let name = r
        .name
        .clone()
        .unwrap_or_else(|| r.host.to_ascii_lowercase());
    if name == crate::envoy_routes::DEFAULT_ROUTE
        || name.is_empty()
        || !name.bytes().all(|b| envoy_name_byte(b) || b == b'*')
    {
        return Err(ConfigError::invalid(
            format!("{key}.name"),
            format_args!(
                "`{name}`: letters, digits, `-`, `_`, `.`, not `{}`",
                crate::envoy_routes::DEFAULT_ROUTE
            ),
        ));
    }
    Ok(name)
}
