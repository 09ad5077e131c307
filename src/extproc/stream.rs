//! The per-stream state machine. Pure: one message in, one step out; the tonic handler
//! only pumps messages and runs the async decisions.

use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request;
use envoy_types::pb::envoy::service::ext_proc::v3::{ProcessingRequest, ProcessingResponse};

use super::headers;
use super::response::{self, Phase};
use std::sync::Arc;

use crate::credentials::OnRejected;
use crate::pipeline::{Decision, RequestError, RequestFacts, ToolsNarrowing};

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
    /// The request went on; its response is narrowed if successful (its headers say).
    AwaitingResponseHeaders { narrowing: Arc<ToolsNarrowing> },
    /// The request went on with a backend's credential; a 401 answer fires this.
    AwaitingVerdict { on_rejected: OnRejected },
    /// The response body is read, to be narrowed.
    AwaitingResponseBody {
        narrowing: Arc<ToolsNarrowing>,
        content_type: String,
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
    /// Narrow this response body (served with this content type), then send
    /// [`response::replace_response_body`] or the refusal.
    Narrow(Arc<ToolsNarrowing>, String, Vec<u8>),
    /// The upstream answered 401 to a backend's credential: fire this, then send
    /// CONTINUE for the response headers.
    Rejected(OnRejected),
    /// The request headers cannot be read (direction as the filter said): refuse with
    /// [`Pipeline::refuse_unreadable`](crate::pipeline::Pipeline::refuse_unreadable).
    Unreadable(Option<String>, RequestError),
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
    pub(super) fn new(direction: Option<String>) -> Self {
        StreamState {
            direction,
            state: State::AwaitingRequestHeaders,
        }
    }

    /// Records the headers-phase decision: a [`Decision::ReadBody`] makes the stream wait
    /// for the body of `facts`.
    pub(super) fn decided(&mut self, facts: Box<RequestFacts>, decision: &Decision) {
        match decision {
            Decision::ReadBody { max_bytes, .. } => {
                self.state = State::AwaitingBody {
                    facts,
                    max_bytes: *max_bytes,
                };
            }
            Decision::Watch { on_rejected, .. } => {
                self.state = State::AwaitingVerdict {
                    on_rejected: on_rejected.clone(),
                };
            }
            _ => {}
        }
    }

    /// Records the body-phase decision: a [`Decision::Narrow`] makes the stream watch
    /// the response.
    pub(super) fn body_decided(&mut self, decision: &Decision) {
        if let Decision::Narrow { narrowing, .. } = decision {
            self.state = State::AwaitingResponseHeaders {
                narrowing: narrowing.clone(),
            };
        }
    }

    /// Advances the state machine by one message. Long by design: one arm per ext_proc
    /// phase and state, so every (phase, state) pair is answered in one place.
    pub(super) fn on_message(&mut self, msg: ProcessingRequest) -> Step {
        let Some(request) = msg.request else {
            return Step::Fail(tonic::Status::invalid_argument(
                "ProcessingRequest carries no phase",
            ));
        };
        let attributes = msg.attributes;
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
                        (f.proxy_route, f.proxy_cluster) = headers::route_attributes(&attributes);
                        Step::Decide(Box::new(f))
                    }
                    Err(e) => Step::Unreadable(self.direction.clone(), e),
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
            Request::ResponseHeaders(h) => {
                if let State::AwaitingVerdict { on_rejected } = &self.state {
                    let on_rejected = on_rejected.clone();
                    self.state = State::Decided;
                    let status = headers::read(h.headers)
                        .into_iter()
                        .find(|(k, _)| k == ":status")
                        .map(|(_, v)| v);
                    if status.as_deref() == Some(b"401".as_slice()) {
                        return Step::Rejected(on_rejected);
                    }
                    return Step::Reply(Box::new(response::continue_phase(Phase::ResponseHeaders)));
                }
                if let State::AwaitingResponseHeaders { narrowing } = &self.state {
                    let narrowing = narrowing.clone();
                    self.state = State::Decided;
                    let headers = headers::read(h.headers);
                    let value = |name: &str| {
                        headers
                            .iter()
                            .find(|(k, _)| k == name)
                            .and_then(|(_, v)| std::str::from_utf8(v).ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    // Only a successful answer with a body lists tools; an error passes.
                    if value(":status").starts_with('2') && !h.end_of_stream {
                        self.state = State::AwaitingResponseBody {
                            narrowing,
                            content_type: value("content-type"),
                        };
                        return Step::Reply(Box::new(response::read_response_body()));
                    }
                }
                Phase::ResponseHeaders
            }
            Request::ResponseBody(body) => {
                match std::mem::replace(&mut self.state, State::Decided) {
                    State::AwaitingResponseBody {
                        narrowing,
                        content_type,
                    } => {
                        if !body.end_of_stream {
                            return Step::Fail(tonic::Status::failed_precondition(
                                "response body arrived in parts; actbridge asks for BUFFERED",
                            ));
                        }
                        return Step::Narrow(narrowing, content_type, body.body);
                    }
                    other => {
                        self.state = other;
                        Phase::ResponseBody
                    }
                }
            }
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
