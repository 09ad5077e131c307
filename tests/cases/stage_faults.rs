//! No abnormal end lets a request through: each stage of a decision is made to panic in
//! turn (`ACTBRIDGE_FAULT=<point>`, the test-only cargo feature `fault-injection`,
//! src/fault.rs), and through the real Envoy the caller gets a 5xx while the upstream
//! records nothing. Before the fix, a panic ended the ext_proc stream with status OK and
//! Envoy forwarded the request unmodified — forged identity headers and the raw token
//! included.
#![cfg(feature = "fault-injection")]

use crate::cases::aws::aws_sidecar_config;
use crate::cases::filter::{CHAT_HOST, chat_sidecar_config};
use crate::cases::github::{HOST as GITHUB_HOST, github_sidecar_config};
use crate::cases::postgres::pg_sidecar_config;
use crate::support::chat::ChatApi;
use crate::support::github::{GithubApi, OWNER};
use crate::support::sshd::keygen;
use crate::support::world::{Sts, World, credential_sidecar_config, sidecar_config};

/// A sidecar config for a token service.
type ConfigFor<'a> = dyn Fn(&Sts) -> String + 'a;

/// The world with `config` and the fault armed at `point`.
async fn armed(sts: Sts, config: &str, point: &str, peers: (Option<u16>, Option<u16>)) -> World {
    let env = [
        ("ACTBRIDGE_FAULT", point),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    World::builder(sts, config)
        .peers(peers)
        .env(&env)
        .start()
        .await
}

/// The status the caller got must be a 5xx, and the log must show the injected panic
/// (so the case reached its stage rather than being refused earlier).
fn assert_failed_closed(world: &World, point: &str, status: u16) {
    let log = world.actbridge.log();
    assert!(
        log.contains(&format!("injected fault at `{point}`")),
        "{point}: the stage was not reached (status {status}):\n{log}"
    );
    assert!(
        (500..600).contains(&status),
        "{point}: the caller got {status}, not a 5xx"
    );
}

#[tokio::test]
async fn a_panic_in_token_verification_refuses_the_inbound_request_and_the_forged_headers_stay_out()
{
    let sts = Sts::start().await;
    let config = sidecar_config(&sts);
    let world = armed(sts, &config, "verify", (None, None)).await;
    let token = world.sts.alice().await;
    let r = world
        .inbound("/docs")
        .bearer_auth(&token)
        .header("x-actbridge-username", "admin")
        .send()
        .await
        .unwrap();
    assert_failed_closed(&world, "verify", r.status().as_u16());
    assert_eq!(world.app.count(), 0, "the app received the request");
}

#[tokio::test]
async fn a_panic_in_the_exchange_refuses_the_outbound_request() {
    let sts = Sts::start().await;
    let config = sidecar_config(&sts);
    let world = armed(sts, &config, "exchange", (None, None)).await;
    let token = world.sts.alice_delegated().await;
    let r = world
        .agent_call("document-service", "/documents/DOC-001", &token)
        .await;
    assert_failed_closed(&world, "exchange", r.status().as_u16());
    assert_eq!(world.docs.count(), 0, "the document service received it");
}

#[tokio::test]
async fn a_panic_in_the_policy_or_a_backend_applying_its_credential_refuses_the_request() {
    for point in ["policy", "credential:github_app"] {
        let github = GithubApi::start().await;
        let sts = Sts::start().await;
        let config = github_sidecar_config(&sts, "summarizer-tech", &github);
        let world = armed(sts, &config, point, (None, Some(github.port))).await;
        let token = world.token_for("alice").await;
        let path = format!("/repos/{OWNER}/engineering-docs/contents/README.md");
        let r = world.agent_call(GITHUB_HOST, &path, &token).await;
        assert_failed_closed(&world, point, r.status().as_u16());
        assert!(github.content_authorizations().is_empty(), "{point}");
        assert!(github.token_requests().is_empty(), "{point}");
    }
}

#[tokio::test]
async fn a_panic_in_the_filter_backend_keeps_its_service_token_in() {
    let chat = ChatApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sts = Sts::start().await;
    let config = chat_sidecar_config(&sts, &chat, dir.path());
    let world = armed(sts, &config, "credential:filter", (None, None)).await;
    let token = world.token_for("alice").await;
    let r = world
        .agent_call(
            CHAT_HOST,
            "/api/conversations.history?channel=eng-general",
            &token,
        )
        .await;
    assert_failed_closed(&world, "credential:filter", r.status().as_u16());
    assert_eq!(chat.requests(), 0);
}

#[tokio::test]
async fn a_panic_reading_the_body_or_in_a_vending_backend_vends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    keygen(&ca);
    let ssh = |sts: &Sts| {
        credential_sidecar_config(
            sts,
            "summarizer-tech",
            &format!(
                "    - {{name: credentials, host: \"{}\", action: vend, services: {{ssh: ssh}}}}\n",
                crate::support::world::VEND_HOST
            ),
            &format!(
                "  - {{name: ssh, ssh_cert: {{ca_key_file: {}, principals: {{engineering: [engineering]}}}}}}\n",
                ca.display()
            ),
        )
    };
    // Nothing listens on port 9: a backend that got as far as its peer would fail there.
    let dead = "http://127.0.0.1:9";
    let public_key = std::fs::read_to_string(ca.with_extension("pub")).unwrap();
    let ssh_ask =
        serde_json::json!({"target_service": "ssh", "action": "login", "public_key": public_key});
    let cases: Vec<(&str, Box<ConfigFor>, String)> = vec![
        ("body", Box::new(ssh), ssh_ask.to_string()),
        ("credential:ssh_cert", Box::new(ssh), ssh_ask.to_string()),
        (
            "credential:aws_sts",
            Box::new(|sts: &Sts| aws_sidecar_config(sts, "summarizer-tech", dead)),
            r#"{"target_service":"s3","action":"read"}"#.to_string(),
        ),
        (
            "credential:postgres",
            Box::new(|sts: &Sts| pg_sidecar_config(sts, 9, "1m", "1m")),
            r#"{"target_service":"postgres","action":"connect"}"#.to_string(),
        ),
    ];
    for (point, config, ask) in cases {
        let sts = Sts::start().await;
        let config = config(&sts);
        let world = armed(sts, &config, point, (None, None)).await;
        let token = world.token_for("alice").await;
        let r = world.vend(Some(&token), &ask).await;
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_failed_closed(&world, point, status);
        for secret in ["certificate", "AccessKeyId", "access_key_id", "password"] {
            assert!(!body.contains(secret), "{point}: {body}");
        }
    }
}

#[tokio::test]
async fn a_panic_narrowing_a_tool_list_never_shows_the_agent_the_unnarrowed_list() {
    let s = crate::cases::mcp::setup_with_env(&[("ACTBRIDGE_FAULT", "narrow")]).await;
    let r = s
        .post(r#"{"jsonrpc":"2.0","id":"l1","method":"tools/list"}"#, &[])
        .await;
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_failed_closed(&s.agent, "narrow", status);
    assert!(!body.contains("delete_document"), "{body}");
}
