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

/// The shipped bootstrap's outbound routes are exactly the ones `actbridge envoy-routes`
/// generates from the shipped config (`deploy/actbridge.yaml`): the example users copy
/// never drifts from the table actbridge judges by.
#[test]
fn the_shipped_outbound_routes_are_generated_from_the_shipped_config() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = std::fs::read_to_string(root.join("deploy/actbridge.yaml")).unwrap();
    let table = actbridge::config::route_table_from_yaml(&config)
        .unwrap()
        .expect("deploy/actbridge.yaml has outbound routes");
    let generated = actbridge::envoy_routes::outbound_route_config(&table);
    let bootstrap: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(root.join("envoy/sidecar.yaml")).unwrap())
            .unwrap();
    let outbound = bootstrap["static_resources"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "outbound")
        .unwrap();
    let shipped = outbound["filter_chains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["filter_chain_match"]["transport_protocol"] == "raw_buffer")
        .unwrap()["filters"][0]["typed_config"]["route_config"]
        .clone();
    assert_eq!(
        shipped, generated,
        "run `actbridge envoy-routes deploy/actbridge.yaml`"
    );
    // And the CLI prints the same.
    let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .arg("envoy-routes")
        .arg(root.join("deploy/actbridge.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: serde_json::Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, generated);
}

/// The Envoy configs shipped give their ext_proc filters the `message_timeout` that the
/// shipped actbridge config declares (`listen.envoy_message_timeout`, default `3s`), so
/// actbridge's check that every peer times out before it holds for what is deployed.
#[test]
fn the_shipped_envoy_message_timeout_is_the_one_actbridge_checks_against() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config: serde_json::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root.join("deploy/actbridge.yaml")).unwrap(),
    )
    .unwrap();
    let declared = config["listen"]["envoy_message_timeout"]
        .as_str()
        .unwrap_or("3s")
        .to_string();
    let mut seen = 0;
    for dir in ["envoy", "deploy"] {
        for entry in walk(&root.join(dir)) {
            let text = std::fs::read_to_string(&entry).unwrap_or_default();
            for line in text.lines() {
                let line = line.trim_start();
                if let Some(value) = line.strip_prefix("message_timeout:") {
                    let value = value.split('#').next().unwrap().trim();
                    assert_eq!(value, declared, "{}: {line}", entry.display());
                    seen += 1;
                }
            }
        }
    }
    assert!(seen >= 2, "no ext_proc filter found");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
    out
}
