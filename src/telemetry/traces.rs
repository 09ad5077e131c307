//! The OTLP trace exporter behind actbridge's `tracing` spans: a `tracing-opentelemetry`
//! layer over the OpenTelemetry SDK, a batch span processor (its own thread; the request
//! path only queues finished spans) and the exporter — tonic for `grpc`, reqwest for
//! `http/protobuf` — flushed and stopped at shutdown. Without an endpoint nothing of
//! this exists.
//!
//! The layer takes only spans whose target is actbridge's own (`actbridge::…`); log
//! events never become span events, so what a log line says (a path with its query, a
//! refusal's detail) stays out of the traces.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;

use crate::config::{OtlpProtocol, TelemetryConfig};

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
    let exporter = match cfg.otlp_protocol {
        OtlpProtocol::Grpc => {
            // tonic ignores a path on a gRPC endpoint; "/" is what `Url` adds to a bare
            // origin.
            let mut exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.as_str().trim_end_matches('/'));
            if endpoint.scheme() == "https" {
                exporter = exporter
                    .with_tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots());
            }
            exporter.build()?
        }
        // The full URL, `/v1/traces` included (the config settled it).
        OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(endpoint.as_str())
            .with_http_client(OnRuntime {
                client: crate::http_client::build(EXPORT_TIMEOUT),
                runtime: tokio::runtime::Handle::current(),
            })
            .build()?,
    };
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

/// Longest wait for one export over http/protobuf (OTLP's default,
/// `OTEL_EXPORTER_OTLP_TIMEOUT`).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest collector answer read (an OTLP partial-success message is a few bytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The http/protobuf exporter's client: reqwest's async client, its calls run on the
/// sidecar's Tokio runtime. The batch processor polls exports from its own thread, which
/// has no reactor for reqwest to connect with; a task spawned on the runtime does, and
/// its `JoinHandle` can be awaited from any thread. (reqwest's blocking client would
/// start a runtime of its own for one exporter.)
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let call = async move {
            let request = reqwest::Request::try_from(request)?;
            let answer = client
                .execute(request)
                .await
                .map_err(|e| crate::http_client::describe(&e))?;
            let mut response = http::Response::builder().status(answer.status());
            if let Some(headers) = response.headers_mut() {
                headers.extend(answer.headers().clone());
            }
            let body = crate::http_client::read_limited(answer, MAX_ANSWER_BYTES).await?;
            Ok::<_, opentelemetry_http::HttpError>(response.body(bytes::Bytes::from(body))?)
        };
        self.runtime.spawn(call).await?
    }
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
