//! The OTLP/gRPC trace exporter behind actbridge's `tracing` spans: a
//! `tracing-opentelemetry` layer over the OpenTelemetry SDK, a batch span processor (its
//! own thread; the request path only queues finished spans) and the tonic exporter,
//! flushed and stopped at shutdown. Without an endpoint nothing of this exists.
//!
//! The layer takes only spans whose target is actbridge's own (`actbridge::…`); log
//! events never become span events, so what a log line says (a path with its query, a
//! refusal's detail) stays out of the traces.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;

use crate::config::TelemetryConfig;

/// Longest wait for the last export at shutdown.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// Why traces could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TracesError {
    /// The exporter refused its settings (the message names the `OTEL_*` variable or
    /// setting at fault).
    #[error("cannot set up the OTLP trace exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The running exporter, if any: flush it with [`Traces::shutdown`].
#[must_use = "call shutdown() so the last spans are exported"]
pub struct Traces {
    provider: Option<SdkTracerProvider>,
}

impl Traces {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still queued and stops the exporter, waiting at most 5 s. Runs
    /// the blocking SDK call off the async workers (the exporter's connection needs them).
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let done =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_DEADLINE))
                .await;
        match done {
            Ok(Ok(())) => tracing::debug!("trace exporter flushed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "trace exporter did not flush cleanly"),
            Err(e) => tracing::warn!(error = %e, "trace exporter shutdown failed"),
        }
    }
}

/// The exporter and its `tracing` layer, when `cfg` names an endpoint. Must run inside a
/// Tokio runtime.
#[allow(clippy::type_complexity)]
pub(super) fn start<S>(
    cfg: &TelemetryConfig,
) -> Result<(Traces, Option<Box<dyn Layer<S> + Send + Sync>>), TracesError>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let Some(endpoint) = &cfg.otlp_endpoint else {
        return Ok((Traces { provider: None }, None));
    };
    // tonic ignores a path on a gRPC endpoint; "/" is what `Url` adds to a bare origin.
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.as_str().trim_end_matches('/'));
    if endpoint.scheme() == "https" {
        exporter =
            exporter.with_tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots());
    }
    let exporter = exporter.build()?;
    let provider = SdkTracerProvider::builder()
        // Queue size, batch size and delay: OTEL_BSP_* (read by the SDK).
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        // Sampling is decided before a request's spans are made (`sampling.rs`): the
        // spans that reach the SDK are the sampled requests' and are all kept.
        .with_sampler(Sampler::AlwaysOn)
        // OTEL_RESOURCE_ATTRIBUTES is read by the builder; the service name is settled.
        .with_resource(
            Resource::builder()
                .with_service_name(cfg.service_name.clone())
                .build(),
        )
        .build();
    let layer = layer(provider.tracer("actbridge"));
    Ok((
        Traces {
            provider: Some(provider),
        },
        Some(Box::new(layer)),
    ))
}

/// The `tracing` layer that turns actbridge's spans (and nothing else: no log events, no
/// other crate's spans) into OpenTelemetry spans of `tracer`.
pub(crate) fn layer<S>(tracer: SdkTracer) -> impl Layer<S> + Send + Sync
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        // Outgoing calls read the span's context explicitly (`propagation::outgoing`):
        // attaching it as the current OpenTelemetry context on every poll is not needed.
        .with_context_activation(false)
        .with_filter(filter_fn(|meta| {
            meta.is_span() && meta.target().starts_with("actbridge")
        }))
}
