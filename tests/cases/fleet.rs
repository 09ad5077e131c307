//! Three actbridge processes behind one real Envoy (its `actbridge` cluster spread over
//! them, each request's ext_proc stream to the next in turn), sharing a real Redis
//! (`state.redis`): a single-use token is accepted once across all of them, a
//! revocation posted to one is enforced by all within a second, an approval given at
//! one releases the request another holds, a rate limit is the fleet's, and Redis
//! killed and restarted mid-run refuses (503) while it is gone and serves again after,
//! with no process restarted.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::actbridge::Actbridge;
use crate::support::config_edit::ConfigEdit;
use crate::support::echo::Echo;
use crate::support::envoy::{Envoy, EnvoyPorts, ExtProcAddr};
use crate::support::redis::Redis;
use crate::support::world::{AGENT, Sts, claims_of, sidecar_config};

/// DELETE needs a person; GET does not.
const POLICY: &str = r#"package actbridge

import rego.v1

default decision := {"allow": false, "reason": "no rule allows this request", "grant": [], "approval_required": false}

decision := {"allow": true, "reason": "deleting needs a person", "grant": ["engineering"], "approval_required": true} if input.method == "DELETE"

decision := {"allow": true, "reason": "reads are fine", "grant": ["engineering"], "approval_required": false} if input.method == "GET"
"#;

struct Fleet {
    sts: Sts,
    redis: Redis,
    replicas: Vec<Actbridge>,
    docs: Echo,
    _app: Echo,
    envoy: Envoy,
    http: reqwest::Client,
    admin: String,
    _dir: tempfile::TempDir,
}

impl Fleet {
    async fn start() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("decision.rego"), POLICY).unwrap();
        let sts = Sts::start().await;
        let redis = Redis::start();
        let config = ConfigEdit::of(&sidecar_config(&sts))
            .set("inbound.single_use_paths", "[{exact: /once}]")
            .set("policy", &format!("{{dir: '{}'}}", dir.path().display()))
            .set("admin_api", "{listen: '127.0.0.1:{ADMIN_API}', audiences: [actbridge-admin], roles: [actbridge-admin]}")
            .set("approvals", "{timeout: 10s}")
            .set(
                "state",
                &format!("{{redis: {{url: '{}', timeout: 200ms, sync_interval: 30s}}}}", redis.url()),
            )
            .set(
                "rate_limits",
                "{limits: [{name: docs-per-user, per: [user, route], rate: 5/minute, routes: [document-service]}]}",
            )
            .yaml();
        let mut replicas = Vec::new();
        for _ in 0..3 {
            replicas.push(Actbridge::start(&config).await);
        }
        let (app, docs) = (Echo::start().await, Echo::start().await);
        let envoy = Envoy::start(&EnvoyPorts {
            ext_proc: ExtProcAddr::TcpReplicas(replicas.iter().map(|r| r.ext_proc_port).collect()),
            sds: None,
            routes: replicas[0].routes(),
            app_port: app.port,
            document_service_port: docs.port,
            aws_s3_port: None,
            github_api_port: None,
        })
        .await;
        let admin = sts.admin_token("bob", "actbridge-admin", &["actbridge-admin"]);
        Fleet {
            sts,
            redis,
            replicas,
            docs,
            _app: app,
            envoy,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            admin,
            _dir: dir,
        }
    }

    /// `token`'s GET of `path` into the pod: its status.
    async fn inbound(&self, path: &str, token: &str) -> u16 {
        self.http
            .get(format!(
                "http://127.0.0.1:{}{path}",
                self.envoy.inbound_port
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// The agent's `method` of `path` on the document service with `token`.
    async fn to_docs(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::Response {
        self.http
            .request(
                method,
                format!("http://127.0.0.1:{}{path}", self.envoy.outbound_port),
            )
            .header("host", "document-service")
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// A request to replica `i`'s admin API.
    fn admin(&self, i: usize, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(
                method,
                format!("http://127.0.0.1:{}{path}", self.replicas[i].admin_api_port),
            )
            .bearer_auth(&self.admin)
    }

    /// alice's own token with `jti` (single use).
    async fn alice_once(&self, jti: &str) -> String {
        let mut claims = claims_of(&self.sts.alice().await);
        claims["jti"] = json!(jti);
        self.sts.sign(claims)
    }

    /// How many requests replica `i` has decided.
    async fn decided(&self, i: usize) -> u64 {
        let text = self
            .http
            .get(format!(
                "http://127.0.0.1:{}/metrics",
                self.replicas[i].admin_port
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with("actbridge_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

#[tokio::test]
// Long by design: one fleet through each shared promise in turn (starting three
// sidecars, Envoy and Redis is most of the cost).
async fn three_replicas_behind_envoy_share_single_use_revocation_approval_and_rate_limits() {
    let f = Fleet::start().await;
    let pids: Vec<u32> = f.replicas.iter().map(Actbridge::pid).collect();
    let mut failures: Vec<String> = Vec::new();

    // Envoy spreads the streams over all three.
    let alice = f.sts.alice().await;
    for _ in 0..6 {
        assert_eq!(f.inbound("/data", &alice).await, 200);
    }
    for i in 0..3 {
        if f.decided(i).await == 0 {
            failures.push(format!(
                "replica {i} decided nothing: Envoy did not spread the streams"
            ));
        }
    }

    // A single-use token, presented six times (twice to each replica): served once.
    let once = f.alice_once("fleet-envoy-1").await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(f.inbound("/once", &once).await);
    }
    if statuses.iter().filter(|s| **s == 200).count() != 1
        || statuses.iter().filter(|s| **s == 401).count() != 5
    {
        failures.push(format!("single use across replicas: {statuses:?}"));
    }

    // Revoked at replica 0: refused through every replica within a second; lifted at
    // replica 1: served again.
    let r = f
        .admin(0, reqwest::Method::POST, "/revocations")
        .json(&json!({"kind": "user", "value": "alice", "reason": "fleet test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let revoked = Instant::now();
    let mut refused = 0;
    while refused < 6 && revoked.elapsed() < Duration::from_secs(1) {
        refused = if f.inbound("/data", &alice).await == 401 {
            refused + 1
        } else {
            0
        };
    }
    if refused < 6 {
        failures.push("the revocation was not enforced by every replica within 1 s".into());
    }
    let r = f
        .admin(
            1,
            reqwest::Method::DELETE,
            "/revocations?kind=user&value=alice",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let lifted = Instant::now();
    let mut served = 0;
    while served < 6 && lifted.elapsed() < Duration::from_secs(1) {
        served = if f.inbound("/data", &alice).await == 200 {
            served + 1
        } else {
            0
        };
    }
    if served < 6 {
        failures.push("the lifted revocation was still enforced somewhere after 1 s".into());
    }

    // Held by one replica, approved through another.
    let carol = f.sts.delegated("carol", "summarizer-tech", AGENT).await;
    let held = {
        let (http, port, t) = (f.http.clone(), f.envoy.outbound_port, carol.clone());
        tokio::spawn(async move {
            http.delete(format!("http://127.0.0.1:{port}/documents/DOC-001"))
                .header("host", "document-service")
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let asked = pending_at(&f, 0).await;
    let id = asked["id"].as_str().unwrap();
    let holder = f
        .replicas
        .iter()
        .position(|r| r.log().contains(id))
        .expect("one replica logs that it holds the request");
    let other = (holder + 1) % 3;
    let r = f
        .admin(
            other,
            reqwest::Method::POST,
            &format!("/approvals/{id}/approve"),
        )
        .json(&json!({"digest": asked["digest"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "approving at replica {other}");
    let approved = Instant::now();
    match tokio::time::timeout(Duration::from_secs(2), held).await {
        Ok(Ok(status)) if status == 200 => {}
        outcome => failures.push(format!(
            "held at replica {holder}, approved at {other}: {outcome:?}"
        )),
    }
    if approved.elapsed() > Duration::from_secs(1) {
        failures.push(format!(
            "the holder took {:?} to learn the approval",
            approved.elapsed()
        ));
    }
    if !f.docs.seen().iter().any(|s| s.method == "DELETE") {
        failures.push("the approved DELETE never reached the document service".into());
    }

    // The rate limit is the fleet's: five reads a minute for alice, wherever they land
    // (the DELETE above was carol's).
    let delegated = f.sts.delegated("alice", "summarizer-tech", AGENT).await;
    let mut got = Vec::new();
    for _ in 0..8 {
        let r = f
            .to_docs(reqwest::Method::GET, "/documents/DOC-001", &delegated)
            .await;
        let retry = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        got.push((r.status().as_u16(), retry));
    }
    let ok = got.iter().filter(|(s, _)| *s == 200).count();
    let limited = got.iter().filter(|(s, r)| *s == 429 && r.is_some()).count();
    if (ok, limited) != (5, 3) {
        failures.push(format!("rate limit across replicas: {got:?}"));
    }

    // Redis killed mid-run, then back: single-use requests are refused (503) while it is
    // gone and served after, by the same processes.
    let mut f = f;
    let mut outcomes = Vec::new();
    for n in 0..30 {
        if n == 10 {
            f.redis.stop();
        }
        if n == 20 {
            f.redis.restart();
        }
        let token = f.alice_once(&format!("mid-run-{n}")).await;
        let mut status = f.inbound("/once", &token).await;
        // After the restart, a replica may need a request to reconnect.
        let retry_until = Instant::now() + Duration::from_secs(2);
        while n >= 20 && status == 503 && Instant::now() < retry_until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            status = f.inbound("/once", &token).await;
        }
        outcomes.push(status);
    }
    let want = [vec![200; 10], vec![503; 10], vec![200; 10]].concat();
    if outcomes != want {
        failures.push(format!("Redis killed at 10, back at 20: {outcomes:?}"));
    }
    let now: Vec<u32> = f.replicas.iter().map(Actbridge::pid).collect();
    if now != pids {
        failures.push("a replica was restarted".into());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The one approval pending, as replica `i` lists it.
async fn pending_at(f: &Fleet, i: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v: Value = f
            .admin(i, reqwest::Method::GET, "/approvals")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(first) = v["approvals"].as_array().and_then(|a| a.first()) {
            return first.clone();
        }
        assert!(Instant::now() < deadline, "nothing became pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
