//! The validated configuration types: what the rest of actbridge reads.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use url::Url;

use super::inbound::InboundConfig;
use super::issuers::IssuerConfig;
use super::listen::ListenAddr;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the ext_proc server listens.
    pub ext_proc_listen: ListenAddr,
    /// Where the SDS server (the pod's SVID and bundle, for Envoy) listens; `None`: SDS
    /// is not served.
    pub sds_listen: Option<ListenAddr>,
    /// Where the admin listener listens, if enabled.
    pub admin_listen: Option<SocketAddr>,
    /// Envoy's ext_proc `message_timeout`: every in-request timeout ends before it.
    pub envoy_message_timeout: std::time::Duration,
    /// Trusted issuers.
    pub issuers: Vec<IssuerConfig>,
    /// Largest bearer token accepted, in bytes.
    pub max_token_bytes: usize,
    /// Capacity of the verified-token cache (0 = off).
    pub verified_cache_entries: u64,
    /// Longest `act` chain accepted.
    pub max_actor_chain: usize,
    /// Capacity of the single-use token memory.
    pub replay_cache_entries: usize,
    /// Inbound settings.
    pub inbound: InboundConfig,
    /// Outbound settings; `None` refuses every outbound request.
    pub outbound: Option<OutboundConfig>,
    /// The Rego policy; `None` = no policy decisions.
    pub policy: Option<super::PolicyConfig>,
    /// Credential backends, by name.
    pub credentials: Vec<super::CredentialConfig>,
    /// The audit log; `None` = decisions are logged but not audited.
    pub audit: Option<super::AuditConfig>,
    /// The authenticated admin API; `None` = its routes answer 404.
    pub admin_api: Option<super::AdminApiConfig>,
    /// The deny list's file; `None` = kept in memory only.
    pub revocation: Option<super::RevocationConfig>,
    /// Human approvals; `None` = requests needing one are refused.
    pub approvals: Option<super::ApprovalsConfig>,
    /// The SPIFFE workload identity; `None` = no SVIDs, no SDS.
    pub spiffe: Option<super::SpiffeConfig>,
    /// Trace export (the `telemetry` section and `OTEL_*`).
    pub telemetry: super::TelemetryConfig,
}

/// Outbound settings.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Token endpoint.
    pub token_endpoint: Url,
    /// actbridge's own client.
    pub client: ClientConfig,
    /// Whether to send an actor token.
    pub send_actor_token: bool,
    /// Audiences the subject token must carry.
    pub subject_audiences: Vec<String>,
    /// Timeout of one token-service request.
    pub token_timeout: Duration,
    /// `Retry-After` on 503.
    pub retry_after: Duration,
    /// Exchanged-token cache capacity.
    pub cache_max_entries: u64,
    /// Exchanged-token cache skew before `exp`.
    pub cache_expiry_skew: Duration,
    /// Action for hosts no route matches (never `Exchange`).
    pub default_action: RouteAction,
    /// Routes in order.
    pub routes: Vec<RouteConfig>,
    /// With `outbound.tls`: the token service's SPIFFE ID; the token endpoint is then
    /// called over mTLS with the pod's SVID.
    pub token_endpoint_spiffe_id: Option<String>,
}

/// actbridge's OAuth client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Client id.
    pub client_id: String,
    /// Authentication method and material.
    pub auth: ClientAuthConfig,
}

/// Client authentication at the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientAuthConfig {
    /// RFC 6749 §2.3.1, credentials in the form body.
    SecretPost(Secret),
    /// RFC 6749 §2.3.1, HTTP Basic.
    SecretBasic(Secret),
    /// RFC 7523 client assertion signed with a private key.
    PrivateKeyJwt {
        /// The parsed private key.
        key: SigningKey,
        /// Signing algorithm.
        algorithm: Algorithm,
        /// `kid` header, if any.
        key_id: Option<String>,
        /// Assertion `aud`.
        audience: String,
    },
    /// RFC 7523 client assertion that is a SPIFFE JWT-SVID from the Workload API.
    JwtSvid {
        /// The JWT-SVID's `aud`: the token service's issuer.
        audience: String,
        /// The Workload API (the `spiffe` section's endpoint).
        workload_api: String,
    },
}

/// A secret string; `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A private signing key; `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct SigningKey(pub std::sync::Arc<jsonwebtoken::EncodingKey>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Parses a PEM private key for `algorithm`.
pub(crate) fn signing_key_from_pem(
    pem: &[u8],
    algorithm: Algorithm,
) -> Result<jsonwebtoken::EncodingKey, String> {
    use jsonwebtoken::{AlgorithmFamily, EncodingKey};
    let key = match algorithm.family() {
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(pem),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem),
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(pem),
        AlgorithmFamily::Hmac => return Err("HMAC keys are not accepted".into()),
    };
    key.map_err(|e| format!("not a PEM private key for {algorithm:?}: {e}"))
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
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
