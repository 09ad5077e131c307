//! The `filter` credential backend through the real Envoy: a chat API with one
//! unscoped service token, which actbridge holds and injects only into requests whose
//! channel the grant allows; the request body is read for that route alone.

use crate::support::chat::{ChatApi, Reading, SERVICE_TOKEN};
use crate::support::world::{Sts, World, credential_sidecar_config};

const CHANNELS: &str =
    "{engineering: [eng-general], finance: [finance-general], admin: [ops], hr: [hr-private]}";

struct ChatWorld {
    chat: ChatApi,
    world: World,
    host: String,
    _dir: tempfile::TempDir,
}

/// The host of the chat route.
pub(super) const CHAT_HOST: &str = "chat.example";

/// summarizer-tech's sidecar with a `filter` credential route to `chat` (its service
/// token in a file under `dir`) and the demo policy.
pub(super) fn chat_sidecar_config(sts: &Sts, chat: &ChatApi, dir: &std::path::Path) -> String {
    let token_file = dir.join("chat-token");
    std::fs::write(&token_file, format!("{SERVICE_TOKEN}\n")).unwrap();
    let routes = format!(
        "    - {{name: chat, host: \"{CHAT_HOST}\", cluster: local_{port}, action: credential, credential: chat, mode: filter}}\n",
        port = chat.port
    );
    let credentials = format!(
        r#"  - name: chat
    filter:
      token_file: {token}
      max_body_bytes: 1024
      rules:
        - {{method: POST, path: /api/chat.postMessage, body_field: channel, allow: {CHANNELS}}}
        - {{method: GET, path: /api/conversations.history, query: channel, allow: {CHANNELS}}}
"#,
        token = token_file.display()
    );
    credential_sidecar_config(sts, "summarizer-tech", &routes, &credentials)
}

impl ChatWorld {
    async fn start() -> ChatWorld {
        Self::start_reading(Reading::Last).await
    }

    async fn start_reading(reading: Reading) -> ChatWorld {
        let chat = ChatApi::start_reading(reading).await;
        let host = CHAT_HOST.to_string();
        let dir = tempfile::tempdir().unwrap();
        let sts = Sts::start().await;
        let config = chat_sidecar_config(&sts, &chat, dir.path());
        let world = World::start_with(sts, &config).await;
        ChatWorld {
            chat,
            world,
            host,
            _dir: dir,
        }
    }

    async fn post(&self, token: &str, body: &str) -> (u16, String) {
        let r = self
            .world
            .http
            .post(format!(
                "http://127.0.0.1:{}/api/chat.postMessage",
                self.world.envoy.outbound_port
            ))
            .header("host", &self.host)
            .header("content-type", "application/json")
            .bearer_auth(token)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// `method path` with every `content_types` value as its own header and `body`.
    async fn send(
        &self,
        token: &str,
        (method, path): (&str, &str),
        content_types: &[&str],
        body: Option<&str>,
    ) -> u16 {
        let mut r = self
            .world
            .http
            .request(
                method.parse().unwrap(),
                format!("http://127.0.0.1:{}{path}", self.world.envoy.outbound_port),
            )
            .header("host", &self.host)
            .bearer_auth(token);
        for ct in content_types {
            r = r.header("content-type", *ct);
        }
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        r.send().await.unwrap().status().as_u16()
    }

    async fn get(&self, token: &str, path: &str) -> (u16, String) {
        let r = self.world.agent_call(&self.host, path, token).await;
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

fn description(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).unwrap()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// alice via summarizer-tech (engineering, finance) posts to and reads finance-general
/// with the service token she never sees; hr-private and unlisted calls are refused
/// with the rule that refused them, before the API is reached; the API's answer passes
/// unchanged.
#[tokio::test]
async fn the_filter_lets_through_only_the_grants_channels() {
    let w = ChatWorld::start().await;
    let alice = w.world.token_for("alice").await;
    let (status, body) = w
        .post(
            &alice,
            r#"{"channel":"finance-general","text":"Q4 summary ready"}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"ok": true, "channel": "finance-general", "ts": "1764000000.000100"}),
        "the upstream's answer passes unchanged"
    );
    let (status, body) = w
        .get(&alice, "/api/conversations.history?channel=finance-general")
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Q4 summary ready"), "{body}");
    assert_eq!(
        w.chat.authorizations(),
        vec![format!("Bearer {SERVICE_TOKEN}"); 2],
        "only the service token reached the API"
    );

    let (status, body) = w
        .post(&alice, r#"{"channel":"hr-private","text":"psst"}"#)
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        description(&body),
        "rule 1 (POST /api/chat.postMessage): channel `hr-private` is outside the grant"
    );
    let (status, body) = w
        .get(&alice, "/api/conversations.history?channel=hr-private")
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        description(&body),
        "rule 2 (GET /api/conversations.history): channel `hr-private` is outside the grant"
    );
    let (status, body) = w.get(&alice, "/api/users.list").await;
    assert_eq!(status, 403);
    assert_eq!(description(&body), "no rule allows GET /api/users.list");
    let (status, body) = w.post(&alice, r#"{"text":"no channel"}"#).await;
    assert_eq!(status, 403);
    assert_eq!(
        description(&body),
        "rule 1 (POST /api/chat.postMessage) needs `channel` (a string)"
    );
    let (status, _) = w
        .post(
            &alice,
            &format!(
                r#"{{"channel":"finance-general","text":"{}"}}"#,
                "x".repeat(2000)
            ),
        )
        .await;
    assert_eq!(status, 413, "a body over max_body_bytes");
    assert_eq!(w.chat.requests(), 2, "no refused request reached the API");
    assert_eq!(w.chat.messages().len(), 1);
}

/// An empty grant, a missing token or a forged one never reaches the API.
#[tokio::test]
async fn refused_callers_never_reach_the_api() {
    let w = ChatWorld::start().await;
    let carol = w.world.token_for("carol").await;
    let (status, _) = w
        .post(&carol, r#"{"channel":"hr-private","text":"x"}"#)
        .await;
    assert_eq!(status, 403);
    let (status, _) = w.post("not-a-token", r#"{"channel":"eng-general"}"#).await;
    assert_eq!(status, 401);
    let r = w
        .world
        .http
        .get(format!(
            "http://127.0.0.1:{}/api/conversations.history?channel=eng-general",
            w.world.envoy.outbound_port
        ))
        .header("host", &w.host)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(w.chat.requests(), 0);
}

/// The channels alice's grant (engineering, finance) allows, and one it does not.
const ALLOWED: &str = "finance-general";
const FORBIDDEN: &str = "hr-private";

/// Query strings naming the channel twice: every pair of spellings servers may read as
/// `channel`, both separators, both orders.
fn query_spellings() -> Vec<String> {
    let names = ["channel", "Channel", "channel[]", "ch%61nnel", "CHANNEL"];
    let mut out = vec![format!("channel={ALLOWED}")];
    for n1 in names {
        for n2 in names {
            for sep in ["&", ";"] {
                for (v1, v2) in [(ALLOWED, FORBIDDEN), (FORBIDDEN, ALLOWED)] {
                    out.push(format!("{n1}={v1}{sep}{n2}={v2}"));
                }
            }
        }
    }
    out
}

/// Bodies naming the channel: plain ones, and ones that read otherwise under another
/// parser (a repeated or re-cased key, a form inside JSON, JSON declared as a form).
fn body_spellings() -> Vec<String> {
    let (a, f) = (ALLOWED, FORBIDDEN);
    vec![
        format!(r#"{{"channel":"{a}","text":"t"}}"#),
        format!("channel={a}&text=t"),
        format!(r#"{{"channel":"{a}","channel":"{f}"}}"#),
        format!(r#"{{"channel":"{f}","channel":"{a}"}}"#),
        format!(r#"{{"channel":"{a}","Channel":"{f}"}}"#),
        format!(r#"{{"channel":"{a}","x":"&channel={f}&"}}"#),
        format!(r#"{{"channel":["{a}","{f}"]}}"#),
        format!("channel={a}&channel={f}"),
        format!("channel={f}&channel={a}"),
        format!("channel={a}&Channel={f}"),
        format!("channel={a};channel={f}"),
    ]
}

/// The differential test of the filter: generated spellings of the judged value go
/// through the real Envoy to chat APIs that read a repeated argument as the first, the
/// last or every value (and sniff an undeclared body); whatever the filter lets through,
/// every channel the API acted on is one the grant allows. The plain spellings pass.
#[tokio::test]
async fn the_upstream_acts_only_on_what_the_filter_judged() {
    for reading in [Reading::First, Reading::Last, Reading::All] {
        let w = ChatWorld::start_reading(reading).await;
        let alice = w.world.token_for("alice").await;
        let mut passed = Vec::new();
        for q in query_spellings() {
            let path = format!("/api/conversations.history?{q}");
            if w.send(&alice, ("GET", &path), &[], None).await == 200 {
                passed.push(path.clone());
            }
            // The same query with a body that a merging server could read.
            let body = format!("channel={FORBIDDEN}");
            let form = ["application/x-www-form-urlencoded"];
            assert_ne!(
                w.send(&alice, ("GET", &path), &form, Some(&body)).await,
                200,
                "{path} with a body"
            );
        }
        let content_types: [&[&str]; 6] = [
            &["application/json"],
            &["application/x-www-form-urlencoded"],
            &[],
            &["text/plain"],
            &["application/json; charset=utf-16"],
            &["application/json", "application/x-www-form-urlencoded"],
        ];
        for body in body_spellings() {
            for ct in content_types {
                for query in ["", "?channel=hr-private", "?Channel=hr-private"] {
                    let path = format!("/api/chat.postMessage{query}");
                    if w.send(&alice, ("POST", &path), ct, Some(&body)).await == 200 {
                        passed.push(format!("POST {path} {ct:?} {body}"));
                    }
                }
            }
        }
        let acted_on = w.chat.channels_acted_on();
        let outside: Vec<&String> = acted_on.iter().filter(|c| *c != ALLOWED).collect();
        assert!(
            outside.is_empty(),
            "{reading:?}: the API acted on {outside:?}; passed: {passed:#?}"
        );
        let plain = [
            format!("/api/conversations.history?channel={ALLOWED}"),
            format!(
                r#"POST /api/chat.postMessage ["application/json"] {{"channel":"{ALLOWED}","text":"t"}}"#
            ),
            format!(
                r#"POST /api/chat.postMessage ["application/x-www-form-urlencoded"] channel={ALLOWED}&text=t"#
            ),
        ];
        for p in &plain {
            assert!(
                passed.contains(p),
                "{reading:?}: the plain `{p}` was refused"
            );
        }
        assert_eq!(passed.len(), plain.len(), "{reading:?}: {passed:#?}");
    }
}
