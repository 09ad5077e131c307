//! The `aws_sts` credential backend through the real Envoy, against MiniStack (which
//! enforces session policies): S3 requests signed in the sidecar, the vending endpoint,
//! the session policy sent to STS, and fail-closed behaviour when STS is down or refuses.

use crate::support::echo::Echo;
use crate::support::ministack::{
    AwsCreds, BUCKET, DOCUMENTS, MiniStack, REGION, ROLE_ARN, StsRecorder,
};
use crate::support::world::{
    Sts, VEND_HOST, World, agent_id, assert_credential_name, claims_of, credential_sidecar_config,
};

const S3_HOST: &str = "s3.us-east-1.amazonaws.com";

/// The sidecar of the demo agent `agent`: its outbound S3 requests are signed with
/// `documents-s3` sessions from STS at `sts_endpoint`, and `POST /credentials` vends them.
pub(super) fn aws_sidecar_config(sts: &Sts, agent: &str, sts_endpoint: &str) -> String {
    let routes = format!(
        r#"    - name: documents-s3
      host: "{S3_HOST}"
      cluster: aws_s3
      action: credential
      credential: documents-s3
      mode: sign
    - name: documents-s3-vhost
      host: "*.{S3_HOST}"
      cluster: aws_s3
      action: credential
      credential: documents-s3
      mode: sign
    - name: credentials
      host: "{VEND_HOST}"
      action: vend
      services: {{s3: documents-s3}}
"#
    );
    let credentials = format!(
        r#"  - name: documents-s3
    aws_sts:
      role_arn: {ROLE_ARN}
      region: {REGION}
      sts_endpoint: {sts_endpoint}
      bucket: {BUCKET}
      public_prefixes: [public/]
"#
    );
    credential_sidecar_config(sts, agent, &routes, &credentials)
}

/// MiniStack, a recorder in front of its STS, and the sidecar of `agent` whose Envoy
/// sends S3 traffic to `s3_port` (MiniStack unless given).
struct AwsWorld {
    recorder: StsRecorder,
    world: World,
    ministack: MiniStack,
    agent: &'static str,
}

impl AwsWorld {
    async fn start(agent: &'static str) -> AwsWorld {
        Self::start_with_s3(agent, None).await
    }

    async fn start_with_s3(agent: &'static str, s3_port: Option<u16>) -> AwsWorld {
        let ministack = MiniStack::start().await;
        let recorder = StsRecorder::start(&ministack).await;
        let sts = Sts::start().await;
        let config = aws_sidecar_config(&sts, agent, &recorder.endpoint());
        let world = World::builder(sts, &config)
            .aws_s3(s3_port.unwrap_or(ministack.port))
            .start()
            .await;
        AwsWorld {
            recorder,
            world,
            ministack,
            agent,
        }
    }

    /// `user`'s token delegated to this world's agent.
    async fn token(&self, user: &str) -> String {
        self.world
            .sts
            .delegated(user, self.agent, &agent_id(self.agent))
            .await
    }

    /// The agent reads `key` through its Envoy, path-style, with no AWS key.
    async fn read(&self, token: &str, key: &str) -> (u16, String) {
        let r = self
            .world
            .agent_call(S3_HOST, &format!("/{BUCKET}/{key}"), token)
            .await;
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// The agent sends `method path` to `host` through its Envoy, with `token` and `body`.
    async fn send(
        &self,
        method: &str,
        host: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .world
            .http
            .request(
                method.parse().unwrap(),
                format!("http://127.0.0.1:{}{path}", self.world.envoy.outbound_port),
            )
            .header("host", host);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        req.send().await.unwrap()
    }

    /// The agent asks its sidecar for credentials.
    async fn vend(&self, token: Option<&str>, body: &str) -> reqwest::Response {
        self.world.vend(token, body).await
    }

    /// How many requests Envoy sent to the S3 cluster.
    async fn s3_requests(&self) -> u64 {
        self.world
            .envoy
            .stat("cluster.aws_s3.upstream_rq_total")
            .await
    }
}

const READ: &str = r#"{"target_service":"s3","action":"read"}"#;

/// DEMO.md's departments per user and capabilities per agent.
fn departments(name: &str) -> &'static [&'static str] {
    match name {
        "alice" => &["engineering", "finance"],
        "bob" => &["finance", "admin"],
        "carol" => &["hr"],
        "summarizer-hr" => &["hr"],
        "summarizer-tech" => &["finance", "engineering"],
        "reviewer-ops" => &["engineering", "admin"],
        "reviewer-general" => &["engineering", "finance", "admin", "hr"],
        other => panic!("{other}"),
    }
}

/// Whether `user` via `agent` may read the document: a non-empty grant, and every one
/// of its departments in the grant (a public document needs only the grant).
fn may_read(user: &str, agent: &str, doc_departments: &[&str]) -> bool {
    let grant: Vec<&str> = departments(user)
        .iter()
        .filter(|d| departments(agent).contains(d))
        .copied()
        .collect();
    !grant.is_empty() && doc_departments.iter().all(|d| grant.contains(d))
}

fn doc_departments(id: &str) -> &'static [&'static str] {
    match id {
        "DOC-001" => &["engineering"],
        "DOC-002" => &["finance"],
        "DOC-003" => &["admin"],
        "DOC-004" => &["hr"],
        "DOC-005" => &["finance", "engineering"],
        "DOC-006" => &["admin", "finance"],
        "DOC-007" => &[],
        other => panic!("{other}"),
    }
}

/// alice, bob and carol via each of the four agents read the seven documents through
/// their Envoy: exactly the documents the grant covers are served (by MiniStack, with
/// the session's signature), the others are refused by actbridge with 403, and a pair
/// with an empty grant never reaches STS.
#[tokio::test]
async fn signed_s3_reads_follow_the_grant_for_every_user_and_agent() {
    for agent in [
        "summarizer-hr",
        "summarizer-tech",
        "reviewer-ops",
        "reviewer-general",
    ] {
        let w = AwsWorld::start(agent).await;
        for user in ["alice", "bob", "carol"] {
            let token = w.token(user).await;
            let calls_before = w.recorder.calls().len();
            let mut served = 0;
            for (id, key, first_line) in DOCUMENTS {
                let (status, body) = w.read(&token, key).await;
                if may_read(user, agent, doc_departments(id)) {
                    assert_eq!(status, 200, "{user} via {agent} {id}: {body}");
                    assert!(
                        body.starts_with(first_line),
                        "{user} via {agent} {id}: {body}"
                    );
                    served += 1;
                } else {
                    assert_eq!(
                        status, 403,
                        "{user} via {agent} {id} was not refused: {body}"
                    );
                    assert!(!body.contains(first_line));
                }
            }
            let new_calls = w.recorder.calls().len() - calls_before;
            // One session per (user, chain, grant), cached for the other reads; none for
            // an empty grant.
            assert_eq!(new_calls, usize::from(served > 0), "{user} via {agent}");
        }
    }
}

/// The session policy STS receives is exactly the grant: read under each granted
/// department's prefix and the public one, list only there, and an explicit deny for the
/// document under a granted prefix the grant cannot read (DOC-005 needs finance too). The
/// session is named for the user and the agent, and tagged with both.
#[tokio::test]
async fn the_session_policy_sent_to_sts_is_the_grant() {
    let w = AwsWorld::start("reviewer-ops").await;
    let token = w.token("alice").await;
    assert_eq!(w.read(&token, "engineering/roadmap.md").await.0, 200);
    let calls = w.recorder.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    let policy: serde_json::Value = serde_json::from_str(&call["Policy"]).unwrap();
    assert_eq!(
        policy,
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "ReadGrantedPrefixes", "Effect": "Allow", "Action": "s3:GetObject",
                 "Resource": [format!("arn:aws:s3:::{BUCKET}/engineering/*"),
                              format!("arn:aws:s3:::{BUCKET}/public/*")]},
                {"Sid": "ListGrantedPrefixes", "Effect": "Allow", "Action": "s3:ListBucket",
                 "Resource": [format!("arn:aws:s3:::{BUCKET}")],
                 "Condition": {"StringLike": {"s3:prefix":
                    ["engineering/", "engineering/*", "public/", "public/*"]}}},
                {"Sid": "WithheldObjects", "Effect": "Deny", "Action": "s3:GetObject",
                 "Resource": [format!("arn:aws:s3:::{BUCKET}/engineering/budget.md")]}
            ]
        })
    );
    assert_eq!(call["Action"], "AssumeRole");
    assert_eq!(call["RoleArn"], ROLE_ARN);
    assert_credential_name(call["RoleSessionName"].as_str(), "alice-via-reviewer-ops");
    assert_credential_name(call["SourceIdentity"].as_str(), "alice");
    assert_eq!(call["DurationSeconds"], "900");
    let tags: Vec<(&str, &str)> = (1..)
        .map_while(|i| {
            Some((
                call.get(&format!("Tags.member.{i}.Key"))?.as_str(),
                call.get(&format!("Tags.member.{i}.Value"))?.as_str(),
            ))
        })
        .collect();
    let claims = claims_of(&token);
    assert_eq!(
        tags,
        [
            ("actbridge-user", "alice"),
            ("actbridge-issuer", claims["iss"].as_str().unwrap()),
            ("actbridge-subject", claims["sub"].as_str().unwrap()),
            ("actbridge-agent-1", agent_id("reviewer-ops").as_str()),
        ]
    );
    // A key outside the grant is refused by actbridge before STS; a listing is signed
    // only under a granted prefix.
    let (status, body) = w.read(&token, "finance/q4-report.md").await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = w.read(&token, "finance/unlisted.md").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error_description"],
        "the request is outside the permission intersection"
    );
    let r = w
        .world
        .agent_call(
            S3_HOST,
            &format!("/{BUCKET}?list-type=2&prefix=engineering%2F"),
            &token,
        )
        .await;
    let listing = r.text().await.unwrap();
    assert!(listing.contains("engineering/roadmap.md"), "{listing}");
    let r = w
        .world
        .agent_call(
            S3_HOST,
            &format!("/{BUCKET}?list-type=2&prefix=finance%2F"),
            &token,
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        w.recorder.calls().len(),
        1,
        "one cached session served them all"
    );
}

/// Vended credentials are the same scoped session, and AWS (MiniStack) enforces it when
/// they are used directly: the granted prefixes are readable and listable, the rest —
/// including the withheld DOC-005 under a granted prefix — is AccessDenied.
#[tokio::test]
async fn vended_credentials_read_only_the_granted_prefixes() {
    let w = AwsWorld::start("reviewer-ops").await;
    let token = w.token("alice").await;
    let r = w.vend(Some(&token), READ).await;
    assert_eq!(r.status(), 200, "{}", w.world.actbridge.log());
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_credential_name(
        v["session_name"].as_str().unwrap(),
        "alice-via-reviewer-ops",
    );
    assert_eq!(
        v["scoped_prefixes"],
        serde_json::json!(["engineering/", "public/"])
    );
    assert_eq!(v["bucket"], BUCKET);
    let expiration = v["expiration"].as_str().unwrap();
    assert!(
        expiration.len() == 20 && expiration.ends_with('Z') && expiration.contains('T'),
        "RFC 3339: {expiration}"
    );
    let secret = v["secret_access_key"].as_str().unwrap();
    assert!(
        !w.world.actbridge.log().contains(secret),
        "the secret was logged"
    );
    let creds = AwsCreds {
        access_key_id: v["access_key_id"].as_str().unwrap().into(),
        secret_access_key: v["secret_access_key"].as_str().unwrap().into(),
        session_token: Some(v["session_token"].as_str().unwrap().into()),
    };
    let m = &w.ministack;
    let (status, body) = m.get_object(&creds, "engineering/roadmap.md").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("# Engineering Roadmap 2026"));
    assert_eq!(m.get_object(&creds, "public/all-hands.md").await.0, 200);
    for key in [
        "engineering/budget.md",
        "finance/q4-report.md",
        "hr/guidelines.md",
    ] {
        let (status, body) = m.get_object(&creds, key).await;
        assert_eq!(status, 403, "{key}: {body}");
        assert!(body.contains("AccessDenied"), "{key}: {body}");
    }
    assert_eq!(m.list_objects(&creds, "engineering/").await.0, 200);
    let (status, body) = m.list_objects(&creds, "finance/").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("AccessDenied"), "{body}");
    // The same (user, chain, grant) shares one session between signing and vending.
    assert_eq!(w.read(&token, "engineering/roadmap.md").await.0, 200);
    assert_eq!(w.recorder.calls().len(), 1);
}

/// Two trusted issuers each have an `alice` with the same `sub` and username: each gets
/// her own session (her own STS call, a session name of her own), never the other's.
#[tokio::test]
async fn alice_of_a_second_issuer_never_gets_the_first_alices_session() {
    let ministack = MiniStack::start().await;
    let recorder = StsRecorder::start(&ministack).await;
    let (first, second) = (Sts::start().await, Sts::start().await);
    let config = aws_sidecar_config(&first, "reviewer-ops", &recorder.endpoint()).replacen(
        "issuers:\n",
        &format!(
            "issuers:\n  - issuer: {}\n    audiences: [\"{}\"]\n",
            second.service.issuer(),
            agent_id("reviewer-ops")
        ),
        1,
    );
    let id = agent_id("reviewer-ops");
    let theirs = second.delegated("alice", "reviewer-ops", &id).await;
    let world = World::builder(first, &config)
        .aws_s3(ministack.port)
        .start()
        .await;
    let ours = world.sts.delegated("alice", "reviewer-ops", &id).await;
    let (a, b) = (claims_of(&ours), claims_of(&theirs));
    assert_eq!(
        (&a["sub"], &a["preferred_username"]),
        (&b["sub"], &b["preferred_username"])
    );
    assert_ne!(a["iss"], b["iss"]);

    let mut names = Vec::new();
    for token in [&ours, &theirs, &ours] {
        let r = world.vend(Some(token), READ).await;
        assert_eq!(r.status(), 200, "{}", world.actbridge.log());
        let v: serde_json::Value = r.json().await.unwrap();
        names.push(v["session_name"].as_str().unwrap().to_string());
    }
    assert_ne!(names[0], names[1], "two people, one session name");
    assert_eq!(names[0], names[2], "the same person's session is cached");
    let calls = recorder.calls();
    assert_eq!(calls.len(), 2, "one STS call per person: {calls:?}");
    assert_ne!(calls[0]["SourceIdentity"], calls[1]["SourceIdentity"]);
    assert_ne!(
        calls[0]["Tags.member.2.Value"],
        calls[1]["Tags.member.2.Value"]
    );
}

/// The vending endpoint's error statuses: 401 for a missing or bad token, 400 for a bad
/// body, 403 for an empty grant (no STS call), 404/405 for another path or method, 413
/// for an oversized body. Nothing reaches an upstream.
#[tokio::test]
async fn the_vending_endpoint_refuses_with_a_credential_gateways_statuses() {
    let w = AwsWorld::start("summarizer-tech").await;
    let alice = w.token("alice").await;
    let r = w.vend(None, READ).await;
    assert_eq!(r.status(), 401);
    let mut forged = alice.clone();
    forged.pop();
    forged.push(if alice.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(w.vend(Some(&forged), READ).await.status(), 401);
    for body in [
        "not json",
        r#"{"target_service":"s3"}"#,
        r#"{"target_service":"s3","action":"read","extra":1}"#,
        r#"{"target_service":"dynamodb","action":"read"}"#,
        r#"{"target_service":"s3","action":"write"}"#,
    ] {
        let r = w.vend(Some(&alice), body).await;
        assert_eq!(r.status(), 400, "{body}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request", "{body}");
    }
    let r = w.vend(Some(&alice), &" ".repeat(5000)).await;
    assert_eq!(r.status(), 413);
    let carol = w.token("carol").await;
    let r = w.vend(Some(&carol), READ).await;
    assert_eq!(r.status(), 403);
    let r = w
        .send("GET", VEND_HOST, "/credentials", Some(&alice), None)
        .await;
    assert_eq!(r.status(), 405);
    let r = w
        .send("POST", VEND_HOST, "/other", Some(&alice), Some(READ))
        .await;
    assert_eq!(r.status(), 404);
    let r = w
        .send("POST", VEND_HOST, "/credentials", Some(&alice), None)
        .await;
    assert_eq!(r.status(), 400, "no body");
    assert_eq!(w.recorder.calls().len(), 0, "no STS call for any of them");
    assert_eq!(w.s3_requests().await, 0);
    // And a good request works on the same sidecar.
    assert_eq!(w.vend(Some(&alice), READ).await.status(), 200);
}

/// STS down: 503 with Retry-After, from both paths, and no request reaches S3. STS
/// refusing: 502, without AWS's error text. Neither lets the agent's token through.
#[tokio::test]
async fn sts_down_or_refusing_fails_closed() {
    let w = AwsWorld::start("summarizer-tech").await;
    let alice = w.token("alice").await;
    w.recorder.force_error(Some((403, "AccessDenied")));
    let (status, body) = w.read(&alice, "finance/q4-report.md").await;
    assert_eq!(status, 502, "{body}");
    assert!(!body.contains("AccessDenied"), "{body}");
    let r = w.vend(Some(&alice), READ).await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("AccessDenied") && !body.contains(ROLE_ARN),
        "{body}"
    );
    w.recorder.force_error(None);
    w.recorder.stop();
    let (status, body) = w.read(&alice, "finance/q4-report.md").await;
    assert_eq!(status, 503, "{body}");
    let r = w.vend(Some(&alice), READ).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(w.s3_requests().await, 0, "nothing reached S3");
}

/// What reaches S3 is the session's signature and nothing of the agent's: its bearer
/// token and any `x-amz-*` header it sent are gone, the session token is there, and a
/// write, a sub-resource or a presigned URL is refused before STS.
#[tokio::test]
async fn the_signed_request_carries_only_the_sessions_credential() {
    let s3 = Echo::start().await;
    let w = AwsWorld::start_with_s3("summarizer-tech", Some(s3.port)).await;
    let alice = w.token("alice").await;
    let r = w
        .world
        .outbound(S3_HOST, &format!("/{BUCKET}/finance/q4-report.md"))
        .bearer_auth(&alice)
        .header("x-amz-security-token", "agent-supplied")
        .header("x-amz-date", "20000101T000000Z")
        .header("x-amz-meta-note", "agent")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = &s3.seen()[0];
    let auth = seen.header("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=")
            && auth.contains("/us-east-1/s3/aws4_request"),
        "{auth}"
    );
    assert!(!auth.contains(&alice));
    assert_ne!(seen.header("x-amz-security-token"), Some("agent-supplied"));
    assert!(seen.header("x-amz-security-token").is_some());
    assert_ne!(seen.header("x-amz-date"), Some("20000101T000000Z"));
    assert_eq!(
        seen.header("x-amz-content-sha256"),
        Some("UNSIGNED-PAYLOAD")
    );
    assert_eq!(seen.header("x-amz-meta-note"), None);
    assert_eq!(seen.header("host"), Some(S3_HOST));
    let calls = w.recorder.calls().len();
    for (method, path) in [
        ("PUT", format!("/{BUCKET}/finance/new.md")),
        ("DELETE", format!("/{BUCKET}/finance/q4-report.md")),
        ("GET", format!("/{BUCKET}/finance/q4-report.md?acl")),
        (
            "GET",
            format!("/{BUCKET}/finance/q4-report.md?X-Amz-Signature=00"),
        ),
        ("GET", "/other-bucket/finance/q4-report.md".to_string()),
    ] {
        let r = w.send(method, S3_HOST, &path, Some(&alice), None).await;
        assert_eq!(r.status(), 403, "{method} {path}");
    }
    assert_eq!(w.recorder.calls().len(), calls);
    assert_eq!(s3.count(), 1);
}

/// Virtual-hosted addressing (`BUCKET.s3.REGION.amazonaws.com/KEY`) is signed for its
/// own host and served by MiniStack under the same session policy.
#[tokio::test]
async fn virtual_hosted_requests_are_signed_for_their_host() {
    let w = AwsWorld::start("summarizer-tech").await;
    let bob = w.token("bob").await;
    let host = format!("{BUCKET}.{S3_HOST}");
    let r = w
        .world
        .agent_call(&host, "/finance/q4-report.md", &bob)
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().starts_with("# Q4 Financial Report"));
    let r = w.world.agent_call(&host, "/admin/policies.md", &bob).await;
    assert_eq!(r.status(), 403, "summarizer-tech has no admin capability");
    // Another bucket's virtual host with a path that starts with this bucket's name is
    // S3's `other-bucket`, key `BUCKET/…`: never signed, in either method.
    let (calls, sent) = (w.recorder.calls().len(), w.s3_requests().await);
    let other = format!("attacker-logs.{S3_HOST}");
    for method in ["GET", "PUT"] {
        let path = format!("/{BUCKET}/finance/q4-report.md");
        let r = w.send(method, &other, &path, Some(&bob), Some("x")).await;
        assert_eq!(r.status(), 403, "{method} {other}{path}");
    }
    assert_eq!(w.recorder.calls().len(), calls, "no STS call");
    assert_eq!(w.s3_requests().await, sent, "nothing reached S3");
}
