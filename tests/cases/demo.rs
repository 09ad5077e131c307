//! The main job: `actbridge demo` end to end (token service, actbridge, the real Envoy,
//! MiniStack), as `make demo` runs it.

use std::process::Command;

use crate::support::envoy::envoy_binary;
use crate::support::ministack::ministack_binary;

#[test]
fn the_demo_walks_every_step_and_exits_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .args(["demo", "--root", env!("CARGO_MANIFEST_DIR"), "--envoy"])
        .arg(envoy_binary())
        .arg("--ministack")
        .arg(ministack_binary())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "alice's own token reached it: no",
        "the user and the agents acting for them share no permission",
        "alice's agent reads s3 finance/q4-report.md             -> HTTP 200 # Q4 Financial Report",
        "alice's agent reads s3 hr/guidelines.md                 -> HTTP 403",
        "session \"alice-via-summarizer-tech+",
        "hr/guidelines.md               -> HTTP 403 AccessDenied",
        "Done:",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
}
