//! The tonic service: one task per ext_proc stream, pumping messages through the
//! [`StreamState`](super::stream::StreamState) and the pipeline.

use std::sync::Arc;

use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::{
    ExternalProcessor, ExternalProcessorServer,
};
use envoy_types::pb::envoy::service::ext_proc::v3::{ProcessingRequest, ProcessingResponse};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::fail_closed::{self, FailClosed};
use super::response;
use super::stream::{Step, StreamState};
use crate::pipeline::{Hold, Pipeline};

/// The gRPC initial-metadata key each ext_proc filter instance sets in the Envoy
/// config (`grpc_service.initial_metadata`) to say which direction it serves.
pub(super) const DIRECTION_METADATA: &str = "x-actbridge-direction";

/// The ext_proc service.
#[derive(Clone)]
pub(crate) struct ExtProcService {
    pipeline: Arc<Pipeline>,
}

impl ExtProcService {
    /// A service deciding with `pipeline`.
    pub(crate) fn new(pipeline: Arc<Pipeline>) -> Self {
        ExtProcService { pipeline }
    }

    /// The tonic server wrapper.
    pub(crate) fn into_server(self) -> ExternalProcessorServer<Self> {
        ExternalProcessorServer::new(self)
    }
}

#[tonic::async_trait]
impl ExternalProcessor for ExtProcService {
    type ProcessStream = FailClosed;

    async fn process(
        &self,
        request: Request<Streaming<ProcessingRequest>>,
    ) -> Result<Response<Self::ProcessStream>, Status> {
        let direction = request
            .metadata()
            .get(DIRECTION_METADATA)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut inbound = request.into_inner();
        // The stream Envoy reads ends with an error unless this task marks its end as
        // normal: a panic or a cancellation in a decision never reads as "done, go on".
        let (tx, ended_well, stream) = fail_closed::channel(4);
        let pipeline = self.pipeline.clone();
        tokio::spawn(async move {
            let mut state = StreamState::new(direction);
            loop {
                let msg = match inbound.message().await {
                    Ok(Some(m)) => m,
                    Ok(None) => return ended_well.mark(),
                    Err(status) => {
                        tracing::debug!(%status, "ext_proc stream ended with an error");
                        return ended_well.mark();
                    }
                };
                let out = match state.on_message(msg) {
                    Step::Reply(r) => Ok(*r),
                    Step::Decide(facts) => {
                        let decision = pipeline.decide_held(&facts, &ExtendTimeout(&tx)).await;
                        let out = response::decision(&decision);
                        state.decided(facts, &decision);
                        Ok(out)
                    }
                    Step::DecideBody(facts, body) => {
                        let decision = pipeline
                            .decide_body_held(&facts, body.as_deref(), &ExtendTimeout(&tx))
                            .await;
                        state.body_decided(&decision);
                        Ok(response::body_decision(&decision))
                    }
                    Step::Narrow(narrowing, content_type, body) => Ok(
                        match pipeline
                            .narrow_response(&narrowing, &content_type, &body)
                            .await
                        {
                            Ok(body) => response::replace_response_body(body),
                            Err(denial) => response::immediate(&denial),
                        },
                    ),
                    Step::Unreadable(direction, error) => Ok(response::immediate(
                        &pipeline.refuse_unreadable(direction.as_deref(), error),
                    )),
                    Step::Rejected(on_rejected) => {
                        on_rejected.fire().await;
                        Ok(response::continue_phase(response::Phase::ResponseHeaders))
                    }
                    Step::Fail(status) => {
                        tracing::warn!(%status, "ext_proc protocol error; failing the request closed");
                        let _ = tx.send(Err(status)).await;
                        return ended_well.mark();
                    }
                };
                if tx.send(out).await.is_err() {
                    // Envoy is gone: nobody is left to refuse to.
                    return ended_well.mark();
                }
            }
        });
        Ok(Response::new(stream))
    }
}

/// Holding a request (a human approval): Envoy is told to wait longer for this message
/// (`override_message_timeout`, bounded by the filter's `max_message_timeout`) instead of
/// failing the request at `message_timeout`.
struct ExtendTimeout<'a>(&'a mpsc::Sender<Result<ProcessingResponse, Status>>);

impl Hold for ExtendTimeout<'_> {
    fn hold(&self, for_: std::time::Duration) {
        let response = ProcessingResponse {
            override_message_timeout: Some(envoy_types::pb::google::protobuf::Duration {
                seconds: i64::try_from(for_.as_secs()).unwrap_or(i64::MAX),
                nanos: for_.subsec_nanos() as i32,
            }),
            ..Default::default()
        };
        if self.0.try_send(Ok(response)).is_err() {
            tracing::warn!("could not ask Envoy to wait; the request may time out there");
        }
    }
}
