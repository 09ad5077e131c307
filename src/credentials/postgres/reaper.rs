//! Ending expired dynamic roles. Every role with the prefix and actbridge's comment whose
//! `VALID UNTIL` has passed, oldest first:
//!
//! 1. `ALTER ROLE … NOLOGIN`;
//! 2. `GRANT … TO CURRENT_USER`: the administrative role takes the role's privileges,
//!    which PostgreSQL asks of whoever terminates its sessions or drops what it owns;
//! 3. its sessions, in every database, are terminated (`pg_terminate_backend`, waiting
//!    for each to end);
//! 4. `DROP OWNED BY … CASCADE; DROP ROLE …`, in one transaction: what it created here
//!    (tables, large objects, default privileges, grants to it) goes with it. Not
//!    `REASSIGN OWNED`: objects a caller created would outlive it, owned by the
//!    administrative role — a `SECURITY DEFINER` function among them would then run
//!    with that role's privileges.
//!
//! One role's failure (a large object in a database `DROP OWNED` does not reach, say)
//! does not stop the pass: it is logged with its SQLSTATE and what depends on the role,
//! counted in `actbridge_postgres_roles_undroppable`, and retried at the next pass.
//!
//! The expiry is read from the catalogue, so roles created by an earlier run (before a
//! restart) go too; a role of someone else's that happens to share the prefix has no
//! such comment and is left alone.

use std::time::Duration;

use super::{CredentialError, Postgres, sql};

/// What one pass did.
#[derive(Debug, Default)]
pub(super) struct Pass {
    /// Roles dropped.
    pub dropped: Vec<String>,
    /// Roles that could not be dropped (each logged).
    pub failed: Vec<String>,
}

/// Why one step failed.
enum Failure {
    /// The server refused (an SQLSTATE).
    Refused(tokio_postgres::Error),
    /// Timed out, or the connection failed: the pass goes on with a new connection.
    Lost(String),
}

/// Checks the administrative role's privileges and the hardening, then ends every
/// expired role. Fails only when the server cannot be reached.
pub(super) async fn reap(pg: &Postgres) -> Result<Pass, CredentialError> {
    let mut client = pg.admin().await?;
    if let Err(e) = pg.check(&client).await {
        tracing::warn!(error = %e, "PostgreSQL privilege check failed; reaping anyway");
    }
    let rows = pg
        .bounded(client.query(
            sql::EXPIRED_ROLES,
            &[&pg.cfg.role_prefix, &sql::COMMENT_MARK],
        ))
        .await?;
    let mut pass = Pass::default();
    for row in rows {
        let name: String = row.get(0);
        match end(pg, &client, &name).await {
            Ok(()) => {
                tracing::info!(role = name, "expired PostgreSQL role dropped");
                pass.dropped.push(name);
            }
            Err((_, Failure::Refused(e))) if is_gone(&e) => {
                tracing::debug!(role = name, "expired PostgreSQL role already dropped");
            }
            Err((step, failure)) => {
                match &failure {
                    Failure::Refused(e) => {
                        let db = e.as_db_error();
                        tracing::warn!(
                            role = name,
                            step,
                            code = db.map(|d| d.code().code()),
                            error = db.map(|d| d.message()),
                            detail = db.and_then(|d| d.detail()),
                            "expired PostgreSQL role could not be dropped; the next pass retries"
                        );
                    }
                    Failure::Lost(why) => tracing::warn!(
                        role = name,
                        step,
                        error = why,
                        "expired PostgreSQL role could not be dropped; the next pass retries"
                    ),
                }
                pass.failed.push(name);
                if matches!(failure, Failure::Lost(_)) {
                    client = pg.admin().await?;
                }
            }
        }
    }
    Ok(pass)
}

/// Ends one role; on failure, the step that failed.
async fn end(
    pg: &Postgres,
    client: &tokio_postgres::Client,
    name: &str,
) -> Result<(), (&'static str, Failure)> {
    let timeout = pg.cfg.timeout;
    step(
        timeout,
        "revoke login",
        client.batch_execute(&sql::revoke_login(name)),
    )
    .await?;
    step(
        timeout,
        "grant the role to the administrative role",
        client.batch_execute(&sql::grant_to_admin(name)),
    )
    .await?;
    // Waits for each session to end, within half the statement timeout.
    let wait_ms = i64::try_from(timeout.as_millis() / 2).unwrap_or(i64::MAX);
    let row = step(
        timeout,
        "terminate its sessions",
        client.query_one(sql::TERMINATE_SESSIONS, &[&name, &wait_ms]),
    )
    .await?;
    let lingering: i64 = row.get(0);
    if lingering > 0 {
        tracing::warn!(
            role = name,
            sessions = lingering,
            "PostgreSQL sessions terminated but not yet ended"
        );
    }
    step(
        timeout,
        "drop what it owns and the role",
        client.batch_execute(&sql::drop_role(name)),
    )
    .await
}

async fn step<T>(
    timeout: Duration,
    name: &'static str,
    f: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, (&'static str, Failure)> {
    match tokio::time::timeout(timeout, f).await {
        Err(_) => Err((name, Failure::Lost("timed out".into()))),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.as_db_error().is_some() => Err((name, Failure::Refused(e))),
        Ok(Err(e)) => Err((name, Failure::Lost(e.to_string()))),
    }
}

/// The role no longer exists (another replica's reaper dropped it): SQLSTATE 42704.
fn is_gone(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_OBJECT)
}
