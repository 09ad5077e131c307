//! The Workload API code the tests' server uses is generated from `proto/workload.proto`
//! (the official SPIFFE Workload API) and checked in at `tests/support/gen/`; this test
//! regenerates it (protox + tonic-prost-build, no `protoc`) and fails on any difference.
//! `ACTBRIDGE_REGENERATE=1 cargo test --test integration proto_bootstrap` rewrites it.

use std::path::Path;

#[test]
fn the_checked_in_workload_api_code_matches_the_proto() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fds = protox::compile([root.join("proto/workload.proto")], [root.join("proto")])
        .expect("proto/workload.proto compiles");
    let out = tempfile::tempdir().unwrap();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(out.path())
        .compile_fds(fds)
        .expect("code generation");
    // The proto declares no package: prost names the file `_.rs`.
    let generated = std::fs::read_to_string(out.path().join("_.rs")).unwrap();
    let checked_in = root.join("tests/support/gen/workload_api.rs");
    if std::env::var_os("ACTBRIDGE_REGENERATE").is_some() {
        std::fs::write(&checked_in, &generated).unwrap();
    }
    let current = std::fs::read_to_string(&checked_in).unwrap_or_default();
    assert!(
        current == generated,
        "tests/support/gen/workload_api.rs is not what proto/workload.proto generates; \
         run: ACTBRIDGE_REGENERATE=1 cargo test --test integration proto_bootstrap"
    );
}
