//! The `filter` credential backend through the real Envoy: a chat API with one
//! unscoped service token, which actbridge holds and injects only into requests whose
//! channel the grant allows; the request body is read for that route alone.

use crate::support::chat::{ChatApi, SERVICE_TOKEN};
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
        let chat = ChatApi::start().await;
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
