//! `/metrics` on the admin listener moves as requests are made through the real Envoy.

use crate::support::world::World;

/// The value of the sample whose line starts with `series` (name and labels as printed).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(world: &World) -> String {
    let r = world
        .http
        .get(format!(
            "http://127.0.0.1:{}/metrics",
            world.actbridge.admin_port
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    r.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_decisions_refusals_stages_and_caches() {
    let world = World::start().await;
    let before = scrape(&world).await;
    let allowed = r#"actbridge_requests_total{direction="outbound",route="document-service",decision="allow"}"#;
    assert_eq!(sample(&before, allowed), 0.0);

    let token = world.sts.alice_delegated().await;
    for _ in 0..3 {
        let r = world
            .agent_call("document-service", "/documents/DOC-001", &token)
            .await;
        assert_eq!(r.status(), 200);
    }
    let r = world.agent_call("blocked.example", "/", &token).await;
    assert_eq!(r.status(), 403);
    let r = world.inbound("/data").send().await.unwrap();
    assert_eq!(r.status(), 401);

    let after = scrape(&world).await;
    assert_eq!(sample(&after, allowed), 3.0, "{after}");
    assert_eq!(
        sample(
            &after,
            r#"actbridge_refusals_total{direction="outbound",reason="route_denied"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &after,
            r#"actbridge_refusals_total{direction="inbound",reason="token_missing"}"#
        ),
        1.0
    );
    // One token-service call, then the cache.
    assert_eq!(
        sample(
            &after,
            r#"actbridge_cache_requests_total{cache="exchanged_tokens",result="miss"}"#
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            r#"actbridge_cache_requests_total{cache="exchanged_tokens",result="hit"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(
            &after,
            r#"actbridge_upstream_calls_total{upstream="token_service",outcome="ok"}"#
        ),
        1.0
    );
    // The verified-token cache: the first outbound request verified, the others hit.
    assert!(
        sample(
            &after,
            r#"actbridge_cache_requests_total{cache="verified_tokens",result="hit"}"#
        ) >= 2.0
    );
    // Stage histograms: every outbound decision was timed, and its exchange stage.
    assert_eq!(
        sample(
            &after,
            r#"actbridge_stage_duration_seconds_count{direction="outbound",stage="decision"}"#
        ),
        4.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            r#"actbridge_stage_duration_seconds_count{direction="outbound",stage="exchange"}"#
        ),
        3.0
    );
    assert!(after.contains("# TYPE actbridge_stage_duration_seconds histogram"));
    // The one token-service call, timed (and the issuer's JWKS fetches).
    assert_eq!(
        sample(
            &after,
            r#"actbridge_upstream_duration_seconds_count{upstream="token_service",outcome="ok"}"#
        ),
        1.0,
        "{after}"
    );
    assert!(
        sample(
            &after,
            r#"actbridge_upstream_duration_seconds_count{upstream="jwks",outcome="ok"}"#
        ) >= 1.0,
        "{after}"
    );
    // The keys were fetched at start: their age is seconds, not unknown.
    let issuer = world.sts.service.issuer();
    let age = sample(
        &after,
        &format!(r#"actbridge_jwks_age_seconds{{issuer="{issuer}"}}"#),
    );
    assert!(
        after.contains("actbridge_jwks_age_seconds{") && age < 60.0,
        "{after}"
    );
    // What is running: the build, and the process as Prometheus names it.
    let build = after
        .lines()
        .find(|l| l.starts_with("actbridge_build_info{"))
        .unwrap_or_else(|| panic!("{after}"));
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && build.contains("revision=\"")
            && build.ends_with(" 1"),
        "{build}"
    );
    assert!(
        sample(&after, "process_resident_memory_bytes") > 1e6,
        "{after}"
    );
    assert!(sample(&after, "process_cpu_seconds_total") > 0.0, "{after}");
    assert!(sample(&after, "process_open_fds") > 3.0, "{after}");
    // Never a user, a token or a path in a label.
    assert!(!after.contains("alice") && !after.contains("DOC-001") && !after.contains(&token));
}
