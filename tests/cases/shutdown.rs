//! Shutdown is bounded (issue 20 §9): SIGTERM under load ends the process within the
//! drain deadline; a request held for a person is refused at once (it would otherwise
//! hold the drain up to the approval timeout), and nothing is forwarded undecided.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cases::mcp::setup_with_env;

#[tokio::test]
async fn sigterm_under_load_ends_within_the_deadline_and_refuses_what_is_held() {
    let mut s = setup_with_env(&[]).await;
    let url = format!("http://127.0.0.1:{}/mcp", s.agent.envoy.outbound_port);
    let post = |body: String| {
        let (http, url, token) = (s.agent.http.clone(), url.clone(), s.token.clone());
        tokio::spawn(async move {
            http.post(url)
                .header("host", "mcp-documents")
                .header("content-type", "application/json")
                .bearer_auth(token)
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        })
    };
    // A tool call held for a person (the approval timeout is 8 s) ...
    let held = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "send_message", "arguments": {"to": "x@attacker.example", "text": "t"}}})
        .to_string(),
    );
    // ... and a load of ordinary calls around the signal.
    let mut load = Vec::new();
    for i in 0..40 {
        load.push(post(
            json!({"jsonrpc": "2.0", "id": 100 + i, "method": "tools/call",
                "params": {"name": "search", "arguments": {"query": "q"}}})
            .to_string(),
        ));
        if i == 20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let started = Instant::now();
    let clean = tokio::task::spawn_blocking(move || {
        let clean = s.agent.actbridge.terminate();
        (clean, s)
    });
    let (clean, s) = clean.await.unwrap();
    let took = started.elapsed();
    assert!(clean, "actbridge did not exit cleanly");
    assert!(
        took < actbridge::serve::DRAIN_DEADLINE,
        "shutdown took {took:?} (the drain deadline is {:?})",
        actbridge::serve::DRAIN_DEADLINE
    );
    // The held request was refused, not sent; every other call was decided (200) or
    // refused (5xx) — none went on undecided.
    let status = held.await.unwrap();
    assert!(status >= 500, "the held call got {status}");
    assert!(
        !s.server
            .calls()
            .iter()
            .any(|c| c.tool.as_deref() == Some("send_message")),
        "the held call reached the server"
    );
    for call in load {
        let status = call.await.unwrap();
        assert!(status == 200 || status >= 500, "a call got {status}");
    }
    let log = s.agent.actbridge.log();
    assert!(
        log.contains("refusing the requests held for approval"),
        "{log}"
    );
}
