//! Per-identity rate limits shared by every replica through the Redis of `state.redis`:
//! a (user, agent, route) bucket is used up across replicas, not per replica; another
//! user has a bucket of their own; the refusal is 429 with `Retry-After`; Redis gone
//! refuses (503) or, with `on_unavailable: allow`, lets through and counts it.

use super::fleet::replica;
use super::outcomes::{config, policies};
use super::*;
use crate::support::config_edit::ConfigEdit;
use crate::support::redis::Redis;

/// [`config`] with its Redis at `url` and a limit of 4 a minute per (user, agent, route)
/// on the document service; `on_unavailable` as given.
fn limited(sts: &Sts, policies: &std::path::Path, url: &str, on_unavailable: &str) -> String {
    ConfigEdit::of(&config(sts, policies, ""))
        .set("state", &format!("{{redis: {{url: '{url}', timeout: 200ms}}}}"))
        .set(
            "rate_limits",
            &format!(
                "{{on_unavailable: {on_unavailable}, limits: [{{name: docs-per-caller, per: [user, agent, route], rate: 4/minute, routes: [document-service]}}]}}"
            ),
        )
        .yaml()
}

#[tokio::test]
async fn a_rate_limit_is_shared_by_every_replica_and_redis_gone_refuses_or_counts() {
    use Expect::*;
    let sts = Sts::start().await;
    let mut redis = Redis::start();
    let dir = policies();
    let yaml = limited(&sts, dir.path(), &redis.url(), "refuse");
    let replicas = [
        replica(&yaml).await,
        replica(&yaml).await,
        replica(&yaml).await,
    ];
    let alice = format!(
        "Bearer {}",
        sts.delegated("alice", "summarizer-tech", AGENT).await
    );
    let carol = format!(
        "Bearer {}",
        sts.delegated("carol", "summarizer-tech", AGENT).await
    );
    let docs = docs_row();
    let mut failures = Vec::new();

    // Four across the three replicas, then the fifth is refused wherever it lands.
    for i in 0..4 {
        let got = decide(&replicas[i % 3].p, &docs, Some(alice.clone())).await;
        note(
            &mut failures,
            &format!("call {i}"),
            &got,
            ForwardWithNewAuthorization,
            &alice,
        );
    }
    for (i, r) in replicas.iter().enumerate() {
        let got = decide(&r.p, &docs, Some(alice.clone())).await;
        note(
            &mut failures,
            &format!("over the limit at replica {i}"),
            &got,
            Deny(429, "rate_limited"),
            &alice,
        );
        // One call every 15 s: the client is told to come back within that.
        match &got {
            Ok(Decision::Deny(d)) | Err(d)
                if d.retry_after.is_some_and(|s| (1..=15).contains(&s)) => {}
            other => failures.push(format!(
                "replica {i}: Retry-After not within 15 s: {other:?}"
            )),
        }
    }
    // Another user's bucket is their own; another route is not limited.
    let got = decide(&replicas[1].p, &docs, Some(carol.clone())).await;
    note(
        &mut failures,
        "carol",
        &got,
        ForwardWithNewAuthorization,
        &carol,
    );
    // Counted where refused, for the alert.
    let text = replicas[2].p.metrics().encode();
    if !text.contains(r#"actbridge_rate_limited_total{limit="docs-per-caller"} 1"#) {
        failures.push(format!(
            "replica 2's metrics: {}",
            text.lines()
                .filter(|l| l.contains("rate_limit"))
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }

    // Redis gone: refused (fail closed) — or let through and counted, as configured.
    redis.stop();
    let got = decide(&replicas[0].p, &docs, Some(carol.clone())).await;
    note(
        &mut failures,
        "Redis gone",
        &got,
        Deny(503, "rate_limit_unavailable"),
        &carol,
    );
    let open = replica(&limited(&sts, dir.path(), &redis.url(), "allow")).await;
    let got = decide(&open.p, &docs, Some(carol.clone())).await;
    note(
        &mut failures,
        "Redis gone, on_unavailable: allow",
        &got,
        ForwardWithNewAuthorization,
        &carol,
    );
    if !open
        .p
        .metrics()
        .encode()
        .contains("actbridge_rate_limit_unchecked_total 1")
    {
        failures.push("the unchecked request is not counted".into());
    }
    // Redis back (empty): limited again with no restart.
    redis.restart();
    let mut got = decide(&replicas[0].p, &docs, Some(carol.clone())).await;
    for _ in 0..20 {
        if verdict(&ForwardWithNewAuthorization, &got, &carol).is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        got = decide(&replicas[0].p, &docs, Some(carol.clone())).await;
    }
    note(
        &mut failures,
        "Redis back",
        &got,
        ForwardWithNewAuthorization,
        &carol,
    );
    all_passed(&failures, "steps");
}
