//! MCP through the real Envoy: the agent's sidecar (summarizer-tech) judges every
//! JSON-RPC message of its calls to an MCP server per tool and per argument, sends tool
//! calls with single-use tool tokens, narrows `tools/list`, and refuses in the
//! protocol's terms; the MCP server's own sidecar verifies those tokens, refuses a
//! replay, and publishes the server's protected resource metadata (RFC 9728).
//!
//! agent ─▶ Envoy A outbound ─▶ actbridge A ─▶ Envoy B inbound ─▶ actbridge B ─▶ MCP server

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::support::mcp::McpServer;
use crate::support::world::{
    AGENT, PORTAL, PORTAL_SECRET, Sts, World, claims_of, policies_dir, sidecar_head,
};

const MCP: &str = "spiffe://demo.example.com/tool/mcp-documents";
const RESOURCE: &str = "https://mcp-documents.example.com/mcp";

pub(super) struct Setup {
    pub(super) server: McpServer,
    tool: World,
    pub(super) agent: World,
    /// alice's token delegated to summarizer-tech.
    pub(super) token: String,
    /// The agent sidecar's audit log.
    audit: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// The MCP server, its sidecar, and summarizer-tech's sidecar with an `mcp` route to
/// it (the demo policy; approvals on, at most `approval_timeout`).
async fn setup() -> Setup {
    setup_with_env(&[]).await
}

/// As [`setup`], with extra environment variables for the agent's actbridge.
pub(super) async fn setup_with_env(env: &[(&str, &str)]) -> Setup {
    let sts = Sts::start().await;
    let server = McpServer::start().await;
    let tool_config = sidecar_head(&sts, MCP)
        + &format!(
            r#"inbound:
  single_use_scopes: ["mcp:*"]
  protected_resource:
    resource: {RESOURCE}
    authorization_servers: ["{issuer}"]
    scopes_supported: [mcp, "mcp:read_document", "mcp:search"]
    resource_name: Demo documents
  public_agent_card: true
"#,
            issuer = sts.service.issuer()
        );
    let tool = World::builder(sts.shared(), &tool_config)
        .in_front_of(server.port)
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let agent_config = sidecar_head(&sts, AGENT)
        + &format!(
            r#"outbound:
  token_endpoint: {token}
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_post, secret: summarizer-tech-demo-secret}}
  routes:
    - name: mcp-documents
      host: mcp-documents
      cluster: local_{port}
      action: exchange
      audience: "{MCP}"
      scopes: [mcp]
      protocol: mcp
      max_body_bytes: 4096
policy:
  dir: {policies}
admin_api:
  listen: 127.0.0.1:{{ADMIN_API}}
  audiences: [actbridge-admin]
  roles: [actbridge-admin]
approvals:
  timeout: 8s
audit:
  path: {audit}
"#,
            audit = audit.display(),
            token = sts.service.token_endpoint(),
            port = tool.envoy.inbound_port,
            policies = policies_dir().display(),
        );
    let agent = World::builder(sts, &agent_config).env(env).start().await;
    // alice logs in through the front end for the MCP server's scopes; the agent
    // delegates her token to itself.
    let own = agent
        .sts
        .login_scoped(
            "alice",
            "alice123",
            (PORTAL, PORTAL_SECRET),
            "openid mcp mcp:read_document mcp:search mcp:delete_document mcp:send_message",
        )
        .await;
    let token = agent
        .sts
        .exchange_as("summarizer-tech", &own, AGENT, true)
        .await
        .unwrap();
    Setup {
        server,
        tool,
        agent,
        token,
        audit,
        _dir: dir,
    }
}

impl Setup {
    /// The agent POSTs `body` to the MCP server through its sidecar.
    pub(super) async fn post(&self, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self
            .agent
            .http
            .post(format!(
                "http://127.0.0.1:{}/mcp",
                self.agent.envoy.outbound_port
            ))
            .header("host", "mcp-documents")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(&self.token)
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// The agent sidecar's audited decisions, once there are at least `at_least` (or
    /// after 5 s).
    async fn decision_records(&self, at_least: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&self.audit).unwrap_or_default();
            let records: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .filter(|r: &Value| r["kind"] == "decision")
                .collect();
            if records.len() >= at_least || Instant::now() > deadline {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn call(&self, id: u64, tool: &str, arguments: Value) -> reqwest::Response {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                          "params": {"name": tool, "arguments": arguments}});
        self.post(&body.to_string(), &[]).await
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
// Long by design: one MCP session whose calls build on each other.
async fn tool_calls_are_judged_per_tool_and_document_and_go_out_with_single_use_tokens() {
    let s = setup().await;

    // read_document on a finance document: allowed, with a token for this one call.
    let r = s.call(1, "read_document", json!({"id": "DOC-002"})).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}\n{}", s.agent.actbridge.log());
    assert_eq!(v["id"], 1);
    assert_eq!(v["result"]["content"][0]["text"], "called read_document");
    let calls = s.server.calls();
    assert_eq!(calls.len(), 1);
    let c = claims_of(&calls[0].bearer);
    assert_eq!(c["aud"], MCP);
    assert_eq!(c["scope"], "mcp:read_document");
    assert_eq!(c["preferred_username"], "alice");
    assert_eq!(c["act"]["client_id"], AGENT);
    let life = c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap();
    assert!(life <= 10, "a tool token lives seconds, not {life}");
    assert_ne!(
        calls[0].bearer, s.token,
        "the agent's own token never leaves"
    );

    // A second call gets a token of its own.
    assert_eq!(
        s.call(2, "read_document", json!({"id": "DOC-001"}))
            .await
            .status(),
        200
    );
    let calls = s.server.calls();
    assert_eq!(calls.len(), 2);
    assert_ne!(
        claims_of(&calls[1].bearer)["jti"],
        claims_of(&calls[0].bearer)["jti"]
    );

    // The first call's token, replayed straight at the MCP server's sidecar: refused.
    let replay = s
        .tool
        .http
        .post(format!("http://127.0.0.1:{}/mcp", s.tool.envoy.inbound_port))
        .bearer_auth(&calls[0].bearer)
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"read_document","arguments":{"id":"DOC-002"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");

    // read_document on an HR document: refused before the server, in MCP's terms.
    let r = s.call(3, "read_document", json!({"id": "DOC-004"})).await;
    assert_eq!(r.status(), 403);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\", scope=\"mcp:read_document\""),
        "{challenge}"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["jsonrpc"], "2.0");
    assert_eq!(v["id"], 3);
    assert_eq!(v["error"]["code"], -32001);
    assert_eq!(
        v["error"]["message"],
        "DOC-004 needs every one of its departments in the grant"
    );

    // delete_document is refused by policy whatever the document.
    let r = s.call(4, "delete_document", json!({"id": "DOC-002"})).await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "deleting documents is not allowed to agents"
    );
    assert_eq!(
        s.server.calls().len(),
        2,
        "no refused call reached the server"
    );
    assert!(s.agent.docs.count() == 0 && s.agent.app.count() == 0);

    // A batch is judged message by message and refused as a whole.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "search", "arguments": {"q": "budget"}}},
        {"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "delete_document", "arguments": {"id": "DOC-001"}}},
    ]);
    let r = s.post(&batch.to_string(), &[]).await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], Value::Null);
    assert_eq!(s.server.calls().len(), 2);

    // The audit log names the calls each decision was about.
    let records = s.decision_records(5).await;
    let calls: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                r["decision"].as_str().unwrap().to_string(),
                r["calls"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("allow".into(), r#"["tools/call read_document"]"#.into()),
            ("allow".into(), r#"["tools/call read_document"]"#.into()),
            ("deny".into(), r#"["tools/call read_document"]"#.into()),
            ("deny".into(), r#"["tools/call delete_document"]"#.into()),
            (
                "deny".into(),
                r#"["tools/call search","tools/call delete_document"]"#.into()
            ),
        ]
    );
}

#[tokio::test]
// Long by design: one MCP server answering each bad body in turn.
async fn tools_list_is_narrowed_and_bad_bodies_never_reach_the_server() {
    let s = setup().await;

    // initialize: an ordinary token (scope `mcp`), not a single-use one.
    let r = s
        .post(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    let c = claims_of(&s.server.calls()[0].bearer);
    assert_eq!(c["aud"], MCP);
    assert_eq!(c["scope"], "mcp");

    // tools/list, as JSON and as an event stream: delete_document is gone.
    let list = r#"{"jsonrpc":"2.0","id":"l1","method":"tools/list"}"#;
    let r = s.post(list, &[]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let names: Vec<&str> = v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["read_document", "search", "send_message"]);
    assert_eq!(
        v["result"]["tools"][0]["description"],
        "the read_document tool"
    );

    let r = s.post(list, &[("x-test-sse", "1")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    assert!(text.starts_with("event: message\nid: 1\ndata: "), "{text}");
    assert!(!text.contains("delete_document"), "{text}");
    assert!(text.contains("send_message"), "{text}");
    let served = s.server.calls().len();
    assert_eq!(served, 3, "initialize and two lists reached the server");

    // Malformed JSON-RPC: a parse error, nothing reaches the server.
    let r = s.post("{not json", &[]).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32700);
    let r = s
        .post(r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#, &[])
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32600);
    assert_eq!(v["id"], Value::Null);
    // Over the route's 4096 bytes: 413.
    let big = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                     "params": {"name": "search", "arguments": {"q": "x".repeat(5000)}}});
    let r = s.post(&big.to_string(), &[]).await;
    assert_eq!(r.status(), 413);
    assert_eq!(s.server.calls().len(), served);

    // A tool marked for approval waits; approved, it goes on.
    let admin = format!("http://127.0.0.1:{}", s.agent.actbridge.admin_api_port);
    let bob = s.agent.sts.sign(json!({
        "iss": s.agent.sts.service.issuer(), "sub": "bob-id", "preferred_username": "bob",
        "aud": "actbridge-admin", "realm_access": {"roles": ["actbridge-admin"]},
        "exp": now() + 300, "iat": now(),
    }));
    let held = {
        let body = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
            "params": {"name": "send_message", "arguments": {"to": "bob", "text": "Q4 is out"}}})
        .to_string();
        let (http, url, host, token) = (
            s.agent.http.clone(),
            format!("http://127.0.0.1:{}/mcp", s.agent.envoy.outbound_port),
            "mcp-documents".to_string(),
            s.token.clone(),
        );
        tokio::spawn(async move {
            http.post(url)
                .header("host", host)
                .header("content-type", "application/json")
                .bearer_auth(token)
                .body(body)
                .send()
                .await
                .unwrap()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let pending = loop {
        let v: Value = s
            .agent
            .http
            .get(format!("{admin}/approvals"))
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(p) = v["approvals"].as_array().and_then(|a| a.first()) {
            break p.clone();
        }
        assert!(Instant::now() < deadline, "nothing became pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(pending["call"], "tools/call send_message");
    assert_eq!(pending["user"], "alice");
    // The approver sees what the server would receive: the tool's arguments.
    assert_eq!(pending["arguments"]["to"], "bob");
    assert_eq!(pending["arguments"]["text"], "Q4 is out");
    assert_eq!(s.server.calls().len(), served, "held, not sent");
    let id = pending["id"].as_str().unwrap();
    let approve = |body: Option<Value>| {
        let mut r = s
            .agent
            .http
            .post(format!("{admin}/approvals/{id}/approve"))
            .bearer_auth(&bob);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send()
    };
    // An approval names the digest of what was shown; another digest, or none, is
    // refused and the request stays held.
    assert_eq!(approve(None).await.unwrap().status(), 400);
    let wrong = json!({"digest": "0".repeat(64)});
    assert_eq!(approve(Some(wrong)).await.unwrap().status(), 409);
    assert_eq!(s.server.calls().len(), served, "still held");
    let r = approve(Some(json!({"digest": pending["digest"]})))
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = held.await.unwrap();
    assert_eq!(r.status(), 200);
    let last = s.server.calls().pop().unwrap();
    assert_eq!(last.tool.as_deref(), Some("send_message"));
}

#[tokio::test]
async fn the_mcp_servers_sidecar_publishes_its_protected_resource_metadata() {
    let s = setup().await;
    let base = format!("http://127.0.0.1:{}", s.tool.envoy.inbound_port);

    // RFC 9728 §3: the metadata, at the well-known path and the path-suffixed one.
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let r = s
            .tool
            .http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v,
            json!({
                "resource": RESOURCE,
                "authorization_servers": [s.agent.sts.service.issuer()],
                "bearer_methods_supported": ["header"],
                "scopes_supported": ["mcp", "mcp:read_document", "mcp:search"],
                "resource_name": "Demo documents",
            })
        );
    }

    // An unauthenticated call: 401 naming the metadata (RFC 9728 §5.1).
    let r = s
        .tool
        .http
        .post(format!("{base}/mcp"))
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"actbridge\", resource_metadata=\"https://mcp-documents.example.com/.well-known/oauth-protected-resource/mcp\""
    );

    // The A2A Agent Card is public; anything else still needs a token.
    let r = s
        .tool
        .http
        .get(format!("{base}/.well-known/agent-card.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "reached the app (the MCP server only serves POST /mcp)"
    );
    let r = s
        .tool
        .http
        .get(format!("{base}/.well-known/other.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(s.server.calls().is_empty());
}

/// A policy that judges A2A calls by method and agent called.
const A2A_POLICY: &str = r#"package actbridge

import rego.v1

default decision := {"allow": false, "reason": "this A2A call is not allowed", "grant": []}

# single_use_token means nothing outside an MCP tool call: the call still goes out.
decision := {"allow": true, "reason": "ok", "grant": ["engineering"], "single_use_token": true} if {
	input.a2a.known
	input.a2a.agent == "spiffe://demo.example.com/agent/reviewer-ops"
	input.a2a.method in {"message/send", "tasks/get"}
}
"#;

#[tokio::test]
async fn a2a_calls_are_judged_by_method_and_agent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("decision.rego"), A2A_POLICY).unwrap();
    let sts = Sts::start().await;
    let peer = crate::support::echo::Echo::start().await;
    let config = sidecar_head(&sts, AGENT)
        + &format!(
            r#"outbound:
  token_endpoint: {token}
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_post, secret: summarizer-tech-demo-secret}}
  routes:
    - name: reviewer-ops
      host: reviewer-ops
      cluster: local_{port}
      action: exchange
      audience: spiffe://demo.example.com/agent/reviewer-ops
      protocol: a2a
policy:
  dir: {policy}
"#,
            token = sts.service.token_endpoint(),
            port = peer.port,
            policy = dir.path().display(),
        );
    let world = World::start_with(sts, &config).await;
    let token = world.sts.alice_delegated().await;
    let send = |body: &'static str| {
        world
            .http
            .post(format!("http://127.0.0.1:{}/", world.envoy.outbound_port))
            .header("host", "reviewer-ops")
            .header("content-type", "application/json")
            .bearer_auth(&token)
            .body(body)
            .send()
    };
    let r = send(r#"{"jsonrpc":"2.0","id":"m1","method":"message/send","params":{"message":{"role":"user","parts":[{"kind":"text","text":"review this"}],"messageId":"x"}}}"#)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = peer.seen();
    assert_eq!(seen.len(), 1);
    let c = claims_of(seen[0].bearer());
    assert_eq!(c["aud"], "spiffe://demo.example.com/agent/reviewer-ops");

    for refused in [
        r#"{"jsonrpc":"2.0","id":"m2","method":"tasks/cancel","params":{"id":"t1"}}"#,
        r#"{"jsonrpc":"2.0","id":"m3","method":"tools/call","params":{"name":"x"}}"#,
    ] {
        let r = send(refused).await.unwrap();
        assert_eq!(r.status(), 403, "{refused}");
        assert!(
            r.headers().get("www-authenticate").is_none(),
            "insufficient_scope is MCP's, not A2A's"
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["message"], "this A2A call is not allowed");
        assert_eq!(
            v["id"],
            serde_json::from_str::<Value>(refused).unwrap()["id"]
        );
    }
    assert_eq!(peer.count(), 1, "refused calls never reached the agent");
}

/// Only what MCP's Streamable HTTP defines goes on (issue 20 §7): a `tools/call` body
/// sent with PUT or PATCH, or carried by a GET or DELETE, is refused before the server,
/// never forwarded unjudged.
#[tokio::test]
async fn methods_mcp_does_not_define_never_carry_a_tool_call_past_the_policy() {
    let s = setup().await;
    let call = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"delete_document","arguments":{"id":"DOC-001"}}}"#;
    let before = s.server.calls().len();
    for method in ["PUT", "PATCH", "GET", "DELETE", "OPTIONS"] {
        let r = s
            .agent
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("http://127.0.0.1:{}/mcp", s.agent.envoy.outbound_port),
            )
            .header("host", "mcp-documents")
            .header("content-type", "application/json")
            .bearer_auth(&s.token)
            .body(call)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
    }
    assert_eq!(
        s.server.calls().len(),
        before,
        "a tool call reached the server"
    );
    // JSON-RPC method names are case-sensitive: `Tools/Call` is no MCP method, and the
    // shipped policy refuses what MCP does not define.
    let odd = r#"{"jsonrpc":"2.0","id":10,"method":"Tools/Call","params":{"name":"delete_document","arguments":{"id":"DOC-001"}}}"#;
    let r = s.post(odd, &[]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        s.server.calls().len(),
        before,
        "an unknown method reached the server"
    );
}

/// A `tools/list` result that cannot be read is refused in JSON-RPC terms (502), and,
/// like every refusal, logged, counted (`actbridge_refusals_total`) and audited — with
/// the route, the user and the chain the list was for.
#[tokio::test]
async fn an_unreadable_tools_list_is_refused_counted_and_audited() {
    let s = setup().await;
    let list = r#"{"jsonrpc":"2.0","id":"l1","method":"tools/list"}"#;
    let r = s.post(list, &[("x-test-garbage", "1")]).await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], "l1", "{v}");
    assert_eq!(
        v["error"]["code"], -32001,
        "the server's answer failed: {v}"
    );
    let records = s.decision_records(2).await;
    let refused: Vec<&Value> = records
        .iter()
        .filter(|r| r["reason"] == "mcp_response_unreadable")
        .collect();
    assert_eq!(refused.len(), 1, "{records:#?}");
    let r = refused[0];
    assert_eq!(r["decision"], "deny");
    assert_eq!(r["status"], 502);
    assert_eq!(r["user"], "alice");
    assert_eq!(r["calls"], json!(["tools/list"]));
    assert!(r["route"].as_str().is_some_and(|x| !x.is_empty()), "{r}");
    let metrics = s
        .agent
        .http
        .get(format!(
            "http://127.0.0.1:{}/metrics",
            s.agent.actbridge.admin_port
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("actbridge_refusals_total{")
                && l.contains("reason=\"mcp_response_unreadable\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
}
