//! A revocation posted to one replica is enforced by every replica sharing the Redis of
//! `state.redis`: within a second through the announcement, within `sync_interval` when
//! the announcement never comes; while Redis is gone each replica enforces the last
//! list it read (and says how old it is), a change is refused rather than half made,
//! and a Redis that comes back empty is filled again from the replicas' copies.

use std::time::Duration;

use super::fleet::{Replica, alice_with, fleet_config, replica, until};
use super::*;
use crate::support::config_edit::ConfigEdit;
use crate::support::redis::Redis;

/// An inbound request any verified token may make.
fn data() -> Row {
    Row {
        direction: "inbound",
        envoy: None,
        ..row("", "app", "/data", Expect::ForwardWithIdentity)
    }
}

fn revoke(kind: RevocationKind, value: &str) -> Revocation {
    Revocation {
        kind,
        value: value.into(),
        reason: Some("fleet test".into()),
        by: "bob".into(),
        at: 0,
    }
}

/// Whether `r` refuses `token` as revoked.
async fn refuses(r: &Replica, token: &str) -> bool {
    let got = decide(&r.p, &data(), Some(token.to_string())).await;
    verdict(&Expect::Deny(401, "token_revoked"), &got, token).is_ok()
}

/// Whether `r` serves `token`.
async fn serves(r: &Replica, token: &str) -> bool {
    let got = decide(&r.p, &data(), Some(token.to_string())).await;
    verdict(&Expect::ForwardWithIdentity, &got, token).is_ok()
}

#[tokio::test]
async fn a_revocation_posted_to_one_replica_is_enforced_by_all_within_a_second() {
    let sts = Sts::start().await;
    let mut redis = Redis::start();
    // A long sync interval: what reaches the replicas within a second is the announcement.
    let config = ConfigEdit::of(&fleet_config(&sts, &redis.url()))
        .set("state.redis.sync_interval", "30s")
        .yaml();
    let replicas = [
        replica(&config).await,
        replica(&config).await,
        replica(&config).await,
    ];
    let token = alice_with(&sts, "revoked-1").await;
    let mut failures = Vec::new();
    for (i, r) in replicas.iter().enumerate() {
        if !serves(r, &token).await {
            failures.push(format!("replica {i} refuses alice before any revocation"));
        }
    }

    // Revoked at replica 0: every replica refuses within a second.
    replicas[0]
        .state
        .revocations
        .add(revoke(RevocationKind::User, "alice"))
        .await
        .unwrap();
    for (i, r) in replicas.iter().enumerate() {
        match until(Duration::from_secs(1), async || refuses(r, &token).await).await {
            Some(took) => eprintln!("replica {i} enforces the revocation after {took:?}"),
            None => failures.push(format!(
                "replica {i} did not enforce the revocation within 1 s"
            )),
        }
    }
    // The replicas that learnt of it dropped their caches, as the admin API does where
    // the change is made.
    for (i, r) in replicas.iter().enumerate().skip(1) {
        if r.caches_dropped.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            failures.push(format!("replica {i} kept its caches across the revocation"));
        }
    }
    // Lifted at replica 1: every replica serves alice again within a second.
    let removed = replicas[1]
        .state
        .revocations
        .remove(RevocationKind::User, "alice")
        .await
        .unwrap();
    if !removed {
        failures.push("replica 1 did not find the revocation replica 0 made".into());
    }
    for (i, r) in replicas.iter().enumerate() {
        if until(Duration::from_secs(1), async || serves(r, &token).await)
            .await
            .is_none()
        {
            failures.push(format!(
                "replica {i} still refuses alice 1 s after the lift"
            ));
        }
    }

    // Redis gone: the last list read is enforced, its age reported, and a change is
    // refused rather than made here only.
    replicas[2]
        .state
        .revocations
        .add(revoke(RevocationKind::User, "alice"))
        .await
        .unwrap();
    for r in &replicas {
        until(Duration::from_secs(1), async || refuses(r, &token).await).await;
    }
    redis.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (i, r) in replicas.iter().enumerate() {
        if !refuses(r, &token).await {
            failures.push(format!(
                "replica {i} forgot the revocation when Redis went away"
            ));
        }
        match r.state.revocations.staleness() {
            Some(age) if age >= Duration::from_millis(300) => {}
            other => failures.push(format!("replica {i} reports the list's age as {other:?}")),
        }
    }
    let refused = replicas[0]
        .state
        .revocations
        .add(revoke(
            RevocationKind::Agent,
            "spiffe://demo.example.com/agent/other",
        ))
        .await;
    if !matches!(
        refused,
        Err(actbridge::state::revocations::RevocationError::Unavailable(
            _
        ))
    ) {
        failures.push(format!(
            "a revocation made while Redis is gone: {refused:?}"
        ));
    }

    // Redis back, empty (no persistence): the replicas fill it from their copies, so a
    // replica that starts now, with no copy of its own, enforces the revocation too.
    redis.restart();
    let newcomer = replica(&config).await;
    match until(Duration::from_secs(5), async || {
        refuses(&newcomer, &token).await
    })
    .await
    {
        Some(took) => eprintln!("a new replica enforces the refilled list after {took:?}"),
        None => failures.push("Redis came back empty and the revocation was lost".into()),
    }
    for (i, r) in replicas.iter().enumerate() {
        if r.state.revocations.staleness() > Some(Duration::from_secs(5)) {
            failures.push(format!(
                "replica {i} did not sync again after Redis came back"
            ));
        }
    }
    all_passed(&failures, "steps");
}

/// A change no replica announced (written straight into Redis, as a lost announcement
/// would leave it) is enforced at the next `sync_interval`.
#[tokio::test]
async fn an_unannounced_change_is_enforced_at_the_next_sync() {
    let sts = Sts::start().await;
    let redis = Redis::start();
    let config = ConfigEdit::of(&fleet_config(&sts, &redis.url()))
        .set("state.redis.sync_interval", "300ms")
        .yaml();
    let r = replica(&config).await;
    let token = alice_with(&sts, "unannounced-1").await;
    assert!(serves(&r, &token).await, "alice is served before");
    let entry = serde_json::to_string(&revoke(RevocationKind::User, "alice")).unwrap();
    let mut conn = redis.connection();
    redis::pipe()
        .hset("actbridge:revocations", "user:alice", entry)
        .incr("actbridge:revocations:version", 1)
        .exec(&mut conn)
        .unwrap();
    let took = until(Duration::from_secs(2), async || refuses(&r, &token).await).await;
    assert!(
        took.is_some(),
        "an unannounced revocation was not enforced within 2 s (sync_interval 300ms)"
    );
}
