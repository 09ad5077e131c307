//! The `postgres` credential backend through the real Envoy and a real PostgreSQL 15: a
//! new dynamic role per vend, member of the grant's reader roles, that stops logging in
//! at `VALID UNTIL`; at that moment its sessions are cut and the reaper drops it with
//! what it created — also after a restart, and also when another role cannot be dropped.
//! The administrative role's privileges are checked (vends refused while one is
//! missing) and the server is hardened as docs/credentials.md asks.

use std::time::{Duration, Instant, SystemTime};

use crate::support::actbridge::Actbridge;
use crate::support::config_edit::ConfigEdit;
use crate::support::postgres::{ADMIN_USER, OTHER_DATABASE, Postgres};
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

/// `config` with the reaper passing every `interval`.
fn reaping_every(config: &str, interval: &str) -> String {
    ConfigEdit::of(config)
        .replace(
            "credentials[name=documents-db].postgres.reaper_interval",
            interval,
        )
        .yaml()
}

async fn vend(world: &World, token: &str) -> reqwest::Response {
    world
        .vend(
            Some(token),
            r#"{"target_service":"postgres","action":"connect"}"#,
        )
        .await
}

/// A vended role: (username, password, expires_at as Unix seconds).
struct Role {
    user: String,
    password: String,
    expires_at: u64,
}

/// Vends for `token`, expecting 200; `expires_at` read by PostgreSQL itself.
async fn vend_ok(world: &World, pg: &Postgres, token: &str) -> Role {
    let r = vend(world, token).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let at = v["expires_at"].as_str().unwrap();
    let epoch = pg
        .superuser_strings(&format!(
            "SELECT extract(epoch FROM '{at}'::timestamptz)::bigint"
        ))
        .await;
    Role {
        user: v["username"].as_str().unwrap().to_string(),
        password: v["password"].as_str().unwrap().to_string(),
        expires_at: epoch[0].parse().unwrap(),
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

async fn sleep_until_unix(at: f64) {
    tokio::time::sleep(Duration::from_secs_f64((at - unix_now()).max(0.0))).await;
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `actbridge_postgres_roles_undroppable` as scraped from `actbridge`.
async fn undroppable(actbridge: &Actbridge) -> Option<String> {
    let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", actbridge.admin_port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("actbridge_postgres_roles_undroppable "))
        .map(str::to_string)
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

/// A session opened before expiry and held open is cut at `VALID UNTIL` — within about
/// a second, although the periodic reaper would not run for a minute — and the role is
/// gone.
#[tokio::test]
async fn a_session_held_open_is_cut_when_its_role_expires() {
    let pg = Postgres::start().await;
    let sts = Sts::start().await;
    let config = pg_sidecar_config(&sts, pg.port, "3s", "60s");
    let world = World::start_with(sts, &config).await;
    let alice = world.token_for("alice").await;
    let role = vend_ok(&world, &pg, &alice).await;
    let db = pg.connect(&role.user, &role.password).await.unwrap();
    let mut last_read = 0.0;
    let (failed_at, error) = loop {
        let now = unix_now();
        match db
            .query("SELECT title FROM finance.documents_view", &[])
            .await
        {
            Ok(rows) => {
                assert_eq!(rows.len(), 1);
                last_read = now;
            }
            Err(e) => break (unix_now(), e),
        }
        assert!(
            now < role.expires_at as f64 + 10.0,
            "the session still reads 10 s after its role expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let expired = role.expires_at as f64;
    assert!(
        last_read > expired - 1.0,
        "the session read until just before expiry (last read {:.2} s before it)",
        expired - last_read
    );
    assert!(
        failed_at < expired + 2.0,
        "the session was cut {:.2} s after expiry",
        failed_at - expired
    );
    assert!(
        db.is_closed() || error.code().map(|c| c.code()) == Some("57P01"),
        "terminated, not refused: {error}"
    );
    assert!(
        db.query("SELECT 1", &[]).await.is_err(),
        "the held session cannot read any more"
    );
    wait_for("the role to be dropped", async || {
        pg.roles(PREFIX).await.is_empty()
    })
    .await;
}

/// A role that creates a large object, default privileges and a table (the objects that
/// made `DROP ROLE` fail with 2BP01) is dropped at expiry with all of them, its held
/// session cut; a plain role expiring alongside goes too.
#[tokio::test]
async fn a_role_that_creates_objects_is_dropped_with_them() {
    let pg = Postgres::start().await;
    // The engineering readers may create tables in their schema.
    pg.superuser("GRANT CREATE ON SCHEMA engineering TO engineering_reader")
        .await;
    let sts = Sts::start().await;
    let config = pg_sidecar_config(&sts, pg.port, "3s", "60s");
    let world = World::start_with(sts, &config).await;
    let (alice, bob) = (world.token_for("alice").await, world.token_for("bob").await);
    let hoarder = vend_ok(&world, &pg, &alice).await;
    let plain = vend_ok(&world, &pg, &bob).await;
    let db = pg.connect(&hoarder.user, &hoarder.password).await.unwrap();
    db.batch_execute(
        "SELECT lo_create(0);\n\
         ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC;\n\
         CREATE TABLE engineering.kept_forever (x int);\n\
         GRANT SELECT ON engineering.kept_forever TO PUBLIC;",
    )
    .await
    .expect("the role creates what it may");
    let owned = "SELECT (SELECT count(*) FROM pg_largeobject_metadata) \
                 + (SELECT count(*) FROM pg_default_acl) \
                 + (SELECT count(*) FROM pg_class WHERE relname = 'kept_forever')";
    assert_eq!(pg.superuser_strings(owned).await, ["3"]);

    sleep_until_unix(hoarder.expires_at.max(plain.expires_at) as f64).await;
    wait_for("both roles to be dropped", async || {
        pg.roles(PREFIX).await.is_empty()
    })
    .await;
    assert!(
        db.query("SELECT 1", &[]).await.is_err(),
        "the hoarder's session was cut"
    );
    assert_eq!(
        pg.superuser_strings(owned).await,
        ["0"],
        "its large object, default privileges and table went with it"
    );
    assert_eq!(
        undroppable(&world.actbridge).await.as_deref(),
        Some("0"),
        "no alert"
    );
}

/// A role that cannot be dropped (it owns a large object in a database the DBA left open
/// to it) is logged with its SQLSTATE and counted in the alert gauge, and does not hold up
/// the role after it in the same pass; once the DBA removes the object it goes too.
#[tokio::test]
async fn a_role_that_cannot_be_dropped_is_alerted_and_does_not_stop_the_pass() {
    let pg = Postgres::start().await;
    // The hardening's gap: another database open to the engineering readers.
    pg.superuser(&format!(
        "GRANT CONNECT ON DATABASE {OTHER_DATABASE} TO engineering_reader"
    ))
    .await;
    let sts = Sts::start().await;
    // The first run reaps nothing: it is stopped well before its roles expire.
    let config = pg_sidecar_config(&sts, pg.port, "5s", "1h");
    let mut world = World::start_with(sts, &config).await;
    let (alice, bob) = (world.token_for("alice").await, world.token_for("bob").await);
    let stuck = vend_ok(&world, &pg, &alice).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let plain = vend_ok(&world, &pg, &bob).await;
    world.actbridge.kill();
    assert!(
        stuck.expires_at < plain.expires_at,
        "the stuck role comes first"
    );
    let elsewhere = pg
        .connect_to(OTHER_DATABASE, &stuck.user, &stuck.password)
        .await
        .expect("the open database lets the role in");
    elsewhere
        .batch_execute("SELECT lo_create(0)")
        .await
        .unwrap();
    drop(elsewhere);

    sleep_until_unix(plain.expires_at as f64 + 1.0).await;
    let next = Actbridge::start(&reaping_every(&config, "1s")).await;
    wait_for("the plain role to be dropped", async || {
        pg.roles(PREFIX).await == [stuck.user.clone()]
    })
    .await;
    wait_for("the alert", async || {
        undroppable(&next).await.as_deref() == Some("1")
    })
    .await;
    let log = next.log();
    let line = log
        .lines()
        .find(|l| l.contains(&stuck.user) && l.contains("could not be dropped"))
        .unwrap_or_else(|| panic!("no warning names the role:\n{log}"));
    assert!(line.contains("2BP01"), "{line}");
    assert!(line.contains(OTHER_DATABASE), "what depends on it: {line}");
    assert!(!log.contains(&stuck.password) && !log.contains(&plain.password));

    // The DBA removes what holds the role.
    pg.superuser_in(OTHER_DATABASE, &format!("DROP OWNED BY \"{}\"", stuck.user))
        .await;
    wait_for("the stuck role to be dropped", async || {
        pg.roles(PREFIX).await.is_empty()
    })
    .await;
    wait_for("the alert to clear", async || {
        undroppable(&next).await.as_deref() == Some("0")
    })
    .await;
}

/// Roles left by a run that stopped are dropped by the next run's reaper at its start.
#[tokio::test]
async fn the_reaper_drops_roles_left_by_an_earlier_run() {
    let pg = Postgres::start().await;
    let sts = Sts::start().await;
    // The first run is stopped before its role expires, and never reaps in time (1h).
    let config = pg_sidecar_config(&sts, pg.port, "3s", "1h");
    let mut world = World::start_with(sts, &config).await;
    let bob = world.token_for("bob").await;
    let role = vend_ok(&world, &pg, &bob).await;
    world.actbridge.kill();
    assert_eq!(pg.roles(PREFIX).await, std::slice::from_ref(&role.user));
    // A role of someone else's with the prefix, expired, but without actbridge's comment.
    pg.superuser("CREATE ROLE actbridge_someone LOGIN VALID UNTIL '2000-01-01'")
        .await;
    sleep_until_unix(role.expires_at as f64 + 1.0).await;
    assert_eq!(pg.roles(PREFIX).await.len(), 2, "nothing reaped meanwhile");
    let _next = Actbridge::start(&config).await;
    wait_for("the next run's reaper", async || {
        pg.roles(PREFIX).await == ["actbridge_someone"]
    })
    .await;
}

/// A vended role holds nothing `PUBLIC` would have given it: no other database, no
/// temporary tables, no names of whom the other roles are for; every vend is a new role
/// with a new password, so a role that changed its own password breaks nothing. A server
/// left unhardened is warned about.
#[tokio::test]
async fn a_vended_role_holds_nothing_of_public_and_nothing_is_reused() {
    let pg = Postgres::start().await;
    let sts = Sts::start().await;
    let config = pg_sidecar_config(&sts, pg.port, "1m", "1s");
    let world = World::start_with(sts, &config).await;
    let (alice, bob) = (world.token_for("alice").await, world.token_for("bob").await);
    let first = vend_ok(&world, &pg, &alice).await;
    let second = vend_ok(&world, &pg, &alice).await;
    vend_ok(&world, &pg, &bob).await;
    assert_ne!(first.user, second.user, "a new role per vend");
    assert_ne!(first.password, second.password, "a new password per vend");

    for database in [OTHER_DATABASE, "template1"] {
        let e = pg
            .connect_to(database, &first.user, &first.password)
            .await
            .err()
            .unwrap_or_else(|| panic!("the role connected to {database}"));
        assert_eq!(e.code().map(|c| c.code()), Some("42501"), "{database}: {e}");
    }
    let db = pg.connect(&first.user, &first.password).await.unwrap();
    for refused in [
        "CREATE TEMP TABLE scratch (x int)",
        "CREATE TABLE public.scratch (x int)",
    ] {
        let e = db.batch_execute(refused).await.expect_err(refused);
        assert_eq!(e.code().map(|c| c.code()), Some("42501"), "{refused}: {e}");
    }
    let comments: Vec<String> = db
        .query(
            "SELECT coalesce(shobj_description(oid, 'pg_authid'), '') FROM pg_roles \
             WHERE starts_with(rolname, 'actbridge_')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(comments.len(), 3, "{comments:?}");
    for c in &comments {
        assert!(c.starts_with("actbridge: expires "), "{c}");
        for name in ["alice", "bob", "summarizer"] {
            assert!(!c.contains(name), "a comment names {name}: {c}");
        }
    }

    db.batch_execute("ALTER ROLE CURRENT_USER PASSWORD 'chosen-by-the-caller'")
        .await
        .expect("a role may change its own password");
    let third = vend_ok(&world, &pg, &alice).await;
    assert!(![&first.user, &second.user].contains(&&third.user));
    pg.connect(&third.user, &third.password)
        .await
        .expect("the next vend logs in with its own password");

    let log = world.actbridge.log();
    assert!(!log.contains("hardening missing"), "{log}");
    pg.superuser("GRANT TEMPORARY ON DATABASE postgres TO PUBLIC")
        .await;
    wait_for("the hardening warning", async || {
        world.actbridge.log().lines().any(|l| {
            l.contains("hardening missing") && l.contains("TEMPORARY on database postgres")
        })
    })
    .await;
}

/// An administrative role without ADMIN OPTION on a mapped role: the vends that need that
/// role are refused (503) and the error names what is missing and the config key, while
/// other grants are served; granting it lets them through without a restart. Without
/// INHERIT every vend is refused, until it is set again.
#[tokio::test]
async fn a_missing_privilege_refuses_the_vends_that_need_it_until_granted() {
    let pg = Postgres::start().await;
    pg.superuser(&format!(
        "REVOKE ADMIN OPTION FOR engineering_reader FROM {ADMIN_USER}"
    ))
    .await;
    let sts = Sts::start().await;
    let config = pg_sidecar_config(&sts, pg.port, "1m", "1s");
    let world = World::start_with(sts, &config).await;
    let (alice, bob) = (world.token_for("alice").await, world.token_for("bob").await);
    let r = vend(&world, &alice).await;
    assert_eq!(r.status(), 503, "alice's grant maps to engineering_reader");
    assert!(r.headers().contains_key("retry-after"));
    let body = r.text().await.unwrap();
    assert!(!body.contains("engineering_reader"), "{body}");
    assert!(pg.roles(PREFIX).await.is_empty(), "no role was created");
    let log = world.actbridge.log();
    let line = log
        .lines()
        .find(|l| l.contains("lacks privileges"))
        .unwrap_or_else(|| panic!("no error names the missing privilege:\n{log}"));
    for needed in [
        "ADMIN OPTION on `engineering_reader`",
        "credentials[documents-db].postgres.admin_user",
        "GRANT \\\"engineering_reader\\\" TO \\\"docs_admin\\\" WITH ADMIN OPTION",
    ] {
        assert!(line.contains(needed), "{needed} not in {line}");
    }
    vend_ok(&world, &pg, &bob).await;

    pg.superuser(&format!(
        "GRANT engineering_reader TO {ADMIN_USER} WITH ADMIN OPTION"
    ))
    .await;
    wait_for("alice to be served", async || {
        vend(&world, &alice).await.status() == 200
    })
    .await;

    pg.superuser(&format!("ALTER ROLE {ADMIN_USER} NOINHERIT"))
        .await;
    wait_for("every vend to be refused", async || {
        vend(&world, &bob).await.status() == 503
    })
    .await;
    assert!(world.actbridge.log().contains("lacks INHERIT"));
    pg.superuser(&format!("ALTER ROLE {ADMIN_USER} INHERIT"))
        .await;
    wait_for("bob to be served again", async || {
        vend(&world, &bob).await.status() == 200
    })
    .await;
}

/// A server that hangs on `CREATE ROLE` (a superuser's transaction holds a lock that
/// blocks role creation, not logins) is actbridge's 503 with `Retry-After` within the
/// default 2 s `timeout` — not Envoy's 504 at its 3 s `message_timeout` — and nothing is
/// handed out; once the lock is released vends are served.
#[tokio::test]
async fn a_hung_server_is_a_503_inside_envoys_timeout() {
    let pg = Postgres::start().await;
    let sts = Sts::start().await;
    let config = pg_sidecar_config(&sts, pg.port, "1m", "1h");
    let world = World::start_with(sts, &config).await;
    let bob = world.token_for("bob").await;
    vend_ok(&world, &pg, &bob).await;
    let locker = pg.superuser_client().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE pg_catalog.pg_authid IN SHARE MODE")
        .await
        .unwrap();

    let started = Instant::now();
    let r = vend(&world, &bob).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 503, "after {took:?}");
    assert!(r.headers().contains_key("retry-after"));
    assert!(
        took < Duration::from_millis(2900),
        "answered after {took:?}, at Envoy's timeout"
    );
    assert!(!r.text().await.unwrap().contains("password"));

    locker.batch_execute("ROLLBACK").await.unwrap();
    vend_ok(&world, &pg, &bob).await;
}

/// PostgreSQL unreachable → 503; a mapped role that does not exist → 503 (the check
/// names it), nothing created; a mapped role dropped after the check → PostgreSQL refuses
/// → 502 without its message, and nothing half-created.
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
    let config = ConfigEdit::of(&pg_sidecar_config(&sts, pg.port, "1m", "1h"))
        .replace(
            "credentials[name=documents-db].postgres.roles.finance",
            "[no_such_role]",
        )
        .yaml();
    let world = World::start_with(sts, &config).await;
    let alice = world.token_for("alice").await;
    let r = vend(&world, &alice).await;
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(!body.contains("no_such_role"), "{body}");
    assert!(
        world
            .actbridge
            .log()
            .contains("mapped role `no_such_role` does not exist")
    );
    assert!(pg.roles(PREFIX).await.is_empty(), "nothing created");

    let pg = Postgres::start().await;
    let sts = Sts::start().await;
    let config = pg_sidecar_config(&sts, pg.port, "1m", "1h");
    let world = World::start_with(sts, &config).await;
    let (alice, bob) = (world.token_for("alice").await, world.token_for("bob").await);
    vend_ok(&world, &pg, &bob).await;
    pg.superuser("DROP OWNED BY engineering_reader; DROP ROLE engineering_reader")
        .await;
    let r = vend(&world, &alice).await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(!body.contains("engineering_reader"), "{body}");
    assert_eq!(pg.roles(PREFIX).await.len(), 1, "nothing half-created");
}
