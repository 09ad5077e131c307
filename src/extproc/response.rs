//! Building ext_proc responses: CONTINUE for each phase, and immediate responses.

use envoy_types::pb::envoy::service::ext_proc::v3::common_response::ResponseStatus;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    BodyResponse, CommonResponse, GrpcStatus, HeaderMutation, HeadersResponse, ImmediateResponse,
    ProcessingResponse, TrailersResponse,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;

use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::processing_mode::{
    BodySendMode, HeaderSendMode,
};

use super::headers;
use crate::pipeline::{Decision, Denial, Reply};

/// Which phase a CONTINUE answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    ResponseHeaders,
    RequestBody,
    ResponseBody,
    RequestTrailers,
    ResponseTrailers,
}

fn common(mutation: Option<HeaderMutation>) -> Option<CommonResponse> {
    Some(CommonResponse {
        status: ResponseStatus::Continue as i32,
        header_mutation: mutation,
        ..Default::default()
    })
}

/// CONTINUE, unchanged, for `phase`.
pub(super) fn continue_phase(phase: Phase) -> ProcessingResponse {
    let response = match phase {
        Phase::ResponseHeaders => Response::ResponseHeaders(HeadersResponse {
            response: common(None),
        }),
        Phase::RequestBody => Response::RequestBody(BodyResponse {
            response: common(None),
        }),
        Phase::ResponseBody => Response::ResponseBody(BodyResponse {
            response: common(None),
        }),
        Phase::RequestTrailers => Response::RequestTrailers(TrailersResponse::default()),
        Phase::ResponseTrailers => Response::ResponseTrailers(TrailersResponse::default()),
    };
    ProcessingResponse {
        response: Some(response),
        ..Default::default()
    }
}

/// The answer to the request-headers phase.
pub(super) fn decision(d: &Decision) -> ProcessingResponse {
    match d {
        Decision::Continue(m) | Decision::Narrow { mutations: m, .. } => ProcessingResponse {
            response: Some(Response::RequestHeaders(HeadersResponse {
                response: common(headers::mutation(m)),
            })),
            ..Default::default()
        },
        Decision::Watch { mutations, .. } => ProcessingResponse {
            response: Some(Response::RequestHeaders(HeadersResponse {
                response: common(headers::mutation(mutations)),
            })),
            // The shipped filter's mode with the response headers sent (their status).
            mode_override: Some(ProcessingMode {
                request_body_mode: BodySendMode::None as i32,
                ..mode(true, false)
            }),
            ..Default::default()
        },
        Decision::ReadBody {
            mutations,
            watch_response,
            ..
        } => ProcessingResponse {
            response: Some(Response::RequestHeaders(HeadersResponse {
                response: common(headers::mutation(mutations)),
            })),
            // The whole processing mode is replaced: the same as the shipped filter's,
            // with the request body BUFFERED (the filter needs `allow_mode_override`),
            // and the response headers sent when the response is to be watched (a mode
            // change in a body response would be ignored by Envoy).
            mode_override: Some(mode(*watch_response, false)),
            ..Default::default()
        },
        Decision::Respond(reply) => reply_immediately(reply),
        Decision::Deny(denial) => immediate(denial),
    }
}

/// The answer to the request-body phase of a request decided on its body: CONTINUE
/// (with the header mutations, which Envoy still applies: the headers were held) or a
/// direct answer.
pub(super) fn body_decision(d: &Decision) -> ProcessingResponse {
    match d {
        // A mode change in a body response is ignored by Envoy: a watch decided on a
        // body is not watched (no backend that reads bodies asks for one).
        Decision::Continue(m)
        | Decision::Watch { mutations: m, .. }
        | Decision::Narrow { mutations: m, .. } => ProcessingResponse {
            response: Some(Response::RequestBody(BodyResponse {
                response: common(headers::mutation(m)),
            })),
            ..Default::default()
        },
        Decision::Respond(reply) => reply_immediately(reply),
        Decision::Deny(denial) => immediate(denial),
        // A body cannot ask for the body again: fail closed.
        Decision::ReadBody { .. } => {
            immediate(&crate::pipeline::Refusal::BodyUnexpected.denial(None))
        }
    }
}

/// The processing mode after the request headers of a request read on its body:
/// response headers sent when `response_headers`, the response body BUFFERED when
/// `response_body`.
fn mode(response_headers: bool, response_body: bool) -> ProcessingMode {
    let send = |on: bool| {
        if on {
            HeaderSendMode::Send
        } else {
            HeaderSendMode::Skip
        }
    };
    ProcessingMode {
        request_header_mode: HeaderSendMode::Send as i32,
        response_header_mode: send(response_headers) as i32,
        request_body_mode: BodySendMode::Buffered as i32,
        response_body_mode: if response_body {
            BodySendMode::Buffered
        } else {
            BodySendMode::None
        } as i32,
        request_trailer_mode: HeaderSendMode::Skip as i32,
        response_trailer_mode: HeaderSendMode::Skip as i32,
    }
}

/// The answer to response headers that are to be followed by their body: CONTINUE,
/// with the response body asked for BUFFERED.
pub(super) fn read_response_body() -> ProcessingResponse {
    ProcessingResponse {
        response: Some(Response::ResponseHeaders(HeadersResponse {
            response: common(None),
        })),
        mode_override: Some(mode(true, true)),
        ..Default::default()
    }
}

/// The answer to a response body actbridge rewrote: the new body, and its length in
/// `content-length` (the headers are still held in BUFFERED mode).
pub(super) fn replace_response_body(body: Vec<u8>) -> ProcessingResponse {
    use envoy_types::pb::envoy::service::ext_proc::v3::{BodyMutation, body_mutation};
    let length = body.len().to_string();
    ProcessingResponse {
        response: Some(Response::ResponseBody(BodyResponse {
            response: Some(CommonResponse {
                status: ResponseStatus::Continue as i32,
                header_mutation: Some(HeaderMutation {
                    set_headers: vec![headers::set_option("content-length", length.as_bytes())],
                    remove_headers: Vec::new(),
                }),
                body_mutation: Some(BodyMutation {
                    mutation: Some(body_mutation::Mutation::Body(body)),
                }),
                ..Default::default()
            }),
        })),
        ..Default::default()
    }
}

/// A direct successful answer: JSON, never cached.
fn reply_immediately(r: &Reply) -> ProcessingResponse {
    ProcessingResponse {
        response: Some(Response::ImmediateResponse(ImmediateResponse {
            status: Some(HttpStatus {
                code: i32::from(r.status),
            }),
            headers: Some(HeaderMutation {
                set_headers: vec![
                    headers::set_option("content-type", b"application/json"),
                    headers::set_option("cache-control", b"no-store"),
                ],
                remove_headers: Vec::new(),
            }),
            body: r.body.clone(),
            grpc_status: None,
            details: "actbridge_answered".into(),
        })),
        ..Default::default()
    }
}

/// An immediate response: status, JSON body, `WWW-Authenticate` on 401, `Retry-After`
/// on 503, and the gRPC status for gRPC callers.
pub(super) fn immediate(d: &Denial) -> ProcessingResponse {
    let mut set = vec![
        headers::set_option("content-type", b"application/json"),
        headers::set_option("cache-control", b"no-store"),
    ];
    if let Some(w) = &d.www_authenticate {
        set.push(headers::set_option("www-authenticate", w.as_bytes()));
    }
    if let Some(s) = d.retry_after {
        set.push(headers::set_option("retry-after", s.to_string().as_bytes()));
    }
    ProcessingResponse {
        response: Some(Response::ImmediateResponse(ImmediateResponse {
            status: Some(HttpStatus {
                code: i32::from(d.status),
            }),
            headers: Some(HeaderMutation {
                set_headers: set,
                remove_headers: Vec::new(),
            }),
            body: d.body(),
            grpc_status: Some(GrpcStatus {
                status: grpc_code(d.status),
            }),
            details: format!("actbridge_{}", d.reason),
        })),
        ..Default::default()
    }
}

/// HTTP status → gRPC status code (the table of grpc/doc/http-grpc-status-mapping.md,
/// reversed for the statuses actbridge sends).
fn grpc_code(http: u16) -> u32 {
    match http {
        400 => 3,        // INVALID_ARGUMENT
        401 => 16,       // UNAUTHENTICATED
        403 => 7,        // PERMISSION_DENIED
        413 => 8,        // RESOURCE_EXHAUSTED
        429 => 8,        // RESOURCE_EXHAUSTED
        502..=504 => 14, // UNAVAILABLE
        _ => 13,         // INTERNAL
    }
}
