//! Revocation through the admin API and the real Envoy: only an admin may change the
//! deny list; a revoked agent or user is refused on the very next request; the change
//! is kept in the revocation file and audited with the admin's identity.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::world::{AGENT, Sts, World, sidecar_config};

#[tokio::test]
// Long by design: one deny list through each kind of revocation in turn.
async fn a_revoked_agent_or_user_is_refused_at_once_and_only_admins_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("revocations.json");
    let audit = dir.path().join("audit.log");
    let sts = Sts::start().await;
    let config = sidecar_config(&sts)
        + &format!(
            "admin_api:\n  listen: 127.0.0.1:{{ADMIN_API}}\n  audiences: [actbridge-admin]\n  roles: [actbridge-admin]\nrevocation:\n  file: {}\naudit:\n  path: {}\n",
            file.display(),
            audit.display()
        );
    let mut world = World::start_with(sts, &config).await;
    let admin_url = format!(
        "http://127.0.0.1:{}/revocations",
        world.actbridge.admin_api_port
    );
    let bob = world
        .sts
        .admin_token("bob", "actbridge-admin", &["actbridge-admin"]);
    let revoke_agent = json!({"kind": "agent", "value": AGENT, "reason": "compromised"});

    // Only an admin may change the list.
    let cases = [
        (None, 401),
        (
            Some(world.sts.admin_token("carol", "actbridge-admin", &["user"])),
            403,
        ),
        (
            Some(world.sts.admin_token("bob", AGENT, &["actbridge-admin"])),
            401,
        ),
        (Some("not.a.token".to_string()), 401),
    ];
    for (token, status) in cases {
        let mut req = world.http.post(&admin_url).json(&revoke_agent);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        assert_eq!(req.send().await.unwrap().status(), status);
    }
    let r = world
        .http
        .get(&admin_url)
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    let listed: Value = r.json().await.unwrap();
    assert_eq!(
        listed["revocations"],
        json!([]),
        "nothing was revoked by a refused call"
    );

    // The agent works, is revoked, and its very next request is refused.
    let token = world.sts.alice_delegated().await;
    let ok = world
        .agent_call("document-service", "/documents/DOC-001", &token)
        .await;
    assert_eq!(ok.status(), 200);
    let r = world
        .http
        .post(&admin_url)
        .bearer_auth(&bob)
        .json(&revoke_agent)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let revoked_at = Instant::now();
    let r = world
        .agent_call("document-service", "/documents/DOC-001", &token)
        .await;
    assert!(revoked_at.elapsed() < Duration::from_secs(1));
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "access_denied");
    assert_eq!(world.docs.count(), 1, "the revoked agent reached nothing");
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(kept["revocations"][0]["value"], AGENT);
    assert_eq!(kept["revocations"][0]["by"], "bob");

    // Lifted, the agent works again (a new exchange: the cache was dropped).
    let r = world
        .http
        .delete(format!(
            "{admin_url}?kind=agent&value={}",
            percent_encoding::utf8_percent_encode(AGENT, percent_encoding::NON_ALPHANUMERIC)
        ))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let ok = world
        .agent_call("document-service", "/documents/DOC-001", &token)
        .await;
    assert_eq!(ok.status(), 200);
    assert_ne!(
        world.docs.seen()[0].bearer(),
        world.docs.seen()[1].bearer(),
        "the token minted before the revocation was not served again"
    );

    // A revoked user: 401.
    let r = world
        .http
        .post(&admin_url)
        .bearer_auth(&bob)
        .json(&json!({"kind": "user", "value": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = world
        .agent_call("document-service", "/documents/DOC-001", &token)
        .await;
    assert_eq!(r.status(), 401);
    let r = world
        .http
        .post(&admin_url)
        .bearer_auth(&bob)
        .json(&json!({"kind": "issued_before", "value": "soon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Audited with the admin's identity.
    assert!(world.actbridge.terminate());
    let text = std::fs::read_to_string(&audit).unwrap();
    let admin: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["kind"] == "admin")
        .collect();
    let actions: Vec<(&str, &str)> = admin
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), r["admin"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [("revoke", "bob"), ("unrevoke", "bob"), ("revoke", "bob")],
        "{text}"
    );
    assert_eq!(admin[0]["target"], format!("agent {AGENT}"));
    assert_eq!(admin[0]["reason"], "compromised");
    let denied = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["reason"] == "agent_revoked")
        .expect("the refusal is audited");
    assert_eq!(denied["status"], 403);
}

/// The admin API is on a loopback listener of its own, apart from the probes and metrics
/// the network reaches; `actbridge revocations` drives it, for people and (`-o json`)
/// for scripts.
#[tokio::test]
async fn the_revocations_cli_drives_the_admin_api_on_its_own_listener() {
    let sts = Sts::start().await;
    let config = sidecar_config(&sts)
        + "admin_api:\n  listen: 127.0.0.1:{ADMIN_API}\n  audiences: [actbridge-admin]\n  roles: [actbridge-admin]\n";
    let world = World::start_with(sts, &config).await;
    let bob = world
        .sts
        .admin_token("bob", "actbridge-admin", &["actbridge-admin"]);
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), format!("{bob}\n")).unwrap();
    // The probes' listener does not serve the admin API; the API's does not serve probes.
    let probes = format!("http://127.0.0.1:{}", world.actbridge.admin_port);
    let api = format!("http://127.0.0.1:{}", world.actbridge.admin_api_port);
    for (url, status) in [
        (format!("{probes}/revocations"), 404),
        (format!("{api}/revocations"), 200),
        (format!("{api}/metrics"), 404),
        (format!("{probes}/metrics"), 200),
    ] {
        let r = world.http.get(&url).bearer_auth(&bob).send().await.unwrap();
        assert_eq!(r.status(), status, "{url}");
    }
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_actbridge"))
            .args(args)
            .env("ACTBRIDGE_ADMIN_URL", &api)
            .env("ACTBRIDGE_ADMIN_TOKEN_FILE", token_file.path())
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let token = world.sts.alice_delegated().await;
    let (code, out, err) = cli(&[
        "revocations",
        "add",
        "--kind",
        "agent",
        "--value",
        AGENT,
        "--reason",
        "prompt-injected",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("revoked: agent {AGENT} (by bob at "))
            && out.contains(": prompt-injected"),
        "{out}"
    );
    let r = world
        .agent_call("document-service", "/documents/DOC-001", &token)
        .await;
    assert_eq!(r.status(), 403, "the revocation is enforced");
    let (code, out, _) = cli(&["revocations", "list", "-o", "json"]);
    assert_eq!(code, 0);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["revocations"][0]["kind"], "agent");
    assert_eq!(listed["revocations"][0]["value"], AGENT);
    assert_eq!(listed["revocations"][0]["reason"], "prompt-injected");
    let (code, out, _) = cli(&["revocations", "remove", "--kind", "agent", "--value", AGENT]);
    assert_eq!(code, 0);
    assert_eq!(out, format!("lifted: agent {AGENT}\n"));
    let (code, out, _) = cli(&[
        "revocations",
        "-o",
        "json",
        "remove",
        "--kind",
        "agent",
        "--value",
        AGENT,
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["lifted"],
        false
    );
    let r = world
        .agent_call("document-service", "/documents/DOC-001", &token)
        .await;
    assert_eq!(r.status(), 200, "lifted");
    // A non-admin's token: refused, said on stderr, exit 1.
    std::fs::write(
        token_file.path(),
        world.sts.admin_token("carol", "actbridge-admin", &["user"]),
    )
    .unwrap();
    let (code, _, err) = cli(&["revocations", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("403"), "{err}");
}
