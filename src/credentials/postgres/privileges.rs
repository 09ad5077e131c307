//! What the administrative role must hold, checked when the backend first connects and
//! again at every reaper pass: `CREATEROLE` (or superuser), `INHERIT` (the privileges of
//! a role it grants itself, which ending a role needs, reach it only through
//! inheritance) and ADMIN OPTION on every mapped role. While something is missing an
//! error names it, with the config key, and the vends that need it are refused
//! (fail closed); a later check that passes lets them through again, without restart.

use std::fmt;
use std::sync::Mutex;

use super::CredentialError;

/// One privilege the administrative role lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Missing {
    /// Neither `CREATEROLE` nor superuser: it cannot create roles.
    CreateRole,
    /// `NOINHERIT`: the roles it grants itself to end them lend it nothing.
    Inherit,
    /// A mapped role that does not exist.
    NoSuchRole(String),
    /// A mapped role it holds without ADMIN OPTION (PostgreSQL 16+ refuses `IN ROLE`
    /// without it; actbridge asks it of every version, so what the DBA granted is what
    /// actbridge hands out).
    AdminOption(String),
}

impl Missing {
    /// The mapped role it concerns; `None` when every vend needs it.
    fn role(&self) -> Option<&str> {
        match self {
            Missing::CreateRole | Missing::Inherit => None,
            Missing::NoSuchRole(r) | Missing::AdminOption(r) => Some(r),
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::CreateRole => f.write_str("CREATEROLE"),
            Missing::Inherit => f.write_str("INHERIT"),
            Missing::NoSuchRole(r) => write!(f, "mapped role `{r}` does not exist"),
            Missing::AdminOption(r) => write!(f, "ADMIN OPTION on `{r}`"),
        }
    }
}

/// The one query: the administrative role's attributes, the mapped roles that do not
/// exist, and those it holds without ADMIN OPTION. Binds: `$1` the mapped roles.
const CHECK: &str = "SELECT r.rolsuper, r.rolcreaterole, r.rolinherit, \
     ARRAY(SELECT m FROM unnest($1::text[]) AS m \
           WHERE NOT EXISTS (SELECT 1 FROM pg_roles x WHERE x.rolname = m) ORDER BY m), \
     ARRAY(SELECT x.rolname::text FROM pg_roles x \
           WHERE x.rolname = ANY($1::text[]) \
           AND NOT pg_has_role(r.oid, x.oid, 'MEMBER WITH ADMIN OPTION') ORDER BY 1) \
     FROM pg_roles r WHERE r.rolname = current_user";

/// Runs the check on `client`: what is missing, and whether the role is a superuser.
pub(super) async fn check(
    pg: &super::Postgres,
    client: &tokio_postgres::Client,
) -> Result<(Vec<Missing>, bool), CredentialError> {
    let mapped: Vec<String> = {
        let all: std::collections::BTreeSet<&String> = pg.cfg.roles.values().flatten().collect();
        all.into_iter().cloned().collect()
    };
    let row = pg.bounded(client.query_one(CHECK, &[&mapped])).await?;
    let (superuser, createrole, inherit): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
    let absent: Vec<String> = row.get(3);
    let no_admin: Vec<String> = row.get(4);
    let mut missing = Vec::new();
    if !superuser && !createrole {
        missing.push(Missing::CreateRole);
    }
    if !superuser && !inherit {
        missing.push(Missing::Inherit);
    }
    missing.extend(absent.into_iter().map(Missing::NoSuchRole));
    missing.extend(no_admin.into_iter().map(Missing::AdminOption));
    Ok((missing, superuser))
}

/// What the last check found; `None` before the first.
#[derive(Debug, Default)]
pub(super) struct Gate {
    last: Mutex<Option<Vec<Missing>>>,
    /// Whether the superuser warning was logged.
    warned_superuser: Mutex<bool>,
}

impl Gate {
    /// Whether a check has completed.
    pub(super) fn checked(&self) -> bool {
        self.last.lock().map(|l| l.is_some()).unwrap_or(false)
    }

    /// Records a check's findings and tells the operator: an error naming each missing
    /// privilege at every check while any is missing (vends are being refused), and
    /// once when all are present again.
    pub(super) fn record(&self, cfg: &crate::config::PostgresConfig, found: (Vec<Missing>, bool)) {
        let (missing, superuser) = found;
        let key = format!("credentials[{}].postgres.admin_user", cfg.name);
        if superuser && !std::mem::replace(&mut *lock(&self.warned_superuser), true) {
            tracing::warn!(
                key,
                admin_user = cfg.admin_user,
                "the PostgreSQL administrative role is a superuser; a role with CREATEROLE \
                 and ADMIN OPTION on the mapped roles is enough (docs/credentials.md)"
            );
        }
        let mut last = lock(&self.last);
        if missing.is_empty() {
            if last.as_ref().is_some_and(|m| !m.is_empty()) {
                tracing::info!(
                    key,
                    admin_user = cfg.admin_user,
                    "the PostgreSQL administrative role now holds every privilege actbridge \
                     needs; vends are served again"
                );
            }
        } else {
            tracing::error!(
                key,
                admin_user = cfg.admin_user,
                missing = describe(&missing),
                grant = remedy(&cfg.admin_user, &missing),
                "the PostgreSQL administrative role lacks privileges actbridge needs; the \
                 vends that need them are refused until a later check finds them"
            );
        }
        *last = Some(missing);
    }

    /// Whether a vend of `roles` may go ahead: refused while the last check found a
    /// privilege it needs missing (one every vend needs, or on one of `roles`). The
    /// message is for the operator's log; the caller is told only "unavailable".
    pub(super) fn admit(
        &self,
        cfg: &crate::config::PostgresConfig,
        roles: &[String],
    ) -> Result<(), CredentialError> {
        let last = lock(&self.last);
        let blocking: Vec<Missing> = last
            .iter()
            .flatten()
            .filter(|m| m.role().is_none_or(|r| roles.iter().any(|x| x == r)))
            .cloned()
            .collect();
        if blocking.is_empty() {
            return Ok(());
        }
        Err(CredentialError::Unavailable(format!(
            "the PostgreSQL administrative role `{}` lacks {} (credentials[{}].postgres.admin_user)",
            cfg.admin_user,
            describe(&blocking),
            cfg.name
        )))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `CREATEROLE, ADMIN OPTION on `finance_reader``.
fn describe(missing: &[Missing]) -> String {
    missing
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statements a DBA runs to fix `missing` (a role that does not exist is the
/// config's or the DBA's to fix, so it has none).
fn remedy(admin: &str, missing: &[Missing]) -> String {
    let admin = postgres_protocol::escape::escape_identifier(admin);
    missing
        .iter()
        .filter_map(|m| match m {
            Missing::CreateRole => Some(format!("ALTER ROLE {admin} CREATEROLE;")),
            Missing::Inherit => Some(format!("ALTER ROLE {admin} INHERIT;")),
            Missing::AdminOption(r) => Some(format!(
                "GRANT {} TO {admin} WITH ADMIN OPTION;",
                postgres_protocol::escape::escape_identifier(r)
            )),
            Missing::NoSuchRole(_) => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> crate::config::PostgresConfig {
        crate::config::PostgresConfig {
            name: "documents-db".into(),
            host: "127.0.0.1".into(),
            port: 5432,
            database: "postgres".into(),
            admin_user: "docs_admin".into(),
            admin_password: crate::config::Secret::new("x"),
            roles: Default::default(),
            ttl: std::time::Duration::from_secs(60),
            connection_limit: 2,
            role_prefix: "actbridge_".into(),
            reaper_interval: std::time::Duration::from_secs(60),
            timeout: std::time::Duration::from_secs(2),
        }
    }

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_missing_admin_option_refuses_only_the_vends_that_need_that_role() {
        let (gate, cfg) = (Gate::default(), cfg());
        gate.record(
            &cfg,
            (
                vec![Missing::AdminOption("engineering_reader".into())],
                false,
            ),
        );
        let e = gate
            .admit(&cfg, &roles(&["engineering_reader", "finance_reader"]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "credential backend unavailable: the PostgreSQL administrative role `docs_admin` \
             lacks ADMIN OPTION on `engineering_reader` \
             (credentials[documents-db].postgres.admin_user)"
        );
        assert!(matches!(e, CredentialError::Unavailable(_)), "503-class");
        gate.admit(&cfg, &roles(&["finance_reader"]))
            .expect("a grant that does not need the role is served");
        gate.record(&cfg, (Vec::new(), false));
        gate.admit(&cfg, &roles(&["engineering_reader"]))
            .expect("served again once a check finds the privilege");
    }

    #[test]
    fn a_missing_role_attribute_refuses_every_vend() {
        let (gate, cfg) = (Gate::default(), cfg());
        assert!(!gate.checked());
        gate.admit(&cfg, &roles(&["finance_reader"]))
            .expect("nothing is known to be missing before the first check");
        gate.record(&cfg, (vec![Missing::CreateRole, Missing::Inherit], false));
        assert!(gate.checked());
        let e = gate.admit(&cfg, &roles(&["finance_reader"])).unwrap_err();
        assert!(e.to_string().contains("lacks CREATEROLE, INHERIT"), "{e}");
    }

    #[test]
    fn the_remedy_is_the_grants_to_run_quoted() {
        let missing = [
            Missing::CreateRole,
            Missing::AdminOption("weird\"role".into()),
            Missing::NoSuchRole("nope".into()),
        ];
        assert_eq!(
            remedy("docs_admin", &missing),
            "ALTER ROLE \"docs_admin\" CREATEROLE; \
             GRANT \"weird\"\"role\" TO \"docs_admin\" WITH ADMIN OPTION;"
        );
        assert_eq!(
            describe(&missing),
            "CREATEROLE, ADMIN OPTION on `weird\"role`, mapped role `nope` does not exist"
        );
    }
}
