//! Every peer actbridge calls while Envoy waits ends before Envoy's ext_proc
//! `message_timeout` (3 s in the shipped filters): a credential backend that accepts the
//! connection and never answers gets actbridge's 503 with `Retry-After`, decided and
//! audited by actbridge — not Envoy's own error after its timeout. A config whose timeout
//! would not end in time is refused at start, naming the key.

use std::time::{Duration, Instant};

use crate::support::config_edit::ConfigEdit;
use crate::support::faulty::{Fault, Faulty};
use crate::support::github::GithubApi;
use crate::support::world::{Sts, World};

/// The shipped filters' `message_timeout`.
const ENVOY_MESSAGE_TIMEOUT: Duration = Duration::from_secs(3);

/// A peer that reads forever and never answers (a PostgreSQL startup message never
/// ends an HTTP head; an HTTP request gets nothing back for a minute).
async fn hung_peer() -> Faulty {
    Faulty::start(Fault::Slow(Duration::from_secs(60), Box::new(Fault::Close))).await
}

/// A sidecar config for the issuer given.
type ConfigFor<'a> = Box<dyn Fn(&Sts) -> String + 'a>;

/// Each backend with its default timeout, in front of a hung peer.
#[tokio::test]
async fn a_hung_credential_backend_gets_actbridges_503_before_envoy_gives_up() {
    let hung = hung_peer().await;
    let github = GithubApi::start().await;
    let cases: Vec<(&str, ConfigFor, &str)> = vec![
        (
            "postgres",
            Box::new(|sts: &Sts| super::postgres::pg_sidecar_config(sts, hung.port, "1m", "1h")),
            r#"{"target_service":"postgres","action":"connect"}"#,
        ),
        (
            "aws_sts",
            Box::new(|sts: &Sts| {
                super::aws::aws_sidecar_config(sts, "summarizer-tech", &hung.url("/"))
            }),
            r#"{"target_service":"s3","action":"read"}"#,
        ),
        (
            "github_app",
            Box::new(|sts: &Sts| {
                let config = super::github::github_sidecar_config(sts, "summarizer-tech", &github);
                ConfigEdit::of(&config)
                    .replace("credentials[name=github].github_app.api_url", &hung.url(""))
                    .yaml()
            }),
            r#"{"target_service":"github","action":"read"}"#,
        ),
    ];
    for (backend, config, ask) in cases {
        let sts = Sts::start().await;
        let config = config(&sts);
        let world = World::start_with(sts, &config).await;
        let alice = world.token_for("alice").await;
        let started = Instant::now();
        let r = world.vend(Some(&alice), ask).await;
        let took = started.elapsed();
        assert_eq!(r.status(), 503, "{backend}: {}", world.actbridge.log());
        assert!(
            r.headers().contains_key("retry-after"),
            "{backend}: a 503 without Retry-After is Envoy's, not actbridge's"
        );
        assert!(
            took < ENVOY_MESSAGE_TIMEOUT,
            "{backend}: {took:?}, not before Envoy's message_timeout"
        );
    }
}

/// A timeout that would outlast Envoy's is refused by `check-config`, naming the key and
/// the limit; raising `listen.envoy_message_timeout` to match the Envoy config accepts it.
#[test]
fn check_config_refuses_a_timeout_envoy_would_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("actbridge.yaml");
    let base = "listen: {ext_proc: 'tcp://127.0.0.1:9001'}\n\
                issuers: [{issuer: 'http://127.0.0.1:1/r', audiences: [a]}]\n\
                outbound:\n  token_endpoint: http://127.0.0.1:1/token\n  token_timeout: 3s\n  \
                client: {client_id: a, auth: {method: client_secret_post, secret: s}}\n";
    std::fs::write(&config, base).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .args(["check-config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted a 3 s token_timeout");
    assert!(
        stderr.contains("outbound.token_timeout") && stderr.contains("envoy_message_timeout"),
        "{stderr}"
    );
    let raised = ConfigEdit::of(base)
        .set("listen.envoy_message_timeout", "4s")
        .yaml();
    std::fs::write(&config, raised).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .args(["check-config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "refused with a 4 s Envoy timeout: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
