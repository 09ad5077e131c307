//! Human approval through the real Envoy: a request the policy wants a person for is
//! held (longer than Envoy's 3 s message timeout) while the admin API lists it; approved
//! it goes on, denied or timed out it is refused; only admins see and decide; every
//! step is audited with the approver.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::world::{AGENT, Sts, World, sidecar_config};

/// DELETE needs a person; GET does not.
const POLICY: &str = r#"package actbridge

import rego.v1

default decision := {"allow": false, "reason": "no rule allows this request", "grant": [], "approval_required": false}

decision := {"allow": true, "reason": "deleting a document needs a person", "grant": ["engineering"], "approval_required": true} if input.method == "DELETE"

decision := {"allow": true, "reason": "reads are fine", "grant": ["engineering"], "approval_required": false} if input.method == "GET"
"#;

/// Waits until exactly one approval is pending and returns it.
async fn pending(world: &World, url: &str, token: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = world.http.get(url).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        if let Some(first) = v["approvals"].as_array().and_then(|a| a.first()) {
            return first.clone();
        }
        assert!(Instant::now() < deadline, "nothing became pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
// Long by design: one sidecar through approve, deny and timeout in turn.
async fn a_held_request_passes_after_approval_and_is_refused_after_deny_or_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let policy_dir = dir.path().join("policy");
    std::fs::create_dir(&policy_dir).unwrap();
    std::fs::write(policy_dir.join("decision.rego"), POLICY).unwrap();
    let audit = dir.path().join("audit.log");
    let sts = Sts::start().await;
    let config = sidecar_config(&sts)
        + &format!(
            "policy:\n  dir: {}\nadmin_api:\n  listen: 127.0.0.1:{{ADMIN_API}}\n  audiences: [actbridge-admin]\n  roles: [actbridge-admin]\napprovals:\n  timeout: 4s\naudit:\n  path: {}\n",
            policy_dir.display(),
            audit.display()
        );
    let mut world = World::start_with(sts, &config).await;
    let admin = format!("http://127.0.0.1:{}", world.actbridge.admin_api_port);
    let approvals_url = format!("{admin}/approvals");
    let bob = world
        .sts
        .admin_token("bob", "actbridge-admin", &["actbridge-admin"]);
    let carol = world.sts.admin_token("carol", "actbridge-admin", &["user"]);
    let token = world.sts.alice_delegated().await;

    // A read is not held.
    let r = world
        .agent_call("document-service", "/documents/DOC-001", &token)
        .await;
    assert_eq!(r.status(), 200);

    // 1. Held, listed, approved (past Envoy's 3 s message timeout) with the CLI: it goes on.
    let held = {
        let (http, port, t) = (world.http.clone(), world.envoy.outbound_port, token.clone());
        tokio::spawn(async move {
            http.delete(format!("http://127.0.0.1:{port}/documents/DOC-001"))
                .header("host", "document-service")
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
        })
    };
    let asked = pending(&world, &approvals_url, &bob).await;
    assert_eq!(asked["user"], "alice");
    assert_eq!(asked["actors"], json!([AGENT]));
    assert_eq!(asked["method"], "DELETE");
    assert_eq!(asked["path"], "/documents/DOC-001");
    assert_eq!(asked["reason"], "deleting a document needs a person");
    assert_eq!(world.docs.count(), 1, "the held request has not left");
    // Only admins see and decide.
    let r = world
        .http
        .get(&approvals_url)
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let id = asked["id"].as_str().unwrap().to_string();
    let r = world
        .http
        .post(format!("{approvals_url}/{id}/approve"))
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let cli = Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .args(["approvals", "--admin-url", &admin, "list"])
        .env("ACTBRIDGE_ADMIN_TOKEN", &bob)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&cli.stdout);
    assert!(
        listed.contains(&id) && listed.contains("alice via"),
        "{listed}"
    );
    let cli = Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .args(["approvals", "--admin-url", &admin, "approve", &id])
        .env("ACTBRIDGE_ADMIN_TOKEN", &bob)
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let r = held.await.unwrap();
    assert_eq!(r.status(), 200, "{}", world.actbridge.log());
    assert_eq!(world.docs.count(), 2);
    assert_eq!(world.docs.seen()[1].method, "DELETE");

    // 2. Denied through the API: 403, nothing sent.
    let held = {
        let (http, port, t) = (world.http.clone(), world.envoy.outbound_port, token.clone());
        tokio::spawn(async move {
            http.delete(format!("http://127.0.0.1:{port}/documents/DOC-002"))
                .header("host", "document-service")
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
        })
    };
    let id = pending(&world, &approvals_url, &bob).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = world
        .http
        .post(format!("{approvals_url}/{id}/deny"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = held.await.unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "access_denied");
    assert_eq!(world.docs.count(), 2);
    let r = world
        .http
        .post(format!("{approvals_url}/{id}/approve"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "a decided approval cannot be decided again"
    );

    // 3. Nobody decides: refused after the timeout (4 s, past Envoy's 3 s).
    let started = Instant::now();
    let r = world
        .http
        .delete(format!(
            "http://127.0.0.1:{}/documents/DOC-003",
            world.envoy.outbound_port
        ))
        .header("host", "document-service")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "{}", world.envoy.log());
    assert!(started.elapsed() >= Duration::from_secs(4));
    assert_eq!(world.docs.count(), 2);

    // Every step audited, the approver named.
    assert!(world.actbridge.terminate());
    let steps: Vec<(String, Option<String>)> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["kind"] == "approval")
        .map(|r| {
            (
                r["step"].as_str().unwrap().to_string(),
                r["by"].as_str().map(str::to_string),
            )
        })
        .collect();
    let bob_ = Some("bob".to_string());
    assert_eq!(
        steps,
        [
            ("asked".to_string(), None),
            ("approved".to_string(), bob_.clone()),
            ("asked".to_string(), None),
            ("denied".to_string(), bob_),
            ("asked".to_string(), None),
            ("timed_out".to_string(), None),
        ]
    );
}
