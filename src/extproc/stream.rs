//! The per-stream state machine. Pure: one message in, one step out; the tonic handler
//! only pumps messages and runs the async decision.

use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request;
use envoy_types::pb::envoy::service::ext_proc::v3::{ProcessingRequest, ProcessingResponse};

use super::headers;
use super::response::{self, Phase};
use crate::pipeline::{Refusal, RequestFacts};

/// Where a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing decided yet: only request headers are acceptable.
    AwaitingRequestHeaders,
    /// The request was let through: later phases get CONTINUE.
    Decided,
}

/// What the handler must do with a message.
#[derive(Debug)]
pub(super) enum Step {
    /// Send this response.
    Reply(Box<ProcessingResponse>),
    /// Ask the pipeline about this request, then send [`response::decision`].
    Decide(Box<RequestFacts>),
    /// End the stream with this gRPC error (Envoy then fails the request closed).
    Fail(tonic::Status),
}

/// One ext_proc stream.
pub(super) struct StreamState {
    direction: Option<String>,
    state: State,
}

impl StreamState {
    /// A new stream; `direction` is the filter's initial-metadata value, if any.
    pub fn new(direction: Option<String>) -> Self {
        StreamState {
            direction,
            state: State::AwaitingRequestHeaders,
        }
    }

    /// Advances the state machine by one message.
    pub fn on_message(&mut self, msg: ProcessingRequest) -> Step {
        let Some(request) = msg.request else {
            return Step::Fail(tonic::Status::invalid_argument(
                "ProcessingRequest carries no phase",
            ));
        };
        let phase = match request {
            Request::RequestHeaders(h) => {
                if self.state != State::AwaitingRequestHeaders {
                    return Step::Fail(tonic::Status::failed_precondition(
                        "request headers sent twice",
                    ));
                }
                self.state = State::Decided;
                let facts = RequestFacts::new(self.direction.as_deref(), headers::read(h.headers));
                return match facts {
                    Ok(f) => Step::Decide(Box::new(f)),
                    Err(e) => Step::Reply(Box::new(response::immediate(
                        &Refusal::from(e).denial(None),
                    ))),
                };
            }
            Request::ResponseHeaders(_) => Phase::ResponseHeaders,
            Request::RequestBody(_) => Phase::RequestBody,
            Request::ResponseBody(_) => Phase::ResponseBody,
            Request::RequestTrailers(_) => Phase::RequestTrailers,
            Request::ResponseTrailers(_) => Phase::ResponseTrailers,
        };
        // Any other phase before the request headers were decided would let a request
        // reach its destination undecided: fail closed instead.
        if self.state == State::AwaitingRequestHeaders {
            return Step::Fail(tonic::Status::failed_precondition(
                "a phase arrived before the request headers; request_header_mode must be SEND",
            ));
        }
        Step::Reply(Box::new(response::continue_phase(phase)))
    }
}
