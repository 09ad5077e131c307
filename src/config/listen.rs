//! `listen`: where actbridge listens — the ext_proc and SDS gRPC listeners (a Unix socket
//! or loopback TCP, never an address the network reaches), the admin listener — and how
//! long Envoy waits for each ext_proc message.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use super::raw::RawConfig;

/// `listen`: listening addresses.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
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
    #[schemars(with = "Option<String>")]
    #[serde(default, with = "humantime_serde")]
    pub envoy_message_timeout: Option<std::time::Duration>,
}

/// A listening address for the ext_proc or SDS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// TCP.
    Tcp(SocketAddr),
    /// A Unix domain socket path (Envoy `pipe`).
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "tcp://{a}"),
            ListenAddr::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// `listen`: the gRPC listeners, the admin listener and Envoy's message timeout.
pub(super) struct Listen {
    pub ext_proc: ListenAddr,
    pub sds: Option<ListenAddr>,
    pub admin: Option<SocketAddr>,
    pub envoy_message_timeout: Duration,
}

pub(super) fn validate_listen(raw: &RawConfig) -> Result<Listen, ConfigError> {
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
