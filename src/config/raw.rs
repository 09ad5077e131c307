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

/// `listen`: listening addresses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListen {
    /// The ext_proc gRPC server: `unix:///ABSOLUTE/PATH` (Envoy's `pipe` address; the
    /// shipped manifests use `/run/actbridge/extproc.sock`, in a directory only the
    /// Envoy and actbridge containers mount) or `tcp://LOOPBACK:PORT` (the weaker
    /// choice: every process of the pod can connect). A non-loopback TCP address is
    /// refused. The socket is created `0660`. Required.
    pub ext_proc: String,
    /// The SDS server that hands Envoy the pod's X.509-SVID and its private key: its own
    /// socket, never the ext_proc one; the same forms as `ext_proc`
    /// (`unix:///run/actbridge/sds.sock` in the shipped manifests). Needs `spiffe`;
    /// without it SDS is not served (and Envoy's mTLS stays closed).
    #[serde(default)]
    pub sds: Option<String>,
    /// The admin HTTP listener (`/healthz`, `/readyz`) as `HOST:PORT`. Optional; keep it
    /// on loopback.
    #[serde(default)]
    pub admin: Option<String>,
    /// The ext_proc `message_timeout` of the Envoy filters that call this actbridge
    /// (`3s` in the shipped envoy/sidecar.yaml). Every peer actbridge calls while a
    /// request waits (JWKS, introspection, the token endpoint, a remote policy,
    /// credential backends) must time out at least 500 ms before it, so that a hung peer
    /// gets actbridge's 503 with `Retry-After` rather than Envoy's own error: the
    /// config is refused otherwise, naming the key. Default `3s`.
    #[serde(default, with = "humantime_serde")]
    pub envoy_message_timeout: Option<std::time::Duration>,
}

/// `issuers[]`: one trusted issuer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    /// The exact `iss` value of its tokens, e.g. `https://keycloak.example.com/realms/demo`.
    pub issuer: String,
    /// Where its signing keys are published. When absent, OIDC discovery is used:
    /// `jwks_uri` is read from `{issuer}/.well-known/openid-configuration`.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Audiences accepted on inbound requests: a token must name at least one of them in
    /// `aud`. Required and non-empty for inbound use.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Signature algorithms accepted. Default `[RS256, PS256, ES256, EdDSA]`. HMAC
    /// (`HS*`) and `none` are never accepted.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`. Default `30s`.
    #[serde(default, with = "humantime_serde")]
    pub leeway: Option<Duration>,
    /// How often the JWKS is refreshed in the background. Default `5m`.
    #[serde(default, with = "humantime_serde")]
    pub jwks_refresh_interval: Option<Duration>,
    /// A token with an unknown `kid` triggers a JWKS re-fetch at most once per this
    /// interval (per issuer). Default `30s`.
    #[serde(default, with = "humantime_serde")]
    pub jwks_min_refetch_interval: Option<Duration>,
    /// Timeout of one JWKS or discovery request; also bounds a whole re-fetch for an
    /// unknown `kid` made while a request waits (so it must end before Envoy's
    /// `listen.envoy_message_timeout`). Default `2s`.
    #[serde(default, with = "humantime_serde")]
    pub jwks_timeout: Option<Duration>,
    /// How long keys stay trusted after the last successful JWKS fetch while the issuer
    /// cannot be reached. Past it the issuer's tokens are refused (503) and actbridge is
    /// not ready until a fetch succeeds. Must exceed `jwks_refresh_interval`. Default
    /// `24h`.
    #[serde(default, with = "humantime_serde")]
    pub jwks_max_age: Option<Duration>,
    /// Live checks of this issuer's tokens at its RFC 7662 introspection endpoint, for
    /// the requests that ask for one (`inbound.introspect_paths`, routes with
    /// `introspect: true`; see [`super::introspection::RawIntrospection`]). Optional.
    #[serde(default)]
    pub introspection: Option<super::introspection::RawIntrospection>,
    /// The token types accepted from this issuer as bearer access tokens: the JOSE
    /// header's `typ` and Keycloak's payload `typ` claim (see
    /// [`super::token_types::RawTokenTypes`]). Default: header `[JWT, at+jwt]`, claim
    /// `[Bearer]`; ID, refresh and logout tokens are refused.
    #[serde(default)]
    pub token_types: Option<super::token_types::RawTokenTypes>,
}

/// `tokens`: limits on presented tokens.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokens {
    /// Largest bearer token accepted, in bytes. Default `8192`.
    #[serde(default)]
    pub max_bytes: Option<usize>,
    /// How many verified tokens are remembered (keyed by a SHA-256 of the token, never
    /// past `exp`), so a repeated token costs a lookup, not a signature check.
    /// Default `10000`; `0` disables the cache.
    #[serde(default)]
    pub verified_cache_entries: Option<u64>,
    /// Longest `act` chain accepted in a token. Default `10`.
    #[serde(default)]
    pub max_actor_chain: Option<usize>,
    /// How many single-use tokens (`inbound.single_use_paths`, routes with `single_use`)
    /// are remembered by `(iss, jti)` until `exp` + 5 min. When full of live entries, new
    /// single-use tokens are refused (503) rather than an old one forgotten. Default
    /// `100000`.
    #[serde(default)]
    pub replay_cache_entries: Option<usize>,
}

/// `inbound`: requests entering the pod.
#[derive(Debug, Default, Deserialize)]
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
#[derive(Debug, Default, Deserialize)]
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPathMatch {
    /// The path must equal this.
    #[serde(default)]
    pub exact: Option<String>,
    /// The path must start with this.
    #[serde(default)]
    pub prefix: Option<String>,
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
