//! Test-only fault injection: with the cargo feature `fault-injection`, the environment
//! variable `ACTBRIDGE_FAULT=<point>` makes the stage at that point panic, so the tests
//! can show that no abnormal end lets a request through (docs/reliability.md). Without
//! the feature — the release image, `cargo build` — every point compiles to nothing.
//!
//! The points: `verify` (token verification), `policy` (a policy decision), `exchange`
//! (a token exchange), `credential:<kind>` (a credential backend's mint or apply, kind
//! `aws_sts`, `github_app`, `filter`, `postgres`, `ssh_cert`), `body` (reading a
//! request body), `narrow` (narrowing a response).

/// Panics when `ACTBRIDGE_FAULT` names `point` (feature `fault-injection` only).
#[cfg(feature = "fault-injection")]
pub(crate) fn point(point: &str) {
    static FAULT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let armed = FAULT.get_or_init(|| std::env::var("ACTBRIDGE_FAULT").ok());
    if armed.as_deref() == Some(point) {
        panic!("injected fault at `{point}` (ACTBRIDGE_FAULT)");
    }
}

/// Without the feature `fault-injection`: nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_point: &str) {}
