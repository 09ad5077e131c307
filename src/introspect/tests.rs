//! The introspector against the embedded token service on 127.0.0.1:0: answers reused
//! only while `cache_ttl` and the token's life allow, dropped by `forget_cached`, an
//! answer about another subject refused.

use std::sync::Arc;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{IntrospectError, Introspector};
use crate::clock::now_secs;
use crate::config::{Config, ProcessEnv};
use crate::jwt::VerifiedToken;
use actbridge_sts::{Realm, TokenService};

const AGENT: &str = "spiffe://demo.example.com/agent/summarizer-tech";

struct Peer {
    sts: Arc<TokenService>,
    stop: CancellationToken,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn peer() -> Peer {
    let realm = Realm::from_yaml_str(include_str!("../../demo/realm.yaml")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sts = TokenService::new(realm, &url, None).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(Arc::clone(&sts).serve(listener, stop.clone()));
    Peer { sts, stop }
}

fn introspector(sts: &TokenService, cache_ttl: &str) -> Introspector {
    let yaml = format!(
        r#"
listen: {{ext_proc: "tcp://127.0.0.1:9001"}}
issuers:
  - issuer: {issuer}
    audiences: ["{AGENT}"]
    introspection:
      endpoint: {endpoint}
      client:
        client_id: "{AGENT}"
        auth: {{method: client_secret_basic, secret: summarizer-tech-demo-secret}}
      cache_ttl: {cache_ttl}
"#,
        issuer = sts.issuer(),
        endpoint = sts.introspection_endpoint(),
    );
    Introspector::new(&Config::from_yaml(&yaml, &ProcessEnv).unwrap()).unwrap()
}

/// A token of alice signed by `sts`, and what actbridge would have verified of it
/// (`verified_exp` = the `exp` the cache is capped by).
fn alice(sts: &TokenService, verified_exp: u64) -> (String, VerifiedToken) {
    let jti = uuid::Uuid::new_v4().to_string();
    let token = sts.sign_claims(&json!({
        "iss": sts.issuer(), "sub": "alice-id", "aud": AGENT, "azp": AGENT, "typ": "Bearer",
        "iat": now_secs(), "exp": now_secs() + 300, "jti": jti,
    }));
    let verified = VerifiedToken {
        issuer: sts.issuer(),
        subject: Some("alice-id".into()),
        username: None,
        audiences: vec![AGENT.into()],
        authorized_party: Some(AGENT.into()),
        scopes: Vec::new(),
        groups: Vec::new(),
        roles: Vec::new(),
        expires_at: verified_exp,
        issued_at: None,
        token_id: Some(jti),
        actors: Vec::new(),
        actors_nest: true,
        fingerprint: String::new(),
    };
    (token, verified)
}

async fn revoke(sts: &TokenService, token: &str) {
    let resp = reqwest::Client::new()
        .post(sts.revocation_endpoint())
        .form(&[
            ("client_id", AGENT),
            ("client_secret", "summarizer-tech-demo-secret"),
            ("token", token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn an_active_answer_is_reused_until_forgotten_and_an_inactive_one_never() {
    let p = peer().await;
    let i = introspector(&p.sts, "60s");
    let (token, verified) = alice(&p.sts, now_secs() + 300);
    assert_eq!(i.check(&token, &verified).await, Ok(()));
    assert_eq!(i.check(&token, &verified).await, Ok(()));
    assert_eq!(
        p.sts.stats().introspection,
        1,
        "the second answer was reused"
    );
    assert_eq!(i.cache_stats().snapshot(), (1, 1, 0));

    revoke(&p.sts, &token).await;
    assert_eq!(i.check(&token, &verified).await, Ok(()), "within cache_ttl");
    // A revocation through the admin API forgets every reused answer.
    i.forget_cached();
    assert_eq!(
        i.check(&token, &verified).await,
        Err(IntrospectError::Inactive)
    );
    assert_eq!(
        i.check(&token, &verified).await,
        Err(IntrospectError::Inactive)
    );
    assert_eq!(
        p.sts.stats().introspection,
        3,
        "an inactive answer is not reused"
    );
    // An inactive answer is a successful call, not an upstream error.
    assert_eq!(i.cache_stats().snapshot(), (2, 3, 0));
}

#[tokio::test]
async fn an_answer_is_never_reused_past_the_tokens_exp_nor_without_a_ttl() {
    let p = peer().await;
    // The verified token expires now: nothing is left to reuse the answer for.
    let i = introspector(&p.sts, "60s");
    let (token, verified) = alice(&p.sts, now_secs());
    assert_eq!(i.check(&token, &verified).await, Ok(()));
    assert_eq!(i.check(&token, &verified).await, Ok(()));
    assert_eq!(p.sts.stats().introspection, 2);

    let i = introspector(&p.sts, "0s");
    let (token, verified) = alice(&p.sts, now_secs() + 300);
    assert_eq!(i.check(&token, &verified).await, Ok(()));
    assert_eq!(i.check(&token, &verified).await, Ok(()));
    assert_eq!(p.sts.stats().introspection, 4);
}

#[tokio::test]
async fn an_answer_about_another_subject_or_an_unknown_issuer_is_refused() {
    let p = peer().await;
    let i = introspector(&p.sts, "0s");
    let (token, mut verified) = alice(&p.sts, now_secs() + 300);
    verified.subject = Some("bob-id".into());
    assert_eq!(
        i.check(&token, &verified).await,
        Err(IntrospectError::Mismatch("sub"))
    );
    verified.issuer = "https://elsewhere".into();
    assert_eq!(
        i.check(&token, &verified).await,
        Err(IntrospectError::NotConfigured)
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable() {
    let p = peer().await;
    let i = introspector(&p.sts, "0s");
    let (token, verified) = alice(&p.sts, now_secs() + 300);
    p.stop.cancel();
    // Give the server a moment to stop accepting.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    match i.check(&token, &verified).await {
        Err(IntrospectError::Unavailable(why)) => assert!(!why.contains(&token), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        i.cache_stats().snapshot().2,
        1,
        "counted as an upstream error"
    );
}
