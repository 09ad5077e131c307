//! The main job: `actbridge demo` end to end (token service, actbridge, the real Envoy,
//! MiniStack), as `make demo` runs it (from the repository root, `--root .`), and as
//! `make demo-keycloak` runs it against a real Keycloak.

use std::process::{Command, Output};

use crate::support::envoy::envoy_binary;
use crate::support::keycloak;
use crate::support::ministack::ministack_binary;

/// `actbridge demo --root .` from the repository root with `extra` arguments, as the
/// Makefile runs it; it must exit 0. Its standard output.
fn demo(extra: &[&std::ffi::OsStr]) -> String {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["demo", "--root", ".", "--envoy"])
        .arg(envoy_binary())
        .arg("--ministack")
        .arg(ministack_binary())
        .args(extra)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The lines both walks print alike.
const THE_STORY: &[&str] = &[
    "1. alice logs in at the front end (password grant via agent-portal)",
    "agent holds an opaque placeholder, not a token",
    "sub = ",
    "aud = \"spiffe://demo.example.com/service/document-service\"  (this service only)",
    "alice's own token reached it: no",
    "the user and the agents acting for them share no permission",
    "expired token                                           -> HTTP 401",
    "forged token (payload changed)                          -> HTTP 401",
    "no token                                                -> HTTP 401",
    "agent calls an unlisted host                            -> HTTP 403",
    "alice's agent reads s3 finance/q4-report.md             -> HTTP 200 # Q4 Financial Report",
    "alice's agent reads s3 hr/guidelines.md                 -> HTTP 403",
    "session \"alice-via-summarizer-tech+",
    "hr/guidelines.md               -> HTTP 403 AccessDenied",
    "Done:",
];

fn assert_tells(stdout: &str, lines: &[&str]) {
    for line in lines {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
}

#[test]
fn the_demo_walks_every_step_and_exits_zero() {
    let stdout = demo(&[]);
    assert_tells(&stdout, THE_STORY);
    assert_tells(
        &stdout,
        &["act = {\"client_id\":\"spiffe://demo.example.com/agent/summarizer-tech\""],
    );
}

/// `make demo-keycloak`: the same story against a real Keycloak the demo starts and sets
/// up from the keycloak overlay's realm.json and register-agent.sh; the agent is named by
/// `azp`. Its Keycloak (kc.sh and the JVM it runs) is gone once the demo is. No other
/// Keycloak test runs meanwhile (two Keycloaks on two cores are slow).
#[tokio::test]
async fn the_demo_walks_the_same_story_against_keycloak() {
    let _alone = keycloak::nobody_else().await;
    let dist = keycloak::distribution();
    let stdout =
        tokio::task::spawn_blocking(move || demo(&["--keycloak".as_ref(), dist.as_os_str()]))
            .await
            .unwrap();
    assert_tells(&stdout, THE_STORY);
    assert_tells(
        &stdout,
        &[
            "keycloak        http://127.0.0.1:",
            "azp = \"spiffe://demo.example.com/agent/summarizer-tech\"  (the agent that exchanged it",
        ],
    );
    assert!(!stdout.contains("act = {"), "{stdout}");
    let port: u16 = stdout
        .split("keycloak        http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("the demo prints its Keycloak's port");
    let mut gone = false;
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "the demo's Keycloak still listens on {port}");
}
