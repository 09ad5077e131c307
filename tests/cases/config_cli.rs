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

/// A log filter that does not parse is a configuration error, not a silent fallback to
/// the default (which would hide the lines asked for); `RUST_LOG` is read when
/// `ACTBRIDGE_LOG` is unset.
#[test]
fn a_malformed_log_filter_refuses_to_start_naming_the_variable() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/actbridge.yaml");
    for (var, other) in [("ACTBRIDGE_LOG", "RUST_LOG"), ("RUST_LOG", "ACTBRIDGE_LOG")] {
        for command in [&["check-config"][..], &["serve", "--config"][..]] {
            let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
                .args(command)
                .arg(&p)
                .env(var, "actbridge=loud")
                .env_remove(other)
                .env("DEMO_CLIENT_SECRET", "x")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(78), "{command:?} {var}: {stderr}");
            assert!(
                stderr.contains(var) && stderr.contains("actbridge=loud"),
                "{stderr}"
            );
        }
    }
}

/// `check-config --offline` checks everything but the secrets, which need not be there
/// (CI, a laptop): the README's own example passes without `DEMO_CLIENT_SECRET`, and
/// says which keys it did not read. A mistake elsewhere still fails.
#[test]
fn check_config_offline_needs_no_secret_and_says_what_it_did_not_read() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = root.join("demo/actbridge.yaml");
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
            .args(args)
            .env_remove("DEMO_CLIENT_SECRET")
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["check-config".as_ref(), demo.as_os_str()]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("DEMO_CLIENT_SECRET"), "{err}");
    let (code, out, err) = run(&[
        "check-config".as_ref(),
        "--offline".as_ref(),
        demo.as_os_str(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("not read (--offline): outbound.client.auth.secret_env"),
        "{out}"
    );

    // Every kind of secret missing at once: a client key, a GitHub App key, an SSH CA
    // key, the audit signing key, Redis' password and client key.
    let dir = tempfile::tempdir().unwrap();
    let policies = root.join("policies");
    let yaml = format!(
        r#"listen: {{ext_proc: 'tcp://127.0.0.1:9001'}}
issuers: [{{issuer: 'http://127.0.0.1:1/realms/demo', audiences: [a]}}]
outbound:
  token_endpoint: http://127.0.0.1:1/t
  client: {{client_id: c, auth: {{method: private_key_jwt, private_key_file: missing/client.pem, algorithm: ES256}}}}
  routes:
    - {{host: api.github.com, action: credential, credential: gh, mode: inject, cluster: github}}
    - {{host: credentials.local, action: vend, services: {{ssh: ssh}}}}
credentials:
  - name: gh
    github_app: {{app_id: 1, installation_id: 2, private_key_file: missing/gh.pem, owner: acme, repositories: {{repo: [r]}}}}
  - name: ssh
    ssh_cert: {{ca_key_file: missing/ca, principals: {{ssh: [deploy]}}}}
policy: {{dir: '{}'}}
audit:
  path: audit.log
  checkpoint: {{signing_key_file: missing/audit.pem}}
state:
  redis: {{url: 'rediss://127.0.0.1:6380', password_file: missing/redis-password, cert_file: '{}', key_file: missing/redis.key}}
"#,
        policies.display(),
        root.join("Cargo.toml").display()
    );
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, &yaml).unwrap();
    let (code, _, err) = run(&["check-config".as_ref(), cfg.as_os_str()]);
    assert_eq!(code, 78, "{err}");
    let (code, out, err) = run(&[
        "check-config".as_ref(),
        "--offline".as_ref(),
        cfg.as_os_str(),
    ]);
    assert_eq!(code, 0, "{err}");
    for key in [
        "outbound.client.auth.private_key_file",
        "credentials[0].github_app.private_key_file",
        "credentials[1].ssh_cert.ca_key_file",
        "audit.checkpoint.signing_key_file",
        "state.redis.password_file",
        "state.redis.key_file",
    ] {
        assert!(out.contains(key), "{key} not listed: {out}");
    }
    // Offline is not lenient about anything else.
    std::fs::write(&cfg, yaml.replace("action: vend", "action: vnd")).unwrap();
    let (code, _, err) = run(&[
        "check-config".as_ref(),
        "--offline".as_ref(),
        cfg.as_os_str(),
    ]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("vnd"), "{err}");
}

/// Every relative path in the file — secrets and keys as well as the policy directory —
/// is read from the file's own directory, whatever the working directory.
#[test]
fn relative_paths_are_read_from_the_config_files_directory() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/client"), "s3cret\n").unwrap();
    std::os::unix::fs::symlink(root.join("policies"), dir.path().join("policies")).unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        "listen: {ext_proc: 'tcp://127.0.0.1:9001'}\nissuers: [{issuer: 'http://127.0.0.1:1/realms/demo', audiences: [a]}]\noutbound:\n  token_endpoint: http://127.0.0.1:1/t\n  client: {client_id: c, auth: {method: client_secret_post, secret_file: secrets/client}}\npolicy: {dir: policies}\n",
    )
    .unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .arg("check-config")
        .arg(&cfg)
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `${VAR}` is replaced by the variable's value; unset, the start is refused naming the
/// variable and the line; a value cannot change the file's structure.
#[test]
fn variables_in_the_file_are_replaced_and_an_unset_one_is_named() {
    let yaml = "listen: {ext_proc: 'tcp://127.0.0.1:${EXT_PROC_PORT}'}\nissuers:\n  - issuer: 'http://${IDP_HOST}/realms/demo'\n    audiences: [\"${AUDIENCE:-summarizer}\"]\n";
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let check = |vars: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
            .arg("check-config")
            .arg(&cfg)
            .env_remove("EXT_PROC_PORT")
            .env_remove("IDP_HOST")
            .env_remove("AUDIENCE")
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = check(&[("EXT_PROC_PORT", "9001"), ("IDP_HOST", "127.0.0.1:8180")]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = check(&[("EXT_PROC_PORT", "9001")]);
    assert_eq!(code, 78);
    assert!(
        err.contains("c.yaml:3: ") && err.contains("IDP_HOST"),
        "{err}"
    );
    // A value that would add a key to the document is refused where it is not quoted.
    let (code, err) = check(&[("EXT_PROC_PORT", "9001"), ("IDP_HOST", "h'\nadmin_api: {}")]);
    assert_eq!(code, 78, "{err}");
}

/// `-o json` prints one JSON document for scripts; `version` names the revision;
/// `completions` prints a script for the shell.
#[test]
fn scripts_get_json_and_shells_get_completions() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let json = |args: &[&str]| -> (i32, serde_json::Value) {
        let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
            .args(args)
            .output()
            .unwrap();
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        (out.status.code().unwrap(), v)
    };
    let (code, v) = json(&["version", "-o", "json"]);
    assert_eq!(code, 0);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let revision = v["revision"].as_str().unwrap();
    assert!(
        revision == "unknown"
            || (revision.len() == 12 && revision.chars().all(|c| c.is_ascii_hexdigit())),
        "{revision}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("c.yaml");
    std::fs::write(
        &bad,
        "listen: {ext_proc: 'tcp://127.0.0.1:9001'}\nissuers:\n  - issuer: http://x/r\n    leeway: 1h\n    colour: red\n",
    )
    .unwrap();
    let (code, v) = json(&["check-config", "-o", "json", bad.to_str().unwrap()]);
    assert_eq!(code, 78);
    assert_eq!(v["ok"], false);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{v}");
    assert_eq!(problems[0]["key"], "issuers[0].colour");
    assert_eq!(problems[0]["line"], 5);
    let demo = root.join("demo/actbridge.yaml");
    let (code, v) = json(&[
        "check-config",
        "-o",
        "json",
        "--offline",
        demo.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["not_read"][0], "outbound.client.auth.secret_env");
    let policies = root.join("policies");
    let (code, v) = json(&["policy", "test", "-o", "json", policies.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["failed"], 0);
    assert!(v["passed"].as_u64().unwrap() > 10);
    assert!(
        v["tests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["passed"] == true)
    );
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
            .args(["completions", shell])
            .output()
            .unwrap();
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        assert!(
            script.contains("revocations") && script.contains("check-config"),
            "{shell}"
        );
    }
}
