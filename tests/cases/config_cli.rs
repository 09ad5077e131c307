//! `actbridge check-config` and start-up refusal name the key at fault.

use std::process::Command;

fn check(yaml: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.yaml");
    std::fs::write(&p, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .args(["check-config"])
        .arg(&p)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_shipped_demo_config_is_valid() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/actbridge.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .args(["check-config"])
        .arg(&p)
        .env("DEMO_CLIENT_SECRET", "x")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The image's default config, laid out as in the image (`/etc/actbridge/` with
/// `policies/` beside it), is valid; only the client-secret mount is a temporary file.
#[test]
fn the_images_default_config_is_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let etc = tempfile::tempdir().unwrap();
    let secret = etc.path().join("client-secret");
    std::fs::write(&secret, "x\n").unwrap();
    std::os::unix::fs::symlink(root.join("policies"), etc.path().join("policies")).unwrap();
    let text = std::fs::read_to_string(root.join("deploy/actbridge.yaml")).unwrap();
    let mount = "/run/secrets/actbridge/client-secret";
    assert!(text.contains(mount));
    let config = etc.path().join("actbridge.yaml");
    std::fs::write(&config, text.replace(mount, secret.to_str().unwrap())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn invalid_configs_are_refused_naming_the_key() {
    let base = "listen: {ext_proc: 'tcp://127.0.0.1:9001'}\nissuers: [{issuer: 'http://127.0.0.1:1/realms/demo', audiences: [a]}]\n";
    let cases = [
        (
            "listen: {ext_proc: 'udp://x'}\nissuers: []\n",
            "listen.ext_proc",
        ),
        (
            "listen: {ext_proc: 'tcp://127.0.0.1:9001'}\nissuers: []\n",
            "issuers",
        ),
        (
            &format!("{base}inbound: {{colour: red}}\n") as &str,
            "inbound",
        ),
        (
            &format!(
                "{base}outbound: {{token_endpoint: 'http://x/t', client: {{client_id: c, auth: {{method: client_secret_post}}}}}}\n"
            ),
            "outbound.client.auth",
        ),
        (
            &format!(
                "{base}outbound: {{token_endpoint: 'http://x/t', client: {{client_id: c, auth: {{method: client_secret_post, secret: s}}}}, routes: [{{host: a, action: exchange}}]}}\n"
            ),
            "outbound.routes[0].audience",
        ),
        (
            &format!(
                "{base}outbound: {{token_endpoint: 'http://x/t', client: {{client_id: c, auth: {{method: client_secret_post, secret: s}}}}, routes: [{{host: 'a*', action: deny}}]}}\n"
            ),
            "outbound.routes[0].host",
        ),
        (
            "listen: {ext_proc: 'tcp://127.0.0.1:9001'}\nissuers: [{issuer: 'http://x/r', algorithms: [HS256]}]\n",
            "issuers[0].algorithms",
        ),
        (
            "listen: {ext_proc: 'tcp://127.0.0.1:9001'}\nissuers: [{issuer: 'http://x/r', jwks_refresh_interval: 10m, jwks_max_age: 5m}]\n",
            "issuers[0].jwks_max_age",
        ),
    ];
    for (yaml, key) in cases {
        let (code, err) = check(yaml);
        assert_eq!(code, 78, "{yaml}");
        assert!(
            err.contains(&format!("`{key}")),
            "expected key `{key}` in: {err}"
        );
    }
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_policy_that_does_not_compile_refuses_to_start_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("decision.rego"),
        "package actbridge\nimport rego.v1\n\ndecision := {\n",
    )
    .unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        "listen: {ext_proc: 'tcp://127.0.0.1:9001'}\nissuers: [{issuer: 'http://127.0.0.1:1/r', audiences: [a]}]\npolicy: {dir: .}\n",
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    for args in [["check-config", cfg], ["serve", "--config"]] {
        let mut all: Vec<&str> = args.to_vec();
        if args[0] == "serve" {
            all.push(cfg);
        }
        let (code, _, err) = run(&all);
        assert_eq!(code, 78, "{all:?}: {err}");
        assert!(err.contains("decision.rego:"), "file and line named: {err}");
    }
}

#[test]
fn policy_test_and_policy_eval_work_on_the_shipped_policy() {
    let policies = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
    let (code, out, err) = run(&["policy", "test", policies]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(" passed, 0 failed"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.json");
    std::fs::write(
        &input,
        serde_json::json!({
            "direction": "outbound", "route": "document-service", "method": "GET",
            "action": "read", "path": "/documents/DOC-005",
            "resource": ["documents", "DOC-005"],
            "user": {"sub": "u", "username": "alice", "groups": ["engineering", "finance"]},
            "actors": [{"client_id": "spiffe://demo.example.com/agent/reviewer-ops"}],
        })
        .to_string(),
    )
    .unwrap();
    let (code, out, err) = run(&[
        "policy",
        "eval",
        "--dir",
        policies,
        "--input",
        input.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let decision: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(decision["allow"], false);
    assert_eq!(
        decision["reason"],
        "DOC-005 needs every one of its departments in the grant"
    );
}
