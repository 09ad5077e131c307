//! Logging and trace set-up. Tokens and secrets are never logged: decisions carry a
//! fingerprint (the first 8 bytes of the token's SHA-256, hex) instead.
//!
//! - [`propagation`]: W3C trace context in (the request's `traceparent` as the parent of
//!   its span) and out (on calls to the token service and credential backends).
//! - [`sampling`]: whether a request is traced, decided before its spans are made.
//! - `traces`: the OTLP/gRPC exporter behind the `tracing` spans, when configured.

pub mod metrics;
pub mod propagation;
pub mod sampling;
pub(crate) mod traces;

pub use traces::{Traces, TracesError};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::TelemetryConfig;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber for logs only. The filter comes from `ACTBRIDGE_LOG`
/// (same syntax as `RUST_LOG`), else `default_filter`.
pub fn init(format: LogFormat, default_filter: &str) {
    let _ = registry(format, default_filter).try_init();
}

/// Installs the global subscriber: logs as [`init`] does and, when `cfg` names an OTLP
/// endpoint, actbridge's spans exported to it (the log filter does not apply to them).
/// Must be called inside a Tokio runtime: the gRPC exporter's connection lives on it.
/// The returned [`Traces`] flushes the exporter at shutdown.
pub fn init_with_traces(
    format: LogFormat,
    default_filter: &str,
    cfg: &TelemetryConfig,
) -> Result<Traces, TracesError> {
    let (traces, layer) = traces::start(cfg)?;
    let _ = registry(format, default_filter).with(layer).try_init();
    if let Some(endpoint) = &cfg.otlp_endpoint {
        tracing::info!(%endpoint, service = %cfg.service_name, "exporting traces over OTLP/gRPC");
    }
    Ok(traces)
}

/// The registry with the log layer, filtered by `ACTBRIDGE_LOG` (a per-layer filter, so a
/// trace layer added on top sees its own spans whatever the log level).
fn registry(
    format: LogFormat,
    default_filter: &str,
) -> tracing_subscriber::layer::Layered<Box<dyn Layer<Registry> + Send + Sync>, Registry> {
    let filter =
        EnvFilter::try_from_env("ACTBRIDGE_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => Box::new(logs.with_filter(filter)),
        LogFormat::Json => Box::new(logs.json().with_filter(filter)),
    };
    tracing_subscriber::registry().with(logs)
}
