//! The statements, composed with PostgreSQL's own quoting rules
//! (`postgres_protocol::escape`): DDL takes no bind parameters, so every identifier is
//! quoted as an identifier and every value as a literal — never pasted.

use postgres_protocol::escape::{escape_identifier, escape_literal};

use super::CredentialError;

/// A role to create.
pub(super) struct NewRole<'a> {
    pub name: &'a str,
    /// Sent only as its SCRAM-SHA-256 verifier: the server (and its logs) never see it.
    pub password: &'a str,
    /// Unix seconds.
    pub valid_until: u64,
    pub connection_limit: u32,
    pub member_of: &'a [String],
    pub comment: &'a str,
}

/// `CREATE ROLE … ; COMMENT ON ROLE …`, in one transaction.
pub(super) fn create_role(r: &NewRole<'_>) -> Result<String, CredentialError> {
    let name = escape_identifier(r.name);
    let verifier = postgres_protocol::password::scram_sha_256(r.password.as_bytes());
    let member_of: Vec<String> = r.member_of.iter().map(|m| escape_identifier(m)).collect();
    Ok(format!(
        "BEGIN;\n\
         CREATE ROLE {name} WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
         CONNECTION LIMIT {limit} PASSWORD {password} VALID UNTIL {until} IN ROLE {member_of};\n\
         COMMENT ON ROLE {name} IS {comment};\n\
         COMMIT;",
        limit = r.connection_limit,
        password = escape_literal(&verifier),
        until = escape_literal(&rfc3339(r.valid_until)?),
        member_of = member_of.join(", "),
        comment = escape_literal(r.comment),
    ))
}

/// The comment every dynamic role carries: actbridge's mark (the reaper drops only roles
/// with it) and the expiry — nothing about whom the role is for, since every role can
/// read every role's comment (`shobj_description`). actbridge logs whom it is for.
pub(super) fn comment(valid_until: u64) -> Result<String, CredentialError> {
    Ok(format!("{COMMENT_MARK} expires {}", rfc3339(valid_until)?))
}

/// How every dynamic role's comment starts.
pub(super) const COMMENT_MARK: &str = "actbridge:";

/// The expired roles with the prefix and the mark, oldest first. Binds: `$1` prefix,
/// `$2` mark.
pub(super) const EXPIRED_ROLES: &str = "SELECT rolname FROM pg_roles \
     WHERE starts_with(rolname, $1) \
     AND starts_with(shobj_description(oid, 'pg_authid'), $2) \
     AND rolvaliduntil IS NOT NULL AND rolvaliduntil <= now() \
     ORDER BY rolvaliduntil, rolname";

/// Terminates every session of a role, in every database, waiting up to `$2` ms for
/// each to end; returns how many did not end in time. Binds: `$1` role name, `$2` ms.
pub(super) const TERMINATE_SESSIONS: &str = "SELECT count(*) FILTER (WHERE NOT pg_terminate_backend(pid, $2)) \
     FROM pg_stat_activity WHERE usename = $1";

/// `ALTER ROLE … NOLOGIN`: the first step in ending an expired role.
pub(super) fn revoke_login(name: &str) -> String {
    format!("ALTER ROLE {} NOLOGIN", escape_identifier(name))
}

/// Makes the administrative role a member of `name`: what PostgreSQL asks of whoever
/// terminates a role's sessions or drops what it owns — the privileges of that role.
/// (15: CREATEROLE may grant any non-superuser role; 16+: the role's creator holds
/// ADMIN OPTION on it.) The membership goes with the role.
pub(super) fn grant_to_admin(name: &str) -> String {
    format!("GRANT {} TO CURRENT_USER", escape_identifier(name))
}

/// Drops what `name` owns in this database (its tables, large objects, default
/// privileges; what depends on them too) and revokes what was granted to it, then the
/// role: two statements of one simple query, so one implicit transaction — both or
/// neither, and nothing left half-done on the connection.
pub(super) fn drop_role(name: &str) -> String {
    let q = escape_identifier(name);
    format!("DROP OWNED BY {q} CASCADE; DROP ROLE {q}")
}

/// Unix seconds as RFC 3339 UTC (`2026-11-25T10:15:00Z`).
pub(super) fn rfc3339(secs: u64) -> Result<String, CredentialError> {
    crate::clock::rfc3339(secs)
        .ok_or_else(|| CredentialError::InvalidResponse(format!("time {secs} out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_quoted_not_pasted() {
        let sql = create_role(&NewRole {
            name: "actbridge_x",
            password: "p'w",
            valid_until: 1_764_000_000,
            connection_limit: 2,
            member_of: &["finance_reader".into(), "weird\"role".into()],
            comment: "for o'brien",
        })
        .unwrap();
        assert!(
            sql.contains("CREATE ROLE \"actbridge_x\" WITH LOGIN"),
            "{sql}"
        );
        assert!(
            sql.contains("IN ROLE \"finance_reader\", \"weird\"\"role\""),
            "{sql}"
        );
        assert!(sql.contains("VALID UNTIL '2025-11-24T16:00:00Z'"), "{sql}");
        assert!(sql.contains("PASSWORD 'SCRAM-SHA-256$4096:"), "{sql}");
        assert!(
            !sql.contains("p'w") && !sql.contains("p''w"),
            "the password itself is never sent"
        );
        assert!(sql.contains("IS 'for o''brien'"), "{sql}");
    }

    #[test]
    fn the_comment_holds_the_mark_and_the_expiry_only() {
        assert_eq!(
            comment(1_764_000_000).unwrap(),
            "actbridge: expires 2025-11-24T16:00:00Z"
        );
    }

    #[test]
    fn ending_a_role_quotes_it_and_drops_what_it_owns_with_it() {
        let name = "actbridge_\"x";
        assert_eq!(revoke_login(name), "ALTER ROLE \"actbridge_\"\"x\" NOLOGIN");
        assert_eq!(
            grant_to_admin(name),
            "GRANT \"actbridge_\"\"x\" TO CURRENT_USER"
        );
        assert_eq!(
            drop_role(name),
            "DROP OWNED BY \"actbridge_\"\"x\" CASCADE; DROP ROLE \"actbridge_\"\"x\""
        );
    }

    #[test]
    fn a_time_beyond_the_calendar_is_an_error_not_a_panic() {
        assert_eq!(rfc3339(1_764_000_000).unwrap(), "2025-11-24T16:00:00Z");
        for secs in [253_402_300_800, i64::MAX as u64, u64::MAX] {
            assert!(rfc3339(secs).is_err(), "{secs}");
        }
    }
}
