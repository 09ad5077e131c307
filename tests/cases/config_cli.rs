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
                "{base}outbound: {{token_endpoint: 'http://x/t', client: {{client_id: c, auth: {{method: client_secret_post, secret: s}}}}, routes: [{{host: 'a*', action: exchange}}]}}\n"
            ),
            "outbound.routes[0].audience",
        ),
        (
            "listen: {ext_proc: 'tcp://127.0.0.1:9001'}\nissuers: [{issuer: 'http://x/r', algorithms: [HS256]}]\n",
            "issuers[0].algorithms",
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
