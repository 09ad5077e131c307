//! The agent-protocol keys: `protocol`, `max_body_bytes` and `tool_scope` on an
//! `exchange` route (MCP and A2A over JSON-RPC), and, inbound, the OAuth protected
//! resource metadata served for an MCP server behind this sidecar (RFC 9728) and the
//! public A2A Agent Card.
//!
//! ```text
//! outbound:
//!   routes:
//!     - host: mcp-documents
//!       cluster: mcp_documents
//!       action: exchange
//!       audience: spiffe://demo.example.com/tool/mcp-documents
//!       protocol: mcp
//!       max_body_bytes: 262144
//!       tool_scope: "mcp:{tool}"
//! inbound:
//!   protected_resource:
//!     resource: https://mcp-documents.example.com/mcp
//!     authorization_servers: [https://keycloak.example.com/realms/demo]
//!     scopes_supported: ["mcp:read_document", "mcp:search"]
//!   public_agent_card: true
//! ```

use serde::Deserialize;
use url::Url;

use super::ConfigError;
use super::routes::{RawAction, RawProtocol, RawRoute};

/// Default largest JSON-RPC body read on an `mcp` or `a2a` route: 1 MiB, Envoy's default
/// per-connection buffer limit (a larger body is refused by Envoy itself with 413).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// The largest `max_body_bytes` accepted: 8 MiB. actbridge holds the whole body while
/// deciding, so the bound is a memory bound.
pub(super) const MAX_MAX_BODY_BYTES: usize = 8 << 20;
/// Default `tool_scope`.
pub(super) const DEFAULT_TOOL_SCOPE: &str = "mcp:{tool}";

/// The protocol an `exchange` route speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteProtocol {
    /// Plain HTTP: decided on the headers alone (the default).
    Http,
    /// MCP, Streamable HTTP transport: POST bodies are read and each JSON-RPC message is
    /// judged; `tools/list` results are narrowed to what the policy allows.
    Mcp {
        /// Largest body read.
        max_body_bytes: usize,
        /// The scope of a single-use tool token, `{tool}` replaced by the tool's name.
        tool_scope: String,
    },
    /// A2A, JSON-RPC binding: POST bodies are read and each method judged.
    A2a {
        /// Largest body read.
        max_body_bytes: usize,
    },
}

impl RouteProtocol {
    /// `http`, `mcp` or `a2a`.
    pub fn name(&self) -> &'static str {
        match self {
            RouteProtocol::Http => "http",
            RouteProtocol::Mcp { .. } => "mcp",
            RouteProtocol::A2a { .. } => "a2a",
        }
    }
}

/// Validates a route's `protocol`, `max_body_bytes` and `tool_scope` (`key` is the
/// route's key, `outbound.routes[i]`).
pub(super) fn route_protocol(key: &str, r: &RawRoute) -> Result<RouteProtocol, ConfigError> {
    let protocol = r.protocol.unwrap_or_default();
    if protocol != RawProtocol::Http && r.action != RawAction::Exchange {
        return Err(ConfigError::invalid(
            format!("{key}.protocol"),
            "only applies to action exchange",
        ));
    }
    if r.max_body_bytes.is_some() && protocol == RawProtocol::Http {
        return Err(ConfigError::invalid(
            format!("{key}.max_body_bytes"),
            "only applies to `protocol: mcp` or `protocol: a2a`",
        ));
    }
    if r.tool_scope.is_some() && protocol != RawProtocol::Mcp {
        return Err(ConfigError::invalid(
            format!("{key}.tool_scope"),
            "only applies to `protocol: mcp`",
        ));
    }
    let max_body_bytes = r.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if !(1..=MAX_MAX_BODY_BYTES).contains(&max_body_bytes) {
        return Err(ConfigError::invalid(
            format!("{key}.max_body_bytes"),
            format_args!("must be between 1 and {MAX_MAX_BODY_BYTES}"),
        ));
    }
    match protocol {
        RawProtocol::Http => Ok(RouteProtocol::Http),
        RawProtocol::A2a => Ok(RouteProtocol::A2a { max_body_bytes }),
        RawProtocol::Mcp => {
            let tool_scope = r
                .tool_scope
                .clone()
                .unwrap_or_else(|| DEFAULT_TOOL_SCOPE.to_string());
            if !tool_scope.contains("{tool}") || tool_scope.contains(char::is_whitespace) {
                return Err(ConfigError::invalid(
                    format!("{key}.tool_scope"),
                    "one word containing `{tool}`, e.g. `mcp:{tool}`",
                ));
            }
            Ok(RouteProtocol::Mcp {
                max_body_bytes,
                tool_scope,
            })
        }
    }
}

/// `inbound.protected_resource`: the OAuth 2.0 Protected Resource Metadata (RFC 9728) of
/// the app behind this sidecar — an MCP server, say. actbridge answers
/// `GET /.well-known/oauth-protected-resource` (and the path-suffixed form RFC 9728 §3.1
/// derives from `resource`) with it, without a token, and its 401 challenges carry
/// `resource_metadata` pointing at it, as the MCP authorization specification asks.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProtectedResource {
    /// The resource identifier (`resource`): an `https` URL without a fragment (`http`
    /// only for a loopback host). Required.
    pub resource: String,
    /// `authorization_servers`: issuer URLs of the authorization servers that issue
    /// tokens for it. Required, at least one.
    pub authorization_servers: Vec<String>,
    /// `scopes_supported`. Optional.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// `resource_name`, human-readable. Optional.
    #[serde(default)]
    pub resource_name: Option<String>,
    /// `resource_documentation` URL. Optional.
    #[serde(default)]
    pub resource_documentation: Option<String>,
}

/// The validated protected resource metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    /// The metadata document, served as JSON.
    pub document: serde_json::Value,
    /// The paths it is served at: `/.well-known/oauth-protected-resource` and, when the
    /// resource has a path, that path appended (RFC 9728 §3.1).
    pub paths: Vec<String>,
    /// The metadata URL named in `WWW-Authenticate: Bearer resource_metadata="…"`.
    pub metadata_url: String,
}

/// The well-known path of RFC 9728 §3.
pub const PROTECTED_RESOURCE_PATH: &str = "/.well-known/oauth-protected-resource";

pub(super) fn validate_protected_resource(
    p: &RawProtectedResource,
) -> Result<ProtectedResource, ConfigError> {
    const KEY: &str = "inbound.protected_resource";
    let resource = Url::parse(&p.resource).map_err(|e| {
        ConfigError::invalid(
            format!("{KEY}.resource"),
            format_args!("`{}` is not a URL: {e}", p.resource),
        )
    })?;
    let loopback = matches!(
        resource.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]")
    );
    if !(resource.scheme() == "https" || resource.scheme() == "http" && loopback)
        || resource.fragment().is_some()
        || resource.host_str().is_none()
    {
        return Err(ConfigError::invalid(
            format!("{KEY}.resource"),
            "an https URL without a fragment (http only for a loopback host; RFC 9728 §2)",
        ));
    }
    if p.authorization_servers.is_empty() {
        return Err(ConfigError::invalid(
            format!("{KEY}.authorization_servers"),
            "at least one issuer URL",
        ));
    }
    for (i, a) in p.authorization_servers.iter().enumerate() {
        Url::parse(a).map_err(|e| {
            ConfigError::invalid(
                format!("{KEY}.authorization_servers[{i}]"),
                format_args!("`{a}` is not a URL: {e}"),
            )
        })?;
    }
    for (i, s) in p.scopes_supported.iter().enumerate() {
        if s.is_empty() || s.contains(char::is_whitespace) || s.contains('"') {
            return Err(ConfigError::invalid(
                format!("{KEY}.scopes_supported[{i}]"),
                "a scope is one word",
            ));
        }
    }
    let mut document = serde_json::json!({
        "resource": p.resource,
        "authorization_servers": p.authorization_servers,
        "bearer_methods_supported": ["header"],
    });
    if !p.scopes_supported.is_empty() {
        document["scopes_supported"] = p.scopes_supported.clone().into();
    }
    if let Some(n) = &p.resource_name {
        document["resource_name"] = n.clone().into();
    }
    if let Some(d) = &p.resource_documentation {
        document["resource_documentation"] = d.clone().into();
    }
    // RFC 9728 §3.1: the well-known segment goes between the host and the path.
    let suffix = resource.path().trim_end_matches('/');
    let mut paths = vec![PROTECTED_RESOURCE_PATH.to_string()];
    if !suffix.is_empty() {
        paths.push(format!("{PROTECTED_RESOURCE_PATH}{suffix}"));
    }
    let metadata_url = format!(
        "{}{}",
        resource.origin().ascii_serialization(),
        paths
            .last()
            .map(String::as_str)
            .unwrap_or(PROTECTED_RESOURCE_PATH)
    );
    Ok(ProtectedResource {
        document,
        paths,
        metadata_url,
    })
}
