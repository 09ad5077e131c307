//! The rules that depend on what came before: single use, custody, revocation, a
//! sidecar without `outbound`, a placeholder dying with its token.

use super::*;
use crate::support::config_edit::ConfigEdit;

/// The sidecar with the inbound protections on: single-use tokens on `/once` (a memory
/// of one), token custody, a passthrough route that forwards `authorization`.
pub(super) fn guarded_config(sts: &Sts) -> String {
    format!(
        r#"
listen:
  ext_proc: tcp://127.0.0.1:1
issuers:
  - issuer: {issuer}
    audiences: ["{AGENT}"]
tokens:
  replay_cache_entries: 1
inbound:
  single_use_paths: [{{exact: /once}}]
  token_custody: true
outbound:
  token_endpoint: {token}
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_post, secret: summarizer-tech-demo-secret}}
  routes:
    - {{name: document-service, host: document-service, cluster: document_service, action: exchange, audience: "{DOCS_AUDIENCE}", scopes: [documents.read]}}
    - {{name: plain, host: plain.example, cluster: plain, action: passthrough, forward_authorization: true}}
policy:
  dir: {policies}
"#,
        issuer = sts.service.issuer(),
        token = sts.service.token_endpoint(),
        policies = policies_dir().display(),
    )
}

/// The rules that depend on what came before — single use, custody, revocation — as
/// one table of steps, in order, on one pipeline; and a sidecar without `outbound`.
#[tokio::test]
// Long by design: a table of steps, each depending on the ones before.
async fn stateful_rules_decide_as_the_table_says() {
    use Expect::*;
    let sts = Sts::start().await;
    let revocations = Arc::new(DenyList::load(None).unwrap());
    let p = pipeline(&guarded_config(&sts), revocations.clone()).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let alice_own = sts.alice().await;
    // alice's own token, re-signed with another `jti` (or none).
    let alice_with = |jti: Option<&str>| {
        let mut claims = crate::support::world::claims_of(&alice_own);
        match jti {
            Some(j) => claims["jti"] = json!(j),
            None => {
                claims.as_object_mut().unwrap().remove("jti");
            }
        }
        format!("Bearer {}", sts.sign(claims))
    };
    let inbound = |path: &'static str| Row {
        direction: "inbound",
        envoy: None,
        ..row("", "app", path, ForwardUnchanged)
    };
    let outbound =
        |authority: &'static str, path: &'static str| row("", authority, path, ForwardUnchanged);

    // Custody: the app gets a placeholder for alice's token.
    let got = decide(&p, &inbound("/data"), Some(format!("Bearer {alice_own}"))).await;
    let placeholder = app_authorization(&got);
    assert!(
        placeholder.starts_with("Bearer actbridge~"),
        "{placeholder}"
    );
    let unknown = "Bearer actbridge~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string();

    let steps: Vec<(&str, Row, Option<String>, Expect)> = vec![
        (
            "a single-use token, first use",
            inbound("/once"),
            Some(alice_with(Some("jti-1"))),
            ForwardWithIdentity,
        ),
        (
            "the same token again",
            inbound("/once"),
            Some(alice_with(Some("jti-1"))),
            Deny(401, "token_replayed"),
        ),
        (
            "another while the memory of one is full",
            inbound("/once"),
            Some(alice_with(Some("jti-2"))),
            Deny(503, "replay_memory_full"),
        ),
        (
            "a single-use path without a jti",
            inbound("/once"),
            Some(alice_with(None)),
            Deny(401, "token_id_missing"),
        ),
        (
            "a placeholder presented inbound",
            inbound("/data"),
            Some(placeholder.clone()),
            Deny(401, "placeholder_misused"),
        ),
        (
            "a placeholder this sidecar never gave out",
            outbound("document-service", "/documents"),
            Some(unknown),
            Deny(401, "placeholder_unknown"),
        ),
        (
            "a placeholder forwarded by a passthrough route",
            outbound("plain.example", "/"),
            Some(placeholder.clone()),
            Deny(401, "placeholder_misused"),
        ),
        (
            "a user's token forwarded by a passthrough route",
            outbound("plain.example", "/"),
            Some(format!("Bearer {alice_own}")),
            Deny(403, "user_token_would_leave"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, r, authorization, expect) in steps {
        let presented = authorization.clone().unwrap_or_default();
        let got = decide(&p, &r, authorization).await;
        if let Err(why) = verdict(&expect, &got, &presented) {
            failures.push(format!("{name}: {why}"));
        }
    }

    // Revocation: alice's user, then the agent.
    let delegated = format!(
        "Bearer {}",
        sts.delegated("alice", "summarizer-tech", AGENT).await
    );
    let docs = outbound("document-service", "/documents");
    for (kind, value, expect) in [
        (RevocationKind::Agent, AGENT, Deny(403, "agent_revoked")),
        (RevocationKind::User, "alice", Deny(401, "token_revoked")),
    ] {
        revocations
            .add(Revocation {
                kind,
                value: value.to_string(),
                reason: None,
                by: "table".into(),
                at: now,
            })
            .await
            .unwrap();
        let got = decide(&p, &docs, Some(delegated.clone())).await;
        if let Err(why) = verdict(&expect, &got, &delegated) {
            failures.push(format!("revoked {value}: {why}"));
        }
        revocations.remove(kind, value).await.unwrap();
    }

    // A sidecar without `outbound` refuses every outbound request.
    let inbound_only = ConfigEdit::of(&guarded_config(&sts))
        .remove("inbound.token_custody")
        .remove("outbound")
        .remove("policy")
        .yaml();
    let p = pipeline(&inbound_only, Arc::new(DenyList::load(None).unwrap())).await;
    let got = decide(&p, &docs, Some(delegated.clone())).await;
    if let Err(why) = verdict(&Deny(403, "outbound_disabled"), &got, &delegated) {
        failures.push(format!("no outbound section: {why}"));
    }
    all_passed(&failures, "steps");
}

/// A placeholder dies with the token it stands for: past the token's `exp` (by the
/// custody's clock, moved by hand instead of slept), it no longer resolves, though the
/// token is still inside the verifier's leeway.
#[tokio::test]
async fn a_placeholder_dies_with_its_token() {
    use Expect::*;
    let sts = Sts::start().await;
    let now = actbridge::clock::now_secs();
    let clock = Clock::manual(now);
    let revocations = Arc::new(DenyList::load(None).unwrap());
    let p = pipeline_on_clock(&guarded_config(&sts), revocations, clock.clone()).await;
    // alice's token delegated to this agent, re-signed to live three seconds.
    let mut claims =
        crate::support::world::claims_of(&sts.delegated("alice", "summarizer-tech", AGENT).await);
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 3);
    let token = sts.sign(claims);
    let inbound = Row {
        direction: "inbound",
        envoy: None,
        ..row("", "app", "/data", ForwardUnchanged)
    };
    let got = decide(&p, &inbound, Some(format!("Bearer {token}"))).await;
    let placeholder = app_authorization(&got);
    let docs = row("", "document-service", "/documents", ForwardUnchanged);
    let got = decide(&p, &docs, Some(placeholder.clone())).await;
    verdict(&ForwardWithNewAuthorization, &got, &placeholder).unwrap();
    clock.advance(3);
    let got = decide(&p, &docs, Some(placeholder.clone())).await;
    verdict(&Deny(401, "placeholder_unknown"), &got, &placeholder).unwrap();
}
