//! The stream state machine, message by message (a fake Envoy, one helper per phase).

use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    HttpBody, HttpHeaders, HttpTrailers, ProcessingRequest,
};

use super::response;
use super::stream::{Step, StreamState};
use crate::pipeline::{Decision, Denial, Mutations, Refusal};

fn headers(pairs: &[(&str, &[u8])], raw: bool) -> ProcessingRequest {
    let headers = pairs
        .iter()
        .map(|(k, v)| HeaderValue {
            key: k.to_string(),
            value: if raw {
                String::new()
            } else {
                String::from_utf8_lossy(v).into_owned()
            },
            raw_value: if raw { v.to_vec() } else { Vec::new() },
        })
        .collect();
    ProcessingRequest {
        request: Some(Request::RequestHeaders(HttpHeaders {
            headers: Some(HeaderMap { headers }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn get(raw: bool) -> ProcessingRequest {
    headers(
        &[
            (":authority", b"Docs:8080"),
            (":method", b"GET"),
            (":path", b"/x?y"),
            ("authorization", b"Bearer t"),
        ],
        raw,
    )
}

fn body() -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Request::RequestBody(HttpBody::default())),
        ..Default::default()
    }
}

#[test]
fn request_headers_are_decided_from_raw_value_or_value() {
    for raw in [true, false] {
        let mut s = StreamState::new(Some("outbound".into()));
        let Step::Decide(facts) = s.on_message(get(raw)) else {
            panic!("expected a decision")
        };
        assert_eq!(facts.authority, "docs:8080");
        assert_eq!(facts.path_only(), "/x");
        assert_eq!(
            facts.header_values("authorization").collect::<Vec<_>>(),
            vec![b"Bearer t".as_slice()]
        );
    }
}

#[test]
fn later_phases_get_the_matching_continue() {
    let mut s = StreamState::new(Some("inbound".into()));
    assert!(matches!(s.on_message(get(true)), Step::Decide(_)));
    let Step::Reply(r) = s.on_message(body()) else {
        panic!()
    };
    assert!(matches!(r.response, Some(Response::RequestBody(_))));
    let trailers = ProcessingRequest {
        request: Some(Request::ResponseTrailers(HttpTrailers::default())),
        ..Default::default()
    };
    let Step::Reply(r) = s.on_message(trailers) else {
        panic!()
    };
    assert!(matches!(r.response, Some(Response::ResponseTrailers(_))));
    let resp_headers = ProcessingRequest {
        request: Some(Request::ResponseHeaders(HttpHeaders::default())),
        ..Default::default()
    };
    let Step::Reply(r) = s.on_message(resp_headers) else {
        panic!()
    };
    assert!(matches!(r.response, Some(Response::ResponseHeaders(_))));
}

#[test]
fn protocol_violations_fail_the_stream_closed() {
    let mut s = StreamState::new(Some("inbound".into()));
    assert!(
        matches!(s.on_message(body()), Step::Fail(_)),
        "a body before the headers"
    );
    let mut s = StreamState::new(Some("inbound".into()));
    assert!(
        matches!(s.on_message(ProcessingRequest::default()), Step::Fail(_)),
        "an empty message"
    );
    let mut s = StreamState::new(Some("inbound".into()));
    assert!(matches!(s.on_message(get(true)), Step::Decide(_)));
    assert!(
        matches!(s.on_message(get(true)), Step::Fail(_)),
        "headers twice"
    );
}

fn immediate_status(step: Step) -> u32 {
    let r = match step {
        Step::Reply(r) => r,
        // What the server answers with (the pipeline logs, counts and audits it too).
        Step::Unreadable(_, e) => Box::new(response::immediate(&Refusal::from(e).denial(None))),
        other => panic!("expected an immediate response, got {other:?}"),
    };
    let Some(Response::ImmediateResponse(i)) = r.response else {
        panic!()
    };
    i.status.unwrap().code as u32
}

#[test]
fn missing_direction_or_pseudo_headers_are_refused() {
    let mut s = StreamState::new(None);
    assert_eq!(immediate_status(s.on_message(get(true))), 500);
    let mut s = StreamState::new(Some("sideways".into()));
    assert_eq!(immediate_status(s.on_message(get(true))), 500);
    let mut s = StreamState::new(Some("inbound".into()));
    assert_eq!(
        immediate_status(s.on_message(headers(&[(":method", b"GET"), (":path", b"/")], true))),
        400
    );
    let mut s = StreamState::new(Some("inbound".into()));
    assert_eq!(
        immediate_status(s.on_message(headers(
            &[
                (":authority", b"\xff"),
                (":method", b"GET"),
                (":path", b"/")
            ],
            true
        ))),
        400
    );
}

#[test]
fn a_denial_renders_status_json_body_and_rfc6750_header() {
    let d: Denial = Refusal::Token(crate::jwt::VerifyError::Expired).denial(None);
    let r = response::decision(&Decision::Deny(d));
    let Some(Response::ImmediateResponse(i)) = r.response else {
        panic!()
    };
    assert_eq!(i.status.unwrap().code, 401);
    assert_eq!(i.grpc_status.unwrap().status, 16);
    let body: serde_json::Value = serde_json::from_slice(&i.body).unwrap();
    assert_eq!(body["error"], "invalid_token");
    let set = i.headers.unwrap().set_headers;
    let www = set
        .iter()
        .find(|h| h.header.as_ref().unwrap().key == "www-authenticate")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&www.header.as_ref().unwrap().raw_value)
            .contains("error=\"invalid_token\"")
    );
    assert_eq!(i.details, "actbridge_token_expired");
}

#[test]
fn a_continue_carries_removals_and_sets() {
    let m = Mutations {
        set: vec![(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer new"),
        )],
        remove: vec![http::HeaderName::from_static("x-actbridge-subject")],
    };
    let r = response::decision(&Decision::Continue(m));
    let Some(Response::RequestHeaders(h)) = r.response else {
        panic!()
    };
    let hm = h.response.unwrap().header_mutation.unwrap();
    assert_eq!(hm.remove_headers, vec!["x-actbridge-subject".to_string()]);
    assert_eq!(
        hm.set_headers[0].header.as_ref().unwrap().raw_value,
        b"Bearer new"
    );
}

fn body_message(bytes: &[u8], end_of_stream: bool) -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Request::RequestBody(HttpBody {
            body: bytes.to_vec(),
            end_of_stream,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn read_body(max_bytes: usize) -> Decision {
    Decision::ReadBody {
        max_bytes,
        mutations: Mutations {
            set: Vec::new(),
            remove: vec![http::header::AUTHORIZATION],
        },
        watch_response: false,
    }
}

#[test]
fn a_read_body_decision_asks_for_the_buffered_body_and_strips_the_credential() {
    let r = response::decision(&read_body(16));
    let mode = r.mode_override.expect("mode_override");
    assert_eq!(mode.request_body_mode, 2, "BUFFERED");
    assert_eq!(
        mode.response_header_mode, 2,
        "SKIP: the rest of the mode is kept"
    );
    let Some(Response::RequestHeaders(h)) = r.response else {
        panic!()
    };
    let hm = h.response.unwrap().header_mutation.unwrap();
    assert_eq!(hm.remove_headers, vec!["authorization".to_string()]);
}

#[test]
fn a_watched_read_body_decision_also_asks_for_the_response_headers_only() {
    let Decision::ReadBody {
        max_bytes,
        mutations,
        ..
    } = read_body(16)
    else {
        panic!()
    };
    let r = response::decision(&Decision::ReadBody {
        max_bytes,
        mutations,
        watch_response: true,
    });
    let mode = r.mode_override.expect("mode_override");
    assert_eq!(mode.request_body_mode, 2, "BUFFERED");
    assert_eq!(mode.response_header_mode, 1, "SEND");
    assert_eq!(mode.response_body_mode, 0, "NONE until the headers say");
}

#[test]
fn a_replaced_response_body_carries_its_new_length() {
    let r = response::replace_response_body(b"{\"x\":1}".to_vec());
    let Some(Response::ResponseBody(b)) = r.response else {
        panic!()
    };
    let common = b.response.unwrap();
    let set = &common.header_mutation.unwrap().set_headers;
    assert_eq!(set[0].header.as_ref().unwrap().key, "content-length");
    assert_eq!(set[0].header.as_ref().unwrap().raw_value, b"7");
    assert!(common.body_mutation.is_some());
}

#[test]
fn the_body_is_decided_once_whole_and_within_the_limit() {
    let mut s = StreamState::new(Some("outbound".into()));
    let Step::Decide(facts) = s.on_message(get(true)) else {
        panic!()
    };
    s.decided(facts, &read_body(8));
    let Step::DecideBody(facts, Some(body)) = s.on_message(body_message(b"{\"a\":1}", true)) else {
        panic!("expected a body decision")
    };
    assert_eq!(body, b"{\"a\":1}");
    assert_eq!(facts.authority, "docs:8080");
    // Later phases continue; a second body is not decided again.
    assert!(matches!(
        s.on_message(body_message(b"x", true)),
        Step::Reply(_)
    ));

    let mut s = StreamState::new(Some("outbound".into()));
    let Step::Decide(facts) = s.on_message(get(true)) else {
        panic!()
    };
    s.decided(facts, &read_body(8));
    assert!(
        matches!(
            s.on_message(body_message(b"123456789", true)),
            Step::DecideBody(_, None)
        ),
        "over the limit: decided as too large"
    );

    let mut s = StreamState::new(Some("outbound".into()));
    let Step::Decide(facts) = s.on_message(get(true)) else {
        panic!()
    };
    s.decided(facts, &read_body(8));
    assert!(
        matches!(s.on_message(body_message(b"{", false)), Step::Fail(_)),
        "a partial body is not what was asked for"
    );
}

#[test]
fn headers_without_a_body_say_so() {
    let mut msg = get(true);
    if let Some(Request::RequestHeaders(h)) = &mut msg.request {
        h.end_of_stream = true;
    }
    let mut s = StreamState::new(Some("outbound".into()));
    let Step::Decide(facts) = s.on_message(msg) else {
        panic!()
    };
    assert!(facts.end_of_stream);
}

fn response_headers(status: &[u8]) -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Request::ResponseHeaders(HttpHeaders {
            headers: Some(HeaderMap {
                headers: vec![HeaderValue {
                    key: ":status".into(),
                    raw_value: status.to_vec(),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A watch decision whose firing is counted.
fn watch(fired: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Decision {
    let fired = fired.clone();
    Decision::Watch {
        mutations: Mutations::default(),
        on_rejected: crate::credentials::OnRejected::new(move || {
            fired.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async {})
        }),
    }
}

#[test]
fn a_watched_credential_asks_for_the_response_headers_and_a_401_rejects_it() {
    let fired = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = response::decision(&watch(&fired));
    let mode = r.mode_override.expect("mode_override");
    assert_eq!(mode.response_header_mode, 1, "SEND");
    assert_eq!(mode.request_body_mode, 0, "NONE: the body is not read");
    assert_eq!(mode.response_body_mode, 0, "NONE");

    for (status, rejected) in [(b"401".as_slice(), true), (b"200", false), (b"403", false)] {
        let mut s = StreamState::new(Some("outbound".into()));
        let Step::Decide(facts) = s.on_message(get(true)) else {
            panic!()
        };
        s.decided(facts, &watch(&fired));
        match s.on_message(response_headers(status)) {
            Step::Rejected(on_rejected) => {
                assert!(rejected, "{status:?} rejected the credential");
                futures::executor::block_on(on_rejected.fire());
                assert_eq!(fired.load(std::sync::atomic::Ordering::SeqCst), 1);
            }
            Step::Reply(r) => {
                assert!(!rejected, "{status:?} did not reject the credential");
                assert!(matches!(r.response, Some(Response::ResponseHeaders(_))));
            }
            other => panic!("{other:?}"),
        }
        // Once: a later phase continues.
        assert!(matches!(
            s.on_message(response_headers(b"401")),
            Step::Reply(_)
        ));
    }
}
