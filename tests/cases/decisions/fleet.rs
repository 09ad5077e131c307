//! Several replicas sharing their single-use memory through a real Redis
//! (`state.redis`): a token is used once across all of them; Redis gone is a refusal
//! (fail closed), Redis back is served again with no restart; a Redis that may evict
//! keys, or that refuses the password, is never trusted with the memory.

use super::*;
use crate::support::config_edit::ConfigEdit;
use crate::support::redis::Redis;

/// A sidecar with single-use tokens on `/once`, its memory in the Redis at `url`.
pub(super) fn fleet_config(sts: &Sts, url: &str) -> String {
    ConfigEdit::of(&format!(
        r#"
listen:
  ext_proc: tcp://127.0.0.1:1
issuers:
  - issuer: {issuer}
    audiences: ["{AGENT}"]
inbound:
  single_use_paths: [{{exact: /once}}]
"#,
        issuer = sts.service.issuer(),
    ))
    .set(
        "state",
        &format!("{{redis: {{url: '{url}', timeout: 200ms}}}}"),
    )
    .yaml()
}

fn once() -> Row {
    Row {
        direction: "inbound",
        envoy: None,
        ..row("", "app", "/once", Expect::ForwardUnchanged)
    }
}

/// alice's token with the `jti` given, signed by the token service.
pub(super) async fn alice_with(sts: &Sts, jti: &str) -> String {
    let mut claims = crate::support::world::claims_of(&sts.alice().await);
    claims["jti"] = json!(jti);
    format!("Bearer {}", sts.sign(claims))
}

#[tokio::test]
async fn a_single_use_token_is_used_once_across_replicas_and_redis_failing_refuses() {
    use Expect::*;
    let sts = Sts::start().await;
    let mut redis = Redis::start();
    let config = fleet_config(&sts, &redis.url());
    let deny_list = || Arc::new(DenyList::load(None).unwrap());
    let replicas = [
        pipeline(&config, deny_list()).await,
        pipeline(&config, deny_list()).await,
        pipeline(&config, deny_list()).await,
    ];
    let mut failures = Vec::new();
    let token = alice_with(&sts, "fleet-1").await;
    // Presented to all three at once: exactly one accepts it.
    let got = futures::future::join_all(
        replicas
            .iter()
            .map(|p| async { decide(p, &once(), Some(token.clone())).await }),
    )
    .await;
    let accepted = got
        .iter()
        .filter(|g| verdict(&ForwardWithIdentity, g, &token).is_ok())
        .count();
    let replayed = got
        .iter()
        .filter(|g| verdict(&Deny(401, "token_replayed"), g, &token).is_ok())
        .count();
    if (accepted, replayed) != (1, 2) {
        failures.push(format!(
            "at once: {accepted} accepted, {replayed} replayed: {got:?}"
        ));
    }
    // And each one, again, refuses it.
    for (i, p) in replicas.iter().enumerate() {
        let got = decide(p, &once(), Some(token.clone())).await;
        note(
            &mut failures,
            &format!("replica {i} again"),
            &got,
            Deny(401, "token_replayed"),
            &token,
        );
    }

    // Redis gone: no single-use token is accepted anywhere (503, Retry-After).
    redis.stop();
    let fresh = alice_with(&sts, "fleet-2").await;
    for (i, p) in replicas.iter().enumerate() {
        let got = decide(p, &once(), Some(fresh.clone())).await;
        note(
            &mut failures,
            &format!("replica {i}, Redis gone"),
            &got,
            Deny(503, "replay_unavailable"),
            &fresh,
        );
        match &got {
            Ok(Decision::Deny(d)) | Err(d) if d.retry_after.is_some() => {}
            other => failures.push(format!(
                "replica {i}, Redis gone: no Retry-After in {other:?}"
            )),
        }
    }
    // Redis back (empty, as after a failover without persistence): served again, no
    // restart, once.
    redis.restart();
    let mut served = Vec::new();
    for (i, p) in replicas.iter().enumerate() {
        let mut got = decide(p, &once(), Some(fresh.clone())).await;
        // The connection manager may need a request to notice the new server.
        for _ in 0..20 {
            if !matches!(&got, Ok(Decision::Deny(d)) | Err(d) if d.reason == "replay_unavailable") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            got = decide(p, &once(), Some(fresh.clone())).await;
        }
        served.push(verdict(&ForwardWithIdentity, &got, &fresh).is_ok());
        if !served[i] {
            note(
                &mut failures,
                &format!("replica {i}, Redis back"),
                &got,
                Deny(401, "token_replayed"),
                &fresh,
            );
        }
    }
    if served.iter().filter(|s| **s).count() != 1 {
        failures.push(format!(
            "Redis back: served by {served:?}, want exactly one"
        ));
    }
    all_passed(&failures, "steps");
}

/// A Redis that may evict keys could forget a live `jti`: it is never used (503, and
/// the log says why); a Redis whose password actbridge does not have is refused too; the
/// right password works.
#[tokio::test]
async fn an_evicting_redis_or_a_wrong_password_is_never_trusted() {
    use Expect::*;
    let sts = Sts::start().await;
    let mut failures = Vec::new();
    let evicting = Redis::start_with(None, "allkeys-lru");
    let p = pipeline(
        &fleet_config(&sts, &evicting.url()),
        Arc::new(DenyList::load(None).unwrap()),
    )
    .await;
    let token = alice_with(&sts, "evict-1").await;
    let got = decide(&p, &once(), Some(token.clone())).await;
    note(
        &mut failures,
        "allkeys-lru",
        &got,
        Deny(503, "replay_unavailable"),
        &token,
    );

    let guarded = Redis::start_with(Some("s3cret-redis"), "noeviction");
    for (password, expect) in [
        ("wrong", Deny(503, "replay_unavailable")),
        ("s3cret-redis", ForwardWithIdentity),
    ] {
        let config = ConfigEdit::of(&fleet_config(&sts, &guarded.url()))
            .set("state.redis.password_env", "REDIS_PASSWORD")
            .yaml();
        let env =
            std::collections::HashMap::from([("REDIS_PASSWORD".to_string(), password.to_string())]);
        let cfg = Config::from_yaml(&config, &env).unwrap();
        assert!(
            !format!("{cfg:?}").contains(password),
            "the password is printed"
        );
        let state = State::new(&cfg, Arc::new(DenyList::load(None).unwrap()));
        let p = pipeline_on(&cfg, &state).await;
        let token = alice_with(&sts, &format!("pw-{password}")).await;
        let got = decide(&p, &once(), Some(token.clone())).await;
        note(
            &mut failures,
            &format!("password {password}"),
            &got,
            expect,
            &token,
        );
    }
    all_passed(&failures, "steps");
}

/// One replica of a fleet: its pipeline and stores, kept in step with the others (the
/// events task of `actbridge serve`) until dropped.
pub(super) struct Replica {
    pub(super) p: Arc<Pipeline>,
    pub(super) state: State,
    /// How often a change of the shared deny list dropped this replica's caches.
    pub(super) caches_dropped: Arc<std::sync::atomic::AtomicUsize>,
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A replica of `yaml` (which has `state.redis`), as `actbridge serve` builds it.
pub(super) async fn replica(yaml: &str) -> Replica {
    let cfg = config_of(yaml);
    let state = State::load(&cfg).unwrap();
    let p = Arc::new(pipeline_on(&cfg, &state).await);
    let stop = tokio_util::sync::CancellationToken::new();
    let cached = p.clone();
    let caches_dropped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let dropped = Arc::clone(&caches_dropped);
    tokio::spawn(actbridge::state::fleet::follow(
        state.redis.clone().expect("state.redis"),
        state.revocations.clone(),
        state.approvals.clone(),
        cfg.redis.as_ref().unwrap().sync_interval,
        move || {
            dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            cached.forget_cached();
        },
        stop.clone(),
    ));
    Replica {
        p,
        state,
        caches_dropped,
        stop,
    }
}

/// Polls `pass` every 20 ms until it holds or `within` passes; how long it took.
pub(super) async fn until<F: AsyncFnMut() -> bool>(
    within: std::time::Duration,
    mut pass: F,
) -> Option<std::time::Duration> {
    let started = std::time::Instant::now();
    while started.elapsed() < within {
        if pass().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    None
}

/// Redis over TLS (`rediss://`): trusted through `ca_file` (a server whose CA is not
/// trusted is never used), and with a client certificate when the server requires one.
#[tokio::test]
async fn redis_over_tls_is_used_only_when_its_certificate_is_trusted() {
    use Expect::*;
    let sts = Sts::start().await;
    let mut failures = Vec::new();
    let (open, strict) = (Redis::start_tls(false), Redis::start_tls(true));
    let (ca, (cert, key)) = {
        let tls = strict.tls().unwrap();
        (tls.ca_file(), tls.client_files())
    };
    let cases = [
        (
            "the system's roots only",
            &open,
            vec![],
            Deny(503, "replay_unavailable"),
        ),
        (
            "ca_file",
            &open,
            vec![("ca_file", open.tls().unwrap().ca_file())],
            ForwardWithIdentity,
        ),
        (
            "client certificate required, none given",
            &strict,
            vec![("ca_file", ca.clone())],
            Deny(503, "replay_unavailable"),
        ),
        (
            "client certificate required and given",
            &strict,
            vec![("ca_file", ca), ("cert_file", cert), ("key_file", key)],
            ForwardWithIdentity,
        ),
    ];
    for (i, (name, redis, files, expect)) in cases.into_iter().enumerate() {
        // A TLS handshake in a debug build may take longer than the default.
        let mut edit =
            ConfigEdit::of(&fleet_config(&sts, &redis.url())).set("state.redis.timeout", "2s");
        for (k, v) in files {
            edit = edit.set(&format!("state.redis.{k}"), &format!("'{v}'"));
        }
        let p = pipeline(&edit.yaml(), Arc::new(DenyList::load(None).unwrap())).await;
        let token = alice_with(&sts, &format!("tls-{i}")).await;
        let got = decide(&p, &once(), Some(token.clone())).await;
        note(&mut failures, name, &got, expect, &token);
    }
    all_passed(&failures, "cases");
}

/// Redis Sentinel (`state.redis.sentinels`): actbridge finds the master through the
/// sentinel; when the master dies, requests are refused (503) until the sentinel has
/// promoted the replica, then served by the new master with no restart — and a token
/// used before the failover (replicated) is still refused as used.
#[tokio::test]
async fn a_sentinel_failover_is_followed_without_a_restart() {
    use Expect::*;
    let sts = Sts::start().await;
    let mut set = crate::support::redis::SentinelSet::start();
    let config = ConfigEdit::of(&fleet_config(&sts, "redis://mymaster/0"))
        .set(
            "state.redis.sentinels",
            &format!("['127.0.0.1:{}']", set.sentinel_port),
        )
        .yaml();
    let p = pipeline(&config, Arc::new(DenyList::load(None).unwrap())).await;
    let mut failures = Vec::new();
    let used = alice_with(&sts, "sentinel-1").await;
    let got = decide(&p, &once(), Some(used.clone())).await;
    note(
        &mut failures,
        "through the sentinel",
        &got,
        ForwardWithIdentity,
        &used,
    );
    set.replicated();

    set.master.stop();
    let fresh = alice_with(&sts, "sentinel-2").await;
    let got = decide(&p, &once(), Some(fresh.clone())).await;
    note(
        &mut failures,
        "master gone",
        &got,
        Deny(503, "replay_unavailable"),
        &fresh,
    );
    // The sentinel promotes the replica (master down after 500 ms, then the failover).
    let promoted = std::time::Instant::now();
    while set.master_port() != Some(set.replica.port) {
        assert!(
            promoted.elapsed() < std::time::Duration::from_secs(30),
            "the sentinel did not promote the replica"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let mut got = decide(&p, &once(), Some(fresh.clone())).await;
    for _ in 0..30 {
        if verdict(&ForwardWithIdentity, &got, &fresh).is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        got = decide(&p, &once(), Some(fresh.clone())).await;
    }
    note(
        &mut failures,
        "after the failover",
        &got,
        ForwardWithIdentity,
        &fresh,
    );
    let got = decide(&p, &once(), Some(used.clone())).await;
    note(
        &mut failures,
        "used before the failover",
        &got,
        Deny(401, "token_replayed"),
        &used,
    );
    all_passed(&failures, "steps");
}
