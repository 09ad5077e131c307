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

use serde::Deserialize;

use super::ConfigError;
use super::inbound::RawInbound;
use super::issuers::RawIssuer;
use super::listen::RawListen;
use super::outbound::RawOutbound;
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
    /// Stores shared by several replicas (see [`super::state::RawState`]); without it,
    /// each process keeps its own.
    #[serde(default)]
    pub state: Option<super::state::RawState>,
    /// Per-identity rate limits (see [`super::rate_limits::RawRateLimits`]).
    #[serde(default)]
    pub rate_limits: Option<super::rate_limits::RawRateLimits>,
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
