//! The DBA's hardening of `PUBLIC`, which every dynamic role is a member of, checked
//! alongside the privileges: `PUBLIC` must not connect to other databases (a role's
//! objects there survive `DROP OWNED`, so the role can never be dropped), create
//! temporary tables here, or create in any schema here. A missing revocation is a
//! warning naming it — the DBA's setting, not actbridge's to refuse over — logged when
//! what is found changes.

use std::sync::Mutex;

use super::CredentialError;

/// What `PUBLIC` holds that it should not, one line each (`CONNECT on database
/// "template1"`), from the catalogue's ACLs (`NULL` = the built-in default, which
/// grants `PUBLIC` `CONNECT` and `TEMPORARY` on a database).
const CHECK: &str = "SELECT format('CONNECT on database %I', d.datname) \
     FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a \
     WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT' \
     AND d.datallowconn AND d.datname <> current_database() \
     UNION ALL \
     SELECT format('TEMPORARY on database %I', d.datname) \
     FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a \
     WHERE a.grantee = 0 AND a.privilege_type = 'TEMPORARY' \
     AND d.datname = current_database() \
     UNION ALL \
     SELECT format('CREATE on schema %I', n.nspname) \
     FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a \
     WHERE a.grantee = 0 AND a.privilege_type = 'CREATE' \
     ORDER BY 1";

/// What the last check found (`None` before the first).
#[derive(Debug, Default)]
pub(super) struct Hardening(Mutex<Option<Vec<String>>>);

impl Hardening {
    /// Checks on `client` and warns when the findings differ from the last check's.
    pub(super) async fn check(
        &self,
        pg: &super::Postgres,
        client: &tokio_postgres::Client,
    ) -> Result<(), CredentialError> {
        let rows = pg.bounded(client.query(CHECK, &[])).await?;
        let found: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        let mut last = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.as_ref() == Some(&found) {
            return Ok(());
        }
        if found.is_empty() {
            if last.is_some() {
                tracing::info!(
                    key = format!("credentials[{}].postgres", pg.cfg.name),
                    "PostgreSQL hardening of PUBLIC complete"
                );
            }
        } else {
            tracing::warn!(
                key = format!("credentials[{}].postgres", pg.cfg.name),
                database = pg.cfg.database,
                public_holds = found.join(", "),
                "PostgreSQL hardening missing: PUBLIC, which every dynamic role belongs to, \
                 holds privileges it should not (REVOKE them: docs/credentials.md, \
                 \"Hardening PUBLIC\")"
            );
        }
        *last = Some(found);
        Ok(())
    }
}
