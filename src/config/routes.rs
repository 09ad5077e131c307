//! `outbound.routes[]` and `outbound.default_action`: the route table. Each route's
//! action and the keys it reads; a key another action reads is refused, not ignored.

use serde::Deserialize;

use super::ConfigError;

/// `outbound.routes[]`: one destination rule.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// The route's name: in logs, metrics and the audit log, and the name of the Envoy
    /// route generated for it (`actbridge envoy-routes`), which Envoy reports back
    /// (`xds.route_name`): a request is refused unless Envoy chose this very route.
    /// Letters, digits, `-`, `_`, `.`; unique; not `default`. Default: the host.
    #[serde(default)]
    pub name: Option<String>,
    /// The destination host name, matched exactly (ASCII case-insensitive; the port is
    /// not part of the match), or `*.` and a domain for every name under it
    /// (`*.s3.us-east-1.amazonaws.com`). No other wildcard.
    pub host: String,
    /// `exchange`, `credential` (required) and `passthrough` (optional): the Envoy
    /// cluster the request must leave by. A credential is attached only when Envoy reports
    /// this cluster (`xds.cluster_name`). A `passthrough` route without one goes through
    /// Envoy's forward proxy (`egress`), which never dials loopback or link-local
    /// addresses; a credential route never may (`egress` is refused here).
    #[serde(default)]
    pub cluster: Option<String>,
    /// `exchange` (token exchange), `credential` (a backend's credential replaces the
    /// token), `vend` (answer `POST /credentials` with a credential), `passthrough` or
    /// `deny`.
    pub action: RawAction,
    /// `exchange`: the audience requested (required).
    #[serde(default)]
    pub audience: Option<String>,
    /// `exchange`: scopes requested; they can only narrow the agent's token. Default: none
    /// requested (the token service decides).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// `exchange`: RFC 8693 `requested_token_type`. Default
    /// `urn:ietf:params:oauth:token-type:access_token`.
    #[serde(default)]
    pub requested_token_type: Option<String>,
    /// `passthrough`: forward the agent's `authorization` header unchanged. Default
    /// `false`: the header is removed, so the user's token never leaves the pod.
    #[serde(default)]
    pub forward_authorization: Option<bool>,
    /// `exchange`, `credential`, `vend`: accept a token without `act` — the user's own
    /// token, not a delegation to an agent. Default `false`: such a request is refused
    /// (403 `delegation_required`).
    #[serde(default)]
    pub allow_direct_use: Option<bool>,
    /// `exchange`, `credential`, `vend`: the agent's token is single-use on this route: it
    /// must carry a `jti` and a second presentation is refused (401 `token_replayed`).
    /// Default `false`.
    #[serde(default)]
    pub single_use: Option<bool>,
    /// `exchange`, `credential`, `vend`: the agent's token is also checked live at its
    /// issuer (RFC 7662 token introspection) before the policy, the token service or the
    /// backend is asked: a token revoked at the issuer is refused (401 `token_inactive`),
    /// and when the issuer cannot answer, so is the request (503
    /// `introspection_unavailable`). Every issuer needs an `introspection` section then.
    /// Default `false`.
    #[serde(default)]
    pub introspect: Option<bool>,
    /// `credential`: the `credentials[].name` whose credential replaces the agent's token
    /// (required).
    #[serde(default)]
    pub credential: Option<String>,
    /// `credential`: how the credential is applied: `sign` (AWS SigV4 over the request;
    /// the only mode of `aws_sts`). Required.
    #[serde(default)]
    pub mode: Option<CredentialMode>,
    /// `vend`: which credential each `target_service` of a `POST /credentials` body gets,
    /// e.g. `{s3: documents-s3}` (required, non-empty).
    #[serde(default)]
    pub services: Option<std::collections::BTreeMap<String, String>>,
    /// `exchange`: the protocol the destination speaks: `http` (default), `mcp` (MCP over
    /// Streamable HTTP: each JSON-RPC message of a POST is judged, with `mcp` in the
    /// policy input; `tools/list` results are narrowed to the tools the policy allows)
    /// or `a2a` (A2A's JSON-RPC binding: each method is judged, with `a2a` in the policy
    /// input). docs/mcp.md.
    #[serde(default)]
    pub protocol: Option<RawProtocol>,
    /// `protocol: mcp` or `a2a`: the largest POST body read, in bytes; a larger one is
    /// refused (413) before it reaches the destination. Default 1048576 (1 MiB), at most
    /// 8 MiB.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// `protocol: mcp`: the scope of a single-use tool token (when the policy asks for
    /// one), `{tool}` replaced by the tool's name. Default `mcp:{tool}`.
    #[serde(default)]
    pub tool_scope: Option<String>,
}

/// An outbound route's `action`: a closed set, so a misspelt one is refused where it is
/// read, naming the allowed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawAction {
    Exchange,
    Credential,
    Vend,
    Passthrough,
    Deny,
}

impl RawAction {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            RawAction::Exchange => "exchange",
            RawAction::Credential => "credential",
            RawAction::Vend => "vend",
            RawAction::Passthrough => "passthrough",
            RawAction::Deny => "deny",
        }
    }
}

impl std::fmt::Display for RawAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `exchange` route's `protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawProtocol {
    #[default]
    Http,
    Mcp,
    A2a,
}

/// `outbound.default_action`: what a destination no route matches gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawDefaultAction {
    /// Refused (403 `route_denied`).
    #[default]
    Deny,
    /// Let through without the agent's `authorization` header.
    Passthrough,
}

/// One outbound route.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Name for logs, and of the Envoy route generated for it.
    pub name: String,
    /// The host (or domain) it matches.
    pub host: crate::authority::HostPattern,
    /// The Envoy cluster its requests must leave by (`None`: a `passthrough` through the
    /// forward proxy).
    pub cluster: Option<String>,
    /// What to do.
    pub action: RouteAction,
}

/// What an outbound route does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAction {
    /// Replace `authorization` with an exchanged token.
    Exchange {
        /// What the exchange asks for.
        target: ExchangeTarget,
        /// Which tokens the route accepts.
        rules: TokenRules,
        /// The protocol the destination speaks.
        protocol: super::agent_protocols::RouteProtocol,
    },
    /// Replace the agent's token with a credential from a backend (`credentials[]`).
    Credential {
        /// The `credentials[].name` used.
        credential: String,
        /// How the credential is applied to the request.
        mode: CredentialMode,
        /// Which tokens the route accepts.
        rules: TokenRules,
    },
    /// Answer `POST /credentials` with a vended credential; nothing is forwarded.
    Vend {
        /// `target_service` value → `credentials[].name`.
        services: std::collections::BTreeMap<String, String>,
        /// Which tokens the route accepts.
        rules: TokenRules,
    },
    /// Let the request through; remove `authorization` unless `forward_authorization`.
    Passthrough {
        /// Keep the agent's `authorization` header.
        forward_authorization: bool,
    },
    /// Refuse.
    Deny,
}

/// Which agent tokens a route accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenRules {
    /// Accept a token without `act` (the user's own token).
    pub allow_direct_use: bool,
    /// The agent's token may be presented once.
    pub single_use: bool,
    /// The agent's token is checked live at its issuer (RFC 7662).
    pub introspect: bool,
}

/// How a credential route applies the backend's credential (`mode`: `sign`, `inject`
/// or `filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialMode {
    /// Sign the request (AWS SigV4) with the session credentials.
    Sign,
    /// Put the backend's token in `authorization` (a GitHub installation token).
    Inject,
    /// Let through only what the backend's rules allow for the grant, with its service
    /// token.
    Filter,
}

/// What an exchange asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExchangeTarget {
    /// `audience`.
    pub audience: String,
    /// `scope` values.
    pub scopes: Vec<String>,
    /// `requested_token_type`.
    pub requested_token_type: String,
}

/// RFC 8693 access-token type URN.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

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
    default_action: RawDefaultAction,
    routes: &[RawRoute],
    credentials: &[(&str, &'static str)],
) -> Result<RouteTable, ConfigError> {
    let default_action = match default_action {
        RawDefaultAction::Deny => RouteAction::Deny,
        RawDefaultAction::Passthrough => RouteAction::Passthrough {
            forward_authorization: false,
        },
    };
    // Every route checked, every problem reported.
    let routes = super::Problems::each(routes.iter().enumerate(), |(i, r)| {
        validate_route(&format!("outbound.routes[{i}]"), r, credentials)
    })?;
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
