//! A request held for a person by one replica may be approved or denied through any
//! replica sharing the Redis of `state.redis`: the holder learns the decision at once
//! (announced), and Redis not answering refuses the request (fail closed) and the
//! decision, never approving by default.

use std::time::{Duration, Instant};

use actbridge::state::approvals::{DecideError, PendingApproval};

use super::fleet::{Replica, replica};
use super::outcomes::{config, policies};
use super::*;
use crate::support::config_edit::ConfigEdit;
use crate::support::redis::Redis;

/// The one request waiting, as `r` lists it.
async fn listed_at(r: &Replica) -> Option<PendingApproval> {
    for _ in 0..250 {
        if let Ok(all) = r.state.approvals.as_ref().unwrap().list().await
            && let Some(first) = all.into_iter().next()
        {
            return Some(first);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test]
async fn an_approval_given_at_one_replica_releases_the_request_held_by_another() {
    use Expect::*;
    let sts = Sts::start().await;
    let mut redis = Redis::start();
    let dir = policies();
    let yaml = ConfigEdit::of(&config(&sts, dir.path(), ""))
        .set("approvals.timeout", "10s")
        .set(
            "state",
            &format!(
                "{{redis: {{url: '{}', timeout: 200ms, sync_interval: 30s}}}}",
                redis.url()
            ),
        )
        .yaml();
    let (holder, approver) = (replica(&yaml).await, replica(&yaml).await);
    let alice = format!(
        "Bearer {}",
        sts.delegated("alice", "summarizer-tech", AGENT).await
    );
    let asks = row("", "document-service", "/approval", ForwardUnchanged);
    let mut failures = Vec::new();

    for (approve, expect) in [
        (true, ForwardWithNewAuthorization),
        (false, Deny(403, "approval_denied")),
    ] {
        let (got, took) = tokio::join!(decide(&holder.p, &asks, Some(alice.clone())), async {
            let waiting = listed_at(&approver).await?;
            let digest = approve.then_some(waiting.digest.as_str());
            approver
                .state
                .approvals
                .as_ref()
                .unwrap()
                .decide(&waiting.id, approve, "bob", digest)
                .await
                .unwrap();
            Some(Instant::now())
        });
        let what = if approve { "approved" } else { "denied" };
        match took {
            None => failures.push(format!(
                "{what}: the approver's replica never listed the request"
            )),
            Some(at) if at.elapsed() > Duration::from_secs(1) => failures.push(format!(
                "{what}: the holder took {:?} to learn the decision",
                at.elapsed()
            )),
            Some(_) => {}
        }
        note(&mut failures, what, &got, expect, &alice);
        if !approver
            .state
            .approvals
            .as_ref()
            .unwrap()
            .list()
            .await
            .unwrap()
            .is_empty()
        {
            failures.push(format!("{what}: the request is still listed as pending"));
        }
    }

    // A decided approval cannot be decided again, at either replica.
    let (got, ()) = tokio::join!(decide(&holder.p, &asks, Some(alice.clone())), async {
        let waiting = listed_at(&approver).await.expect("held again");
        for r in [&approver, &holder] {
            let a = r.state.approvals.as_ref().unwrap();
            let wrong = a.decide(&waiting.id, true, "bob", Some("0000")).await;
            if wrong != Err(DecideError::DigestMismatch) {
                failures.push(format!("another digest: {wrong:?}"));
            }
        }
        let a = approver.state.approvals.as_ref().unwrap();
        a.decide(&waiting.id, false, "bob", None).await.unwrap();
        let again = holder.state.approvals.as_ref().unwrap();
        let twice = again
            .decide(&waiting.id, true, "bob", Some(&waiting.digest))
            .await;
        if twice != Err(DecideError::NotFound) {
            failures.push(format!("approved after it was denied: {twice:?}"));
        }
    });
    note(
        &mut failures,
        "denied, then approved",
        &got,
        Deny(403, "approval_denied"),
        &alice,
    );

    // Redis gone: nothing is held that nobody else could see, and nothing is decided.
    redis.stop();
    let got = decide(&holder.p, &asks, Some(alice.clone())).await;
    note(
        &mut failures,
        "Redis gone",
        &got,
        Deny(503, "approval_state_unavailable"),
        &alice,
    );
    let listing = approver.state.approvals.as_ref().unwrap().list().await;
    if listing.is_ok() {
        failures.push(format!("listed with Redis gone: {listing:?}"));
    }
    all_passed(&failures, "steps");
}
