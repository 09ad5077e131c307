//! `inbound`: requests entering the pod — the identity headers handed to the app, the
//! paths that need no token, are single-use or checked live, delegation and custody.

use serde::Deserialize;

use super::ConfigError;
use super::raw::RawConfig;

/// `inbound`: requests entering the pod.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInbound {
    /// Names of the headers that carry the verified identity to the app. Client-sent
    /// copies of these headers are always removed first.
    #[serde(default)]
    pub identity_headers: RawIdentityHeaders,
    /// Paths that need no token (e.g. `/healthz`). Each entry is `{exact: PATH}` or
    /// `{prefix: PATH}`; the query string is ignored when matching.
    #[serde(default)]
    pub bypass_paths: Vec<RawPathMatch>,
    /// Delegate to this agent on the way in: the caller's token is exchanged at the token
    /// service (with `outbound.client`, which must be configured) for one whose `aud` is
    /// this agent and whose newest `act` is this agent, and the app receives that token in
    /// `authorization` instead of the caller's. The policy judges the chain including this
    /// agent, so a user this agent cannot serve is refused at its door. Default `false`:
    /// the caller's `authorization` reaches the app unchanged.
    #[serde(default)]
    pub delegation: Option<bool>,
    /// Paths that accept only single-use tokens (e.g. a tool's endpoint): the token must
    /// carry a `jti`, and a second presentation of it is refused (401 `token_replayed`).
    /// Entries as in `bypass_paths`.
    #[serde(default)]
    pub single_use_paths: Vec<RawPathMatch>,
    /// Scopes (globs, e.g. `mcp:*`) that make a token single-use wherever it is
    /// presented: a token holding one must carry a `jti`, and a second presentation is
    /// refused (401 `token_replayed`) — the single-use tool tokens of an MCP server, say,
    /// beside the ordinary tokens its other calls carry. Default none.
    #[serde(default)]
    pub single_use_scopes: Vec<String>,
    /// Paths whose tokens are also checked live at their issuer (RFC 7662 token
    /// introspection, after local verification): a token revoked at the issuer is
    /// refused (401 `token_inactive`) even though its signature and `exp` are still
    /// good. Costs one call to the issuer per request unless
    /// `issuers[].introspection.cache_ttl` is set; when the issuer cannot answer the
    /// request is refused (503 `introspection_unavailable`). Every issuer with
    /// `audiences` needs an `introspection` section then. Entries as in `bypass_paths`.
    /// Default none.
    #[serde(default)]
    pub introspect_paths: Vec<RawPathMatch>,
    /// Token custody: the app never receives the user's token (nor the delegated one).
    /// It gets an opaque random placeholder, bound to that token for the token's life,
    /// and presents it on its outbound requests; actbridge resolves it on this sidecar's
    /// `exchange` routes only. A placeholder presented inbound, forwarded by a
    /// passthrough route, unknown, or past the token's `exp` is refused (401). Needs
    /// `outbound`. Default `false`.
    #[serde(default)]
    pub token_custody: Option<bool>,
    /// How many tokens custody holds (each until its `exp`). When full, the least used are
    /// evicted and their placeholders refused. Default `100000`.
    #[serde(default)]
    pub custody_entries: Option<u64>,
    /// The OAuth protected resource metadata (RFC 9728) of the app, served without a
    /// token and named in 401 challenges (docs/mcp.md). Optional.
    #[serde(default)]
    pub protected_resource: Option<super::agent_protocols::RawProtectedResource>,
    /// Let `GET /.well-known/agent-card.json` (the A2A Agent Card, public by design) in
    /// without a token. Default `false`.
    #[serde(default)]
    pub public_agent_card: Option<bool>,
}

/// `inbound.identity_headers`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIdentityHeaders {
    /// The user's `sub`. Default `x-actbridge-subject`.
    #[serde(default)]
    pub subject: Option<String>,
    /// The user's `preferred_username`. Default `x-actbridge-username`.
    #[serde(default)]
    pub username: Option<String>,
    /// The `act` chain as compact JSON, newest actor first:
    /// `[{"sub":"…","client_id":"…"}]`. Default `x-actbridge-actors`.
    #[serde(default)]
    pub actors: Option<String>,
    /// The grant the policy computed (the user's permissions ∩ every agent's), as a
    /// comma-separated list; only set when a policy is configured.
    /// Default `x-actbridge-grant`.
    #[serde(default)]
    pub grant: Option<String>,
}

/// A path matcher: exactly one of `exact` or `prefix`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPathMatch {
    /// The path must equal this.
    #[serde(default)]
    pub exact: Option<String>,
    /// The path must start with this.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// Inbound settings.
#[derive(Debug, Clone)]
pub struct InboundConfig {
    /// Header names for the verified identity.
    pub identity_headers: IdentityHeaders,
    /// Paths that need no token.
    pub bypass_paths: Vec<PathMatch>,
    /// Exchange the caller's token for one delegated to this agent.
    pub delegation: bool,
    /// Paths that accept only single-use tokens.
    pub single_use_paths: Vec<PathMatch>,
    /// Scope globs that make a token single-use.
    pub single_use_scopes: Vec<glob::Pattern>,
    /// Paths whose tokens are checked live at their issuer (RFC 7662).
    pub introspect_paths: Vec<PathMatch>,
    /// Capacity of token custody; `None` = custody off.
    pub custody_entries: Option<u64>,
    /// The app's protected resource metadata, when configured.
    pub protected_resource: Option<super::agent_protocols::ProtectedResource>,
    /// Let the A2A Agent Card in without a token.
    pub public_agent_card: bool,
}

/// Header names carrying the verified identity to the app (lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    /// `sub`.
    pub subject: http::HeaderName,
    /// `preferred_username`.
    pub username: http::HeaderName,
    /// The `act` chain as JSON.
    pub actors: http::HeaderName,
    /// The policy's grant, comma-separated.
    pub grant: http::HeaderName,
}

/// A path matcher (bypass, single-use, introspection paths), by whole decoded segments
/// ([`crate::http_path`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The path is this one (a trailing `/` aside).
    Exact(crate::http_path::CanonicalPath),
    /// The path's first segments are these (`/public/` matches `/public` and
    /// `/public/x`, not `/publicity`).
    Prefix(crate::http_path::CanonicalPath),
}

impl PathMatch {
    /// Whether `path` matches.
    pub fn matches(&self, path: &crate::http_path::CanonicalPath) -> bool {
        match self {
            PathMatch::Exact(p) => path.is(p),
            PathMatch::Prefix(p) => path.starts_with(p),
        }
    }
}

/// `inbound`: the identity headers, the paths, delegation and custody (`has_outbound`:
/// both need the `outbound` section).
pub(super) fn validate_inbound(
    raw: &RawConfig,
    has_outbound: bool,
) -> Result<InboundConfig, ConfigError> {
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
