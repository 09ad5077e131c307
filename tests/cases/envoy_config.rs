//! Every Envoy file the project ships validates with the real Envoy.

use std::process::Command;

use crate::support::envoy::envoy_binary;

#[test]
fn every_yaml_under_envoy_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            let out = Command::new(envoy_binary())
                .args(["--mode", "validate", "-c"])
                .arg(&p)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 1, "no Envoy configs found");
}
