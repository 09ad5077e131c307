//! The git revision built, for `actbridge version`, `--version` and the
//! `actbridge_build_info` metric: `git rev-parse` when built from a checkout,
//! `ACTBRIDGE_REVISION` when set (an image built without `.git`), else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ACTBRIDGE_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let revision = std::env::var("ACTBRIDGE_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
                .filter(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=ACTBRIDGE_REVISION={revision}");
}
