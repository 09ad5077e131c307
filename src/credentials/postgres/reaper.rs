//! Dropping expired dynamic roles: every role with the prefix and actbridge's comment
//! whose `VALID UNTIL` has passed loses LOGIN, has its sessions terminated, and is
//! dropped. It reads the expiry from the catalogue, so roles created by an earlier run
//! (before a restart) go too; a role of someone else's that happens to share the prefix
//! has no such comment and is left alone.

use postgres_protocol::escape::escape_identifier;

use super::{CredentialError, Postgres};

/// Reaps once; returns how many roles were dropped.
pub(super) async fn reap(pg: &Postgres) -> Result<usize, CredentialError> {
    let client = pg.admin().await?;
    let rows = pg
        .bounded(client.query(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) \
             AND starts_with(shobj_description(oid, 'pg_authid'), $2) \
             AND rolvaliduntil IS NOT NULL AND rolvaliduntil < now()",
            &[&pg.cfg.role_prefix, &super::COMMENT_MARK],
        ))
        .await?;
    let mut dropped = 0;
    for row in rows {
        let name: String = row.get(0);
        let quoted = escape_identifier(&name);
        pg.bounded(client.batch_execute(&format!("ALTER ROLE {quoted} NOLOGIN")))
            .await?;
        pg.bounded(client.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            &[&name],
        ))
        .await?;
        pg.bounded(client.batch_execute(&format!("DROP ROLE IF EXISTS {quoted}")))
            .await?;
        tracing::info!(role = name, "expired PostgreSQL role dropped");
        dropped += 1;
    }
    Ok(dropped)
}
