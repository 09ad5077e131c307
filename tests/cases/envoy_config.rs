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
