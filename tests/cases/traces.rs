//! Traces through the real Envoy: the agent's `traceparent` becomes the parent of the
//! request span, the stage spans hang under it, the token service and GitHub receive the
//! trace context of the span that called them, and no attribute holds a token, a secret
//! or a query string.

use std::time::Duration;

use super::github::{HOST as GITHUB_HOST, github_sidecar_config};
use crate::support::github::{GithubApi, OWNER};
use crate::support::otlp::{OtlpReceiver, ReceivedSpan};
use crate::support::world::{
    AGENT, AGENT_SECRET, Sts, World, agent_id, policies_dir, sidecar_config,
};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";
const QUERY_SECRET: &str = "query-s3cr3t";
const SERVER: i32 = 2;
const CLIENT: i32 = 3;

/// How long spans may take to arrive (the batch delay is 100 ms here).
const ARRIVAL: Duration = Duration::from_secs(10);

fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-{CALLER_SPAN}-01")
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn one<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "one `{name}` span in {spans:#?}");
    found[0]
}

/// No attribute value of any span contains one of `secrets`, or a query string.
fn assert_clean(spans: &[ReceivedSpan], secrets: &[&str]) {
    for span in spans {
        for (key, value) in &span.attributes {
            for secret in secrets {
                assert!(
                    !value.contains(secret),
                    "`{}` attribute {key} holds a secret: {value}",
                    span.name
                );
            }
            assert!(!value.contains('?'), "{key} = {value}: a query string");
            assert!(!value.contains(QUERY_SECRET), "{key} = {value}");
        }
    }
}

/// The trace id and parent id of a `traceparent` value.
fn parts(tp: &str) -> (&str, &str) {
    let p: Vec<&str> = tp.split('-').collect();
    assert_eq!(p.len(), 4, "{tp}");
    (p[1], p[2])
}

#[tokio::test]
// Long by design: one trace, every span of it checked.
async fn an_outbound_exchange_is_one_trace_from_the_agent_through_the_token_service() {
    let otlp = OtlpReceiver::start().await;
    let sts = Sts::start().await;
    // The exporter from the config file; the service name from OTEL_SERVICE_NAME, which
    // wins over the file's.
    let config = sidecar_config(&sts)
        + &format!(
            "policy:\n  dir: \"{}\"\ntelemetry:\n  otlp_endpoint: {}\n  service_name: from-config\n",
            policies_dir().display(),
            otlp.endpoint()
        );
    let env = [
        ("OTEL_SERVICE_NAME", "summarizer-tech-sidecar"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let world = World::builder(sts, &config).env(&env).start().await;
    // Delegated on by reviewer-general: this sidecar names itself as the next actor, so
    // it asks for its own actor token (client credentials) and then exchanges.
    let token = world
        .sts
        .delegated("alice", "reviewer-general", AGENT)
        .await;
    let before = world.sts.traceparents.lock().unwrap().len();

    let resp = world
        .outbound(
            "document-service",
            &format!("/documents/DOC-001?access_token={QUERY_SECRET}"),
        )
        .bearer_auth(&token)
        .header("traceparent", traceparent(TRACE_ID))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    let delegated = world.docs.seen()[0].bearer().to_string();

    let spans = otlp
        .trace_when(TRACE_ID, ARRIVAL, |s| {
            ["actbridge.request", "verify", "policy", "exchange"]
                .iter()
                .all(|n| s.iter().any(|x| x.name == *n))
                && named(s, "token_request").len() == 2
        })
        .await;
    let request = one(&spans, "actbridge.request");
    assert_eq!(
        request.parent_span_id, CALLER_SPAN,
        "the agent's span is the parent"
    );
    assert_eq!(request.kind, SERVER);
    assert_eq!(request.service, "summarizer-tech-sidecar");
    for (key, want) in [
        ("direction", "outbound"),
        ("phase", "headers"),
        ("http.request.method", "GET"),
        ("server.address", "document-service"),
        ("url.path", "/documents/DOC-001"),
        ("route", "document-service"),
        ("user", "alice"),
        ("grant", "engineering,finance"),
        ("decision", "allow"),
    ] {
        assert_eq!(request.attr(key), Some(want), "{key} in {request:#?}");
    }
    assert_eq!(
        request.attr("actors"),
        Some(format!("{AGENT},{}", agent_id("reviewer-general")).as_str()),
        "the chain the destination sees, newest first"
    );
    for stage in ["verify", "policy", "exchange"] {
        assert_eq!(
            one(&spans, stage).parent_span_id,
            request.span_id,
            "{stage} is a child of the request span"
        );
    }
    assert_eq!(one(&spans, "policy").attr("allow"), Some("true"));
    let exchange = one(&spans, "exchange");
    let calls = named(&spans, "token_request");
    let mut grants: Vec<&str> = calls.iter().filter_map(|c| c.attr("grant_type")).collect();
    grants.sort();
    assert_eq!(
        grants,
        [
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ]
    );
    for call in &calls {
        assert_eq!(call.parent_span_id, exchange.span_id);
        assert_eq!(call.kind, CLIENT);
        assert_eq!(call.attr("http.response.status_code"), Some("200"));
    }

    // The token service saw the same trace, each call naming its own client span.
    let received: Vec<Option<String>> = world.sts.traceparents.lock().unwrap()[before..].to_vec();
    assert_eq!(received.len(), 2, "{received:?}");
    let mut parents: Vec<String> = received
        .iter()
        .map(|tp| {
            let tp = tp.as_deref().expect("a traceparent on every token request");
            let (trace, parent) = parts(tp);
            assert_eq!(trace, TRACE_ID, "{tp}");
            assert!(tp.ends_with("-01"), "sampled: {tp}");
            parent.to_string()
        })
        .collect();
    parents.sort();
    let mut call_ids: Vec<String> = calls.iter().map(|c| c.span_id.clone()).collect();
    call_ids.sort();
    assert_eq!(parents, call_ids);

    // A request its caller did not sample makes no span at all (the default sampler
    // follows the caller), not even a stage's as a trace of its own.
    const UNSAMPLED_TRACE: &str = "7d3efb1b173fecfa6d3e8d3c2e4a1f00";
    let resp = world
        .outbound("document-service", "/documents/DOC-001")
        .bearer_auth(&token)
        .header(
            "traceparent",
            format!("00-{UNSAMPLED_TRACE}-{CALLER_SPAN}-00"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // A refusal is a span too, with its reason; nothing reaches the token service.
    const REFUSED_TRACE: &str = "5b8efff798038103d269b633813fc60c";
    let resp = world
        .outbound("blocked.example", "/x")
        .bearer_auth(&token)
        .header("traceparent", traceparent(REFUSED_TRACE))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let refused = otlp
        .trace_when(REFUSED_TRACE, ARRIVAL, |s| !s.is_empty())
        .await;
    let request = one(&refused, "actbridge.request");
    assert_eq!(request.parent_span_id, CALLER_SPAN);
    assert_eq!(request.attr("decision"), Some("deny"));
    assert_eq!(request.attr("reason"), Some("route_denied"));
    assert_eq!(request.attr("http.response.status_code"), Some("403"));

    let all = otlp.spans();
    assert_clean(&all, &[&token, &delegated, AGENT_SECRET, "Bearer"]);
    // The refused request's spans came after the unsampled one's would have (one
    // exporter, in order): every span is of the two sampled traces.
    for span in &all {
        assert!(
            [TRACE_ID, REFUSED_TRACE].contains(&span.trace_id.as_str()),
            "{} in trace {} (the unsampled request is {UNSAMPLED_TRACE})",
            span.name,
            span.trace_id
        );
    }
}

#[tokio::test]
async fn a_github_credential_call_carries_the_credential_stage_as_its_parent() {
    let otlp = OtlpReceiver::start().await;
    let github = GithubApi::start().await;
    let sts = Sts::start().await;
    let config = github_sidecar_config(&sts, "summarizer-tech", &github);
    // The exporter from the standard variable alone.
    let endpoint = otlp.endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let world = World::builder(sts, &config)
        .github_api(github.port)
        .env(&env)
        .start()
        .await;
    let alice = world.token_for("alice").await;

    let resp = world
        .outbound(
            GITHUB_HOST,
            &format!("/repos/{OWNER}/engineering-docs/contents/README.md?ref={QUERY_SECRET}"),
        )
        .bearer_auth(&alice)
        .header("traceparent", traceparent(TRACE_ID))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());

    let spans = otlp
        .trace_when(TRACE_ID, ARRIVAL, |s| {
            ["actbridge.request", "verify", "policy", "credential"]
                .iter()
                .all(|n| s.iter().any(|x| x.name == *n))
        })
        .await;
    let request = one(&spans, "actbridge.request");
    assert_eq!(request.parent_span_id, CALLER_SPAN);
    assert_eq!(request.service, "actbridge", "the default service name");
    assert_eq!(request.attr("route"), Some("github"));
    let credential = one(&spans, "credential");
    assert_eq!(credential.parent_span_id, request.span_id);
    assert_eq!(credential.attr("backend"), Some("github_app"));
    assert_eq!(credential.attr("operation"), Some("apply"));

    let received = github.token_request_traceparents();
    assert_eq!(received.len(), 1, "{received:?}");
    let tp = received[0].as_deref().expect("GitHub got a traceparent");
    assert_eq!(parts(tp), (TRACE_ID, credential.span_id.as_str()));

    let minted = github.minted_tokens();
    let mut secrets: Vec<&str> = minted.iter().map(String::as_str).collect();
    secrets.extend([alice.as_str(), "Bearer", "summarizer-tech-demo-secret"]);
    assert_clean(&otlp.spans(), &secrets);
}

// Multi-threaded: the receiver must answer while this test waits for the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_still_queued_at_shutdown_are_exported_before_the_process_exits() {
    let otlp = OtlpReceiver::start().await;
    let sts = Sts::start().await;
    let endpoint = otlp.endpoint();
    // A batch delay far longer than the test: only the shutdown flush can send them.
    let env = [
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
    ];
    let config = sidecar_config(&sts);
    let mut world = World::builder(sts, &config).env(&env).start().await;
    let token = world.sts.alice_delegated().await;
    let resp = world
        .outbound("document-service", "/documents/DOC-001")
        .bearer_auth(&token)
        .header("traceparent", traceparent(TRACE_ID))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(otlp.spans().is_empty(), "nothing exported before shutdown");
    assert!(world.actbridge.terminate(), "{}", world.actbridge.log());
    let spans = otlp.trace_when(TRACE_ID, Duration::ZERO, |_| true).await;
    let request = one(&spans, "actbridge.request");
    assert_eq!(one(&spans, "exchange").parent_span_id, request.span_id);
}

/// OTLP over HTTP with protobuf bodies (the OpenTelemetry SDKs' default, which platforms
/// inject): the generic endpoint variable is a base, `/v1/traces` is added, and the same
/// trace arrives as over gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_a_collector_over_http_protobuf() {
    let otlp = OtlpReceiver::start().await;
    let sts = Sts::start().await;
    let endpoint = otlp.http_endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let config = sidecar_config(&sts);
    let world = World::builder(sts, &config).env(&env).start().await;
    let token = world.sts.alice_delegated().await;
    let resp = world
        .outbound("document-service", "/documents/DOC-001")
        .bearer_auth(&token)
        .header("traceparent", traceparent(TRACE_ID))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", world.actbridge.log());
    let spans = otlp
        .trace_when(TRACE_ID, ARRIVAL, |s| {
            ["actbridge.request", "exchange"]
                .iter()
                .all(|n| s.iter().any(|x| x.name == *n))
        })
        .await;
    let request = one(&spans, "actbridge.request");
    assert_eq!(request.parent_span_id, CALLER_SPAN);
    assert_eq!(one(&spans, "exchange").parent_span_id, request.span_id);
    assert!(otlp.http_exports() > 0, "nothing came over OTLP/HTTP");
    let log = world.actbridge.log();
    assert!(log.contains("http/protobuf"), "{log}");
}

/// A platform injects `OTEL_*` for every language; one actbridge cannot honour (here the
/// http/json protocol) switches traces off with a warning naming it, and the sidecar
/// serves.
#[tokio::test]
async fn an_otel_value_not_understood_switches_traces_off_and_the_sidecar_serves() {
    let otlp = OtlpReceiver::start().await;
    let sts = Sts::start().await;
    let endpoint = otlp.http_endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
    ];
    let config = sidecar_config(&sts);
    let world = World::builder(sts, &config).env(&env).start().await;
    let token = world.sts.alice_delegated().await;
    let resp = world
        .outbound("document-service", "/documents/DOC-001")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let log = world.actbridge.log();
    let warning = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["level"] == "WARN")
        .unwrap_or_else(|| panic!("no warning: {log}"));
    let message = warning["fields"]["message"].as_str().unwrap();
    assert!(
        message.contains("OTEL_EXPORTER_OTLP_PROTOCOL")
            && message.contains("http/json")
            && message.ends_with("traces are not exported"),
        "{message}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(otlp.received(), 0);
}
