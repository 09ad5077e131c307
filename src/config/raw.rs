//! The configuration file as written: serde types with `deny_unknown_fields` and a doc
//! comment on every key. [`super::validate`] turns them into [`super::Config`].
//!
//! ```text
//! listen:
//!   ext_proc: tcp://127.0.0.1:9001
//!   admin: 127.0.0.1:9902
//! issuers:
//!   - issuer: http://127.0.0.1:8180/realms/demo
//!     audiences: [spiffe://demo.example.com/agent/summarizer-tech]
//! inbound: {}
//! outbound:
//!   token_endpoint: http://127.0.0.1:8180/realms/demo/protocol/openid-connect/token
//!   client:
//!     client_id: spiffe://demo.example.com/agent/summarizer-tech
//!     auth: {method: client_secret_post, secret_file: /run/secrets/client-secret}
//!   routes:
//!     - host: document-service
//!       cluster: document_service
//!       action: exchange
//!       audience: spiffe://demo.example.com/service/document-service
//!       scopes: [documents.read]
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use super::inbound::RawInbound;
use super::issuers::RawIssuer;
use super::listen::RawListen;
use super::tokens::RawTokens;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Where actbridge listens.
    pub listen: RawListen,
    /// Trusted token issuers. A token whose `iss` is not listed here is refused.
    pub issuers: Vec<RawIssuer>,
    /// Limits on presented tokens, for both directions.
    #[serde(default)]
    pub tokens: RawTokens,
    /// Requests entering the pod (the ext_proc filter with direction `inbound`).
    #[serde(default)]
    pub inbound: RawInbound,
    /// Requests the agent makes (the ext_proc filter with direction `outbound`).
    /// Without this section every outbound request is refused.
    #[serde(default)]
    pub outbound: Option<RawOutbound>,
    /// The Rego policy (see [`super::policy::RawPolicy`]).
    #[serde(default)]
    pub policy: Option<super::policy::RawPolicy>,
    /// Credential backends for destinations that do not accept actbridge's JWTs (see
    /// [`super::credentials::RawCredential`]). Routes use them by name.
    #[serde(default)]
    pub credentials: Vec<super::credentials::RawCredential>,
    /// The tamper-evident audit log (see [`super::audit::RawAudit`]).
    #[serde(default)]
    pub audit: Option<super::audit::RawAudit>,
    /// The authenticated admin API (see [`super::admin::RawAdminApi`]).
    #[serde(default)]
    pub admin_api: Option<super::admin::RawAdminApi>,
    /// Where the deny list is kept (see [`super::admin::RawRevocation`]).
    #[serde(default)]
    pub revocation: Option<super::admin::RawRevocation>,
    /// Human approvals (see [`super::admin::RawApprovals`]).
    #[serde(default)]
    pub approvals: Option<super::admin::RawApprovals>,
    /// The workload identity from the SPIFFE Workload API (see
    /// [`super::spiffe::RawSpiffe`]).
    #[serde(default)]
    pub spiffe: Option<super::spiffe::RawSpiffe>,
    /// Trace export (see [`super::telemetry::RawTelemetry`]); the `OTEL_*` variables
    /// override it.
    #[serde(default)]
    pub telemetry: Option<super::telemetry::RawTelemetry>,
}

/// `outbound`: requests the agent makes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutbound {
    /// The token service's token endpoint (RFC 8693), e.g.
    /// `https://keycloak.example.com/realms/demo/protocol/openid-connect/token`.
    pub token_endpoint: String,
    /// actbridge's own OAuth client at the token service.
    pub client: RawClient,
    /// Send `actor_token` = actbridge's own client-credentials token with every exchange,
    /// so the issued token names this agent in a nested `act` claim. Default `true`.
    #[serde(default)]
    pub send_actor_token: Option<bool>,
    /// Audiences the agent's (subject) token must carry. Default: `[client.client_id]`
    /// (a token exchange also requires that).
    #[serde(default)]
    pub subject_audiences: Option<Vec<String>>,
    /// Timeout of one request to the token service. Keep it below Envoy's ext_proc
    /// `message_timeout`. Default `2s`.
    #[serde(default, with = "humantime_serde")]
    pub token_timeout: Option<Duration>,
    /// `Retry-After` sent with a 503 when the token service is unavailable. Default `5s`.
    #[serde(default, with = "humantime_serde")]
    pub retry_after: Option<Duration>,
    /// The exchanged-token cache.
    #[serde(default)]
    pub cache: RawExchangeCache,
    /// What happens to a destination no route matches: `deny` (default) or `passthrough`.
    #[serde(default)]
    pub default_action: Option<String>,
    /// Routes, keyed by destination host (`:authority`); the first match wins.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// mTLS to the token endpoint with the pod's X.509-SVID (needs the `spiffe` section
    /// and an `https` token endpoint).
    #[serde(default)]
    pub tls: Option<RawOutboundTls>,
}

/// `outbound.tls`: the token endpoint over mTLS with the pod's current X.509-SVID as the
/// client certificate; the server must chain to the trust bundle and present `spiffe_id`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutboundTls {
    /// The token service's SPIFFE ID, e.g. `spiffe://demo.example.com/service/keycloak`.
    pub spiffe_id: String,
}

/// `outbound.client`: actbridge's OAuth client.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    /// The client id (for an agent, its SPIFFE ID).
    pub client_id: String,
    /// How the client authenticates to the token endpoint.
    pub auth: RawClientAuth,
}

/// `outbound.client.auth`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientAuth {
    /// `client_secret_post`, `client_secret_basic`, `private_key_jwt` (RFC 7523) or
    /// `jwt_svid` (a SPIFFE JWT-SVID from the Workload API as the client assertion; needs
    /// the `spiffe` section, and `client_id` = the pod's SPIFFE ID).
    pub method: String,
    /// The client secret, inline. Prefer `secret_file` or `secret_env`.
    #[serde(default)]
    pub secret: Option<String>,
    /// A file holding the client secret (trailing newline ignored).
    #[serde(default)]
    pub secret_file: Option<String>,
    /// An environment variable holding the client secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// `private_key_jwt`: PEM file of the private key that signs client assertions.
    #[serde(default)]
    pub private_key_file: Option<String>,
    /// `private_key_jwt`: signing algorithm, `RS256` (default), `PS256`, `ES256` or `EdDSA`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// `private_key_jwt`: `kid` placed in the assertion header. Optional.
    #[serde(default)]
    pub key_id: Option<String>,
    /// `private_key_jwt`: the assertion's `aud`. Default: the token endpoint URL.
    /// `jwt_svid`: the JWT-SVID's `aud`. Default: the token service's issuer (the token
    /// endpoint without Keycloak's `/protocol/openid-connect/token`), else the token
    /// endpoint URL.
    #[serde(default)]
    pub assertion_audience: Option<String>,
}

/// `outbound.cache`: the exchanged-token cache.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExchangeCache {
    /// Most exchanged tokens kept. Default `10000`.
    #[serde(default)]
    pub max_entries: Option<u64>,
    /// An entry is dropped this long before the exchanged token's `exp` (and in any case
    /// at 80 % of its life). Default `30s`.
    #[serde(default, with = "humantime_serde")]
    pub expiry_skew: Option<Duration>,
}

/// `outbound.routes[]`: one destination rule.
#[derive(Debug, Deserialize)]
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
    pub mode: Option<super::types::CredentialMode>,
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

impl RawConfig {
    /// Parses YAML; errors name the key that failed.
    pub fn parse(text: &str) -> Result<RawConfig, ConfigError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Parse {
                key,
                message: e.into_inner().to_string(),
            }
        })
    }
}

/// An outbound route's `action`: a closed set, so a misspelt one is refused where it is
/// read, naming the allowed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawProtocol {
    #[default]
    Http,
    Mcp,
    A2a,
}
