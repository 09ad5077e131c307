//! An OTLP trace receiver on free loopback ports, over gRPC (the collector's
//! `TraceService`, from `opentelemetry-proto`'s generated server) and over HTTP with
//! protobuf bodies (`POST /v1/traces`, `application/x-protobuf`, as the collector's
//! `otlphttp` receiver takes them): it keeps every span exported to it, flattened for
//! assertions — or, for benchmarks, only counts them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use tokio_util::sync::CancellationToken;

/// One received span.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// `service.name` of the resource that sent it.
    pub service: String,
    pub name: String,
    /// Lower-case hex.
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// OTLP `SpanKind` (2 = server, 3 = client).
    pub kind: i32,
    /// Attribute values as text (numbers and booleans printed).
    pub attributes: BTreeMap<String, String>,
}

impl ReceivedSpan {
    /// The attribute `key` as text.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Default)]
struct Receiver {
    spans: Mutex<Vec<ReceivedSpan>>,
    /// Spans received, kept or not.
    received: AtomicU64,
    /// Only count (a benchmark exports millions of spans).
    count_only: bool,
    /// Exports received over OTLP/HTTP.
    http_exports: AtomicU64,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.keep(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// `POST /v1/traces` over OTLP/HTTP: a protobuf `ExportTraceServiceRequest` in, a
/// protobuf `ExportTraceServiceResponse` out; anything else 415/400, as the collector.
async fn http_export(
    axum::extract::State(receiver): axum::extract::State<Arc<Receiver>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use prost::Message;
    let protobuf = headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/x-protobuf");
    if !protobuf {
        return axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    receiver.keep(request);
    receiver.http_exports.fetch_add(1, Ordering::Relaxed);
    (
        [("content-type", "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

impl Receiver {
    fn keep(&self, request: ExportTraceServiceRequest) {
        if self.count_only {
            let n = request
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len() as u64)
                .sum::<u64>();
            self.received.fetch_add(n, Ordering::Relaxed);
            return;
        }
        let mut out = Vec::new();
        for rs in request.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(text)
                .unwrap_or_default();
            for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                out.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    kind: span.kind,
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| {
                            (
                                kv.key.clone(),
                                kv.value.as_ref().map(text).unwrap_or_default(),
                            )
                        })
                        .collect(),
                });
            }
        }
        self.received.fetch_add(out.len() as u64, Ordering::Relaxed);
        self.spans.lock().unwrap().extend(out);
    }
}

fn text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// The running receiver; stopped on drop.
pub struct OtlpReceiver {
    pub port: u16,
    /// The OTLP/HTTP port.
    pub http_port: u16,
    receiver: Arc<Receiver>,
    stop: CancellationToken,
}

impl OtlpReceiver {
    pub async fn start() -> OtlpReceiver {
        Self::start_with(Receiver::default()).await
    }

    /// A receiver that only counts the spans ([`OtlpReceiver::received`]); `spans()`
    /// stays empty.
    pub async fn start_counting() -> OtlpReceiver {
        Self::start_with(Receiver {
            count_only: true,
            ..Receiver::default()
        })
        .await
    }

    async fn start_with(receiver: Receiver) -> OtlpReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let receiver = Arc::new(receiver);
        let stop = CancellationToken::new();
        let service = TraceServiceServer::from_arc(receiver.clone());
        let s = stop.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    s.cancelled_owned(),
                )
                .await
                .unwrap();
        });
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_port = http.local_addr().unwrap().port();
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(http_export))
            .with_state(receiver.clone());
        let s = stop.clone();
        tokio::spawn(async move {
            axum::serve(http, app)
                .with_graceful_shutdown(s.cancelled_owned())
                .await
                .unwrap();
        });
        OtlpReceiver {
            port,
            http_port,
            receiver,
            stop,
        }
    }

    /// `http://127.0.0.1:HTTP_PORT`, the OTLP/HTTP base (`/v1/traces` is the path).
    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// How many exports arrived over OTLP/HTTP.
    pub fn http_exports(&self) -> u64 {
        self.receiver.http_exports.load(Ordering::Relaxed)
    }

    /// `http://127.0.0.1:PORT`, for `telemetry.otlp_endpoint` or `OTEL_*`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many spans were received so far.
    pub fn received(&self) -> u64 {
        self.receiver.received.load(Ordering::Relaxed)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.receiver.spans.lock().unwrap().clone()
    }

    /// The spans of trace `trace_id` once `done` holds for them, or whatever arrived
    /// when `timeout` passed.
    pub async fn trace_when(
        &self,
        trace_id: &str,
        timeout: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans: Vec<ReceivedSpan> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace_id)
                .collect();
            if done(&spans) || Instant::now() >= deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
