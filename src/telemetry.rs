//! Logging and trace set-up. Tokens and secrets are never logged: decisions carry a
//! fingerprint (the first 8 bytes of the token's SHA-256, hex) instead.
//!
//! - [`propagation`]: W3C trace context in (the request's `traceparent` as the parent of
//!   its span) and out (on calls to the token service and credential backends).
//! - [`sampling`]: whether a request is traced, decided before its spans are made.
//! - `traces`: the OTLP/gRPC exporter behind the `tracing` spans, when configured.

pub mod metrics;
mod process_metrics;
pub mod propagation;
pub mod sampling;
pub(crate) mod traces;

pub use traces::{Traces, TracesError};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use std::io::IsTerminal;

use crate::config::{Env, ProcessEnv, TelemetryConfig};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `text` when stderr is a terminal, else `json` (what `kubectl logs` and a log
    /// collector read: one object per line, no ANSI escapes).
    Auto,
    /// Human-readable lines (colours only on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `Text` or `Json`: `Auto` settled on whether stderr is a terminal.
    fn settled(self) -> LogFormat {
        match self {
            LogFormat::Auto if std::io::stderr().is_terminal() => LogFormat::Text,
            LogFormat::Auto => LogFormat::Json,
            other => other,
        }
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogSetupError {
    /// The log filter variable does not parse (a filter that silently fell back to the
    /// default would hide the very lines the operator asked for).
    #[error(
        "{var}: `{value}` is not a log filter ({reason}); write e.g. `info` or `actbridge=debug,info`"
    )]
    Filter {
        /// `ACTBRIDGE_LOG` or `RUST_LOG`.
        var: &'static str,
        /// Its value, clipped.
        value: String,
        /// The parser's words.
        reason: String,
    },
    /// The trace exporter could not be set up.
    #[error(transparent)]
    Traces(#[from] TracesError),
}

/// The log filter: `ACTBRIDGE_LOG`, else `RUST_LOG` (same syntax), else
/// `default_filter`. An empty variable is unset; one that does not parse is an error.
pub fn log_filter(env: &dyn Env, default_filter: &str) -> Result<EnvFilter, LogSetupError> {
    for var in ["ACTBRIDGE_LOG", "RUST_LOG"] {
        let Some(value) = env.get(var).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        return EnvFilter::builder()
            .parse(value.trim())
            .map_err(|e| LogSetupError::Filter {
                var,
                value: value.chars().take(200).collect(),
                reason: e.to_string(),
            });
    }
    Ok(EnvFilter::new(default_filter))
}

/// Installs the global subscriber for logs only, filtered by [`log_filter`].
pub fn init(format: LogFormat, default_filter: &str) -> Result<(), LogSetupError> {
    let filter = log_filter(&ProcessEnv, default_filter)?;
    let _ = registry(format, filter).try_init();
    Ok(())
}

/// Installs the global subscriber: logs as [`init`] does and, when `cfg` names an OTLP
/// endpoint, actbridge's spans exported to it (the log filter does not apply to them).
/// Must be called inside a Tokio runtime: the gRPC exporter's connection lives on it.
/// The returned [`Traces`] flushes the exporter at shutdown. The settings `cfg` set
/// aside (an `OTEL_*` value not understood) are logged as warnings once logging runs.
pub fn init_with_traces(
    format: LogFormat,
    default_filter: &str,
    cfg: &TelemetryConfig,
) -> Result<Traces, LogSetupError> {
    let filter = log_filter(&ProcessEnv, default_filter)?;
    let (traces, layer) = traces::start(cfg)?;
    let _ = registry(format, filter).with(layer).try_init();
    for warning in &cfg.warnings {
        tracing::warn!("{warning}");
    }
    if let Some(endpoint) = &cfg.otlp_endpoint {
        tracing::info!(%endpoint, protocol = cfg.otlp_protocol.as_str(), service = %cfg.service_name, "exporting traces over OTLP");
    }
    Ok(traces)
}

/// The registry with the log layer, filtered by `filter` (a per-layer filter, so a trace
/// layer added on top sees its own spans whatever the log level).
fn registry(
    format: LogFormat,
    filter: EnvFilter,
) -> tracing_subscriber::layer::Layered<Box<dyn Layer<Registry> + Send + Sync>, Registry> {
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format.settled() {
        LogFormat::Json => Box::new(logs.json().with_filter(filter)),
        _ => Box::new(logs.with_filter(filter)),
    };
    tracing_subscriber::registry().with(logs)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn actbridge_log_wins_then_rust_log_then_the_default() {
        let f = log_filter(
            &env(&[("ACTBRIDGE_LOG", "warn"), ("RUST_LOG", "trace")]),
            "info",
        );
        assert_eq!(f.unwrap().to_string(), "warn");
        let f = log_filter(&env(&[("RUST_LOG", "actbridge=debug")]), "info");
        assert_eq!(f.unwrap().to_string(), "actbridge=debug");
        let f = log_filter(&env(&[("ACTBRIDGE_LOG", " "), ("RUST_LOG", "")]), "info");
        assert_eq!(f.unwrap().to_string(), "info");
    }

    #[test]
    fn a_malformed_filter_is_an_error_naming_the_variable() {
        for (var, value) in [
            ("ACTBRIDGE_LOG", "actbridge=verbose"),
            ("RUST_LOG", "tokio=noisy"),
            ("ACTBRIDGE_LOG", "info,actbridge=loud"),
        ] {
            let err = log_filter(&env(&[(var, value)]), "info").unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with(var) && text.contains(value), "{text}");
        }
    }
}
