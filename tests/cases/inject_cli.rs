//! `actbridge inject`: the CLI around the injector (its rules are unit-tested in
//! src/inject/tests.rs).

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn inject(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .arg("inject")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn yaml(text: &[u8]) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_slice(text).unwrap()
}

#[test]
fn inject_writes_the_base_deployment_from_the_plain_example() {
    let plain = root().join("manifests/examples/agent-plain.yaml");
    let out = inject(&["-f", plain.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = std::fs::read(root().join("manifests/base/agent.yaml")).unwrap();
    assert_eq!(yaml(&out.stdout), yaml(&base));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn inject_reads_stdin_and_writes_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.yaml");
    let plain =
        std::fs::read_to_string(root().join("manifests/examples/agent-plain.yaml")).unwrap();
    let out = inject(&["-f", "-", "-o", target.to_str().unwrap()], Some(&plain));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let written = std::fs::read(&target).unwrap();
    // Injecting the result again changes nothing.
    let again = inject(&["-f", target.to_str().unwrap()], None);
    assert!(again.status.success());
    assert_eq!(again.stdout, written);
}

#[test]
fn inject_refuses_naming_the_object_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.yaml");
    let input = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n---\n\
                 apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: node-agent, namespace: ops}\n\
                 spec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n    \
                 spec:\n      hostNetwork: true\n      containers: [{name: app, image: x}]\n";
    let out = inject(&["-f", "-", "-o", target.to_str().unwrap()], Some(input));
    assert_eq!(out.status.code(), Some(65));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Deployment ops/node-agent (document 2, line 4)"),
        "{err}"
    );
    assert!(err.contains("hostNetwork"), "{err}");
    assert!(out.stdout.is_empty());
    assert!(!target.exists(), "nothing is written on refusal");
}

#[test]
fn inject_reports_an_unreadable_file() {
    let out = inject(&["-f", "/nonexistent/deployment.yaml"], None);
    assert_eq!(out.status.code(), Some(74));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/deployment.yaml")
    );
}
