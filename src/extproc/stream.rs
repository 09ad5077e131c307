//! The per-stream state machine. Pure: one message in, one step out; the tonic handler
//! only pumps messages and runs the async decisions.

use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request;
use envoy_types::pb::envoy::service::ext_proc::v3::{ProcessingRequest, ProcessingResponse};

use super::headers;
use super::response::{self, Phase};
use crate::pipeline::{Decision, Refusal, RequestFacts};

/// Where a stream is.
#[derive(Debug)]
enum State {
    /// Nothing decided yet: only request headers are acceptable.
    AwaitingRequestHeaders,
    /// The decision waits for the request body (at most `max_bytes`).
    AwaitingBody {
        facts: Box<RequestFacts>,
        max_bytes: usize,
    },
    /// The request was let through or answered: later phases get CONTINUE.
    Decided,
}

/// What the handler must do with a message.
#[derive(Debug)]
pub(super) enum Step {
    /// Send this response.
    Reply(Box<ProcessingResponse>),
    /// Ask the pipeline about this request, tell [`StreamState::decided`], then send
    /// [`response::decision`].
    Decide(Box<RequestFacts>),
    /// Ask the pipeline about this request and its body (`None`: over the limit), then
    /// send [`response::body_decision`].
    DecideBody(Box<RequestFacts>, Option<Vec<u8>>),
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

    /// Records the headers-phase decision: a [`Decision::ReadBody`] makes the stream wait
    /// for the body of `facts`.
    pub fn decided(&mut self, facts: Box<RequestFacts>, decision: &Decision) {
        if let Decision::ReadBody { max_bytes, .. } = decision {
            self.state = State::AwaitingBody {
                facts,
                max_bytes: *max_bytes,
            };
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
                if !matches!(self.state, State::AwaitingRequestHeaders) {
                    return Step::Fail(tonic::Status::failed_precondition(
                        "request headers sent twice",
                    ));
                }
                self.state = State::Decided;
                let facts = RequestFacts::new(self.direction.as_deref(), headers::read(h.headers));
                return match facts {
                    Ok(mut f) => {
                        f.end_of_stream = h.end_of_stream;
                        Step::Decide(Box::new(f))
                    }
                    Err(e) => Step::Reply(Box::new(response::immediate(
                        &Refusal::from(e).denial(None),
                    ))),
                };
            }
            Request::RequestBody(body) => {
                match std::mem::replace(&mut self.state, State::Decided) {
                    State::AwaitingBody { facts, max_bytes } => {
                        // The body was asked for BUFFERED: it arrives whole, in one
                        // message. Anything else is not a body actbridge asked for.
                        if !body.end_of_stream {
                            return Step::Fail(tonic::Status::failed_precondition(
                                "request body arrived in parts; actbridge asks for BUFFERED",
                            ));
                        }
                        let within = (body.body.len() <= max_bytes).then_some(body.body);
                        return Step::DecideBody(facts, within);
                    }
                    other => {
                        self.state = other;
                        Phase::RequestBody
                    }
                }
            }
            Request::ResponseHeaders(_) => Phase::ResponseHeaders,
            Request::ResponseBody(_) => Phase::ResponseBody,
            Request::RequestTrailers(_) => Phase::RequestTrailers,
            Request::ResponseTrailers(_) => Phase::ResponseTrailers,
        };
        // Any other phase before the request was decided would let a request reach its
        // destination undecided: fail closed instead.
        if !matches!(self.state, State::Decided) {
            return Step::Fail(tonic::Status::failed_precondition(
                "a phase arrived before the request was decided; request_header_mode must be SEND",
            ));
        }
        Step::Reply(Box::new(response::continue_phase(phase)))
    }
}
