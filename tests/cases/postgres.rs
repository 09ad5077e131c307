//! The `postgres` credential backend through the real Envoy and a real PostgreSQL: a
//! dynamic role per (user, chain, grant), member of the grant's reader roles, that stops
//! logging in at `VALID UNTIL` and is dropped by the reaper — also after a restart.

use std::time::{Duration, Instant};

use crate::support::actbridge::Actbridge;
use crate::support::postgres::{ADMIN_USER, Postgres};
use crate::support::world::{Sts, VEND_HOST, World, credential_sidecar_config};

const PREFIX: &str = "actbridge_";

pub(super) fn pg_sidecar_config(sts: &Sts, port: u16, ttl: &str, reaper: &str) -> String {
    let routes = format!(
        "    - {{name: credentials, host: \"{VEND_HOST}\", action: vend, services: {{postgres: documents-db}}}}\n"
    );
    // `PGADMIN_PASSWORD` is set by the harness for every actbridge it starts.
    let credentials = format!(
        r#"  - name: documents-db
    postgres:
      host: 127.0.0.1
      port: {port}
      database: postgres
      admin_user: {ADMIN_USER}
      admin_password_env: PGADMIN_PASSWORD
      roles: {{engineering: [engineering_reader], finance: [finance_reader], admin: [admin_reader], hr: [hr_reader]}}
      ttl: {ttl}
      reaper_interval: {reaper}
"#
    );
    credential_sidecar_config(sts, "summarizer-tech", &routes, &credentials)
}

async fn vend(world: &World, token: &str) -> reqwest::Response {
    world
        .vend(
            Some(token),
            r#"{"target_service":"postgres","action":"connect"}"#,
        )
        .await
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// alice via summarizer-tech gets a role that reads the finance and engineering views and
/// is refused hr (and the tables behind the views); after its ttl it cannot log in, and
/// the reaper leaves no role behind. carol via summarizer-tech gets nothing.
#[tokio::test]
async fn a_dynamic_role_reads_the_grants_views_then_expires_and_is_reaped() {
    let pg = Postgres::start().await;
    let sts = Sts::start().await;
    let config = pg_sidecar_config(&sts, pg.port, "3s", "1s");
    let world = World::start_with(sts, &config).await;
    let alice = world.token_for("alice").await;
    let r = vend(&world, &alice).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let (user, password) = (
        v["username"].as_str().unwrap().to_string(),
        v["password"].as_str().unwrap().to_string(),
    );
    assert!(user.starts_with(PREFIX), "{user}");
    assert_eq!(v["port"], pg.port);
    assert_eq!(v["database"], "postgres");
    assert!(
        !world.actbridge.log().contains(&password),
        "the password was logged"
    );

    let db = pg
        .connect(&user, &password)
        .await
        .expect("the vended role logs in");
    for dept in ["finance", "engineering"] {
        let rows = db
            .query(&format!("SELECT title FROM {dept}.documents_view"), &[])
            .await
            .unwrap_or_else(|e| panic!("{dept}: {e}"));
        assert_eq!(rows.len(), 1);
    }
    for refused in ["hr.documents_view", "finance.documents"] {
        let e = db
            .query(&format!("SELECT * FROM {refused}"), &[])
            .await
            .expect_err(refused);
        assert_eq!(e.code().map(|c| c.code()), Some("42501"), "{refused}: {e}");
    }
    drop(db);

    let carol = world.token_for("carol").await;
    assert_eq!(vend(&world, &carol).await.status(), 403);
    assert_eq!(
        pg.roles(PREFIX).await,
        vec![user.clone()],
        "one role, for alice"
    );

    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        pg.connect(&user, &password).await.is_err(),
        "an expired role logged in"
    );
    wait_for("the reaper", async || pg.roles(PREFIX).await.is_empty()).await;
}

/// Roles left by a run that stopped are dropped by the next run's reaper at its start.
#[tokio::test]
async fn the_reaper_drops_roles_left_by_an_earlier_run() {
    let pg = Postgres::start().await;
    let sts = Sts::start().await;
    // The first run never reaps in time (1h), and its roles expire after 1s.
    let config = pg_sidecar_config(&sts, pg.port, "1s", "1h");
    let mut world = World::start_with(sts, &config).await;
    let bob = world.token_for("bob").await;
    assert_eq!(vend(&world, &bob).await.status(), 200);
    assert_eq!(pg.roles(PREFIX).await.len(), 1);
    // A role of someone else's with the prefix, expired, but without actbridge's comment.
    pg.superuser("CREATE ROLE actbridge_someone LOGIN VALID UNTIL '2000-01-01'")
        .await;
    world.actbridge.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _next = Actbridge::start(&config).await;
    wait_for("the next run's reaper", async || {
        pg.roles(PREFIX).await == ["actbridge_someone"]
    })
    .await;
}

/// PostgreSQL unreachable → 503; PostgreSQL refusing (a mapped role that does not
/// exist) → 502 without its message, and nothing half-created.
#[tokio::test]
async fn postgres_down_or_refusing_fails_closed() {
    let sts = Sts::start().await;
    let config = pg_sidecar_config(&sts, crate::support::net::free_port(), "1m", "1h");
    let world = World::start_with(sts, &config).await;
    let alice = world.token_for("alice").await;
    let r = vend(&world, &alice).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));

    let pg = Postgres::start().await;
    let sts = Sts::start().await;
    let config = pg_sidecar_config(&sts, pg.port, "1m", "1h")
        .replace("finance: [finance_reader]", "finance: [no_such_role]");
    let world = World::start_with(sts, &config).await;
    let alice = world.token_for("alice").await;
    let r = vend(&world, &alice).await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(!body.contains("no_such_role"), "{body}");
    assert!(pg.roles(PREFIX).await.is_empty(), "nothing half-created");
}
