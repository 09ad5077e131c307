//! `postgres`: a dynamic login role per vend, member of the roles the grant maps to,
//! able to log in until `VALID UNTIL`, then ended by the reaper.
//!
//! actbridge holds an administrative role (`CREATEROLE`, ADMIN OPTION on the mapped
//! roles; checked by [`privileges`]). Every vend mints a fresh role — a random name with
//! the configured prefix, a random password (sent to the server only as a SCRAM
//! verifier), `CONNECTION LIMIT`, `IN ROLE` the mapped roles and a comment holding
//! actbridge's mark and the expiry — and hands out its credentials. Nothing is reused: a
//! role whose password its holder changed, or that a caller tampered with, is never
//! handed to anyone else. PostgreSQL enforces the intersection: the role has the mapped
//! roles' privileges and whatever `PUBLIC` holds (docs/credentials.md on revoking that).
//! At expiry the reaper ([`reaper`], woken by [`schedule`]) cuts its sessions and drops
//! it with what it created.

mod hardening;
mod privileges;
mod reaper;
mod schedule;
mod sql;

use std::sync::Arc;

use base64::Engine;

use super::{CredentialError, Grantee, Scope, Vended};
use crate::clock::now_secs;
use crate::config::PostgresConfig;
use crate::telemetry::metrics::{CacheStats, UndroppableRoles};

/// The `postgres` backend.
pub struct Postgres {
    cfg: PostgresConfig,
    /// Every vend is a mint (nothing is cached): each counts as a miss, and a failed one
    /// as an error.
    stats: Arc<CacheStats>,
    /// What the last check of the administrative role's privileges found.
    privileges: privileges::Gate,
    /// What the last check of `PUBLIC`'s hardening found.
    hardening: hardening::Hardening,
    /// The expiries of the roles this process minted: the reaper wakes at each.
    expiries: schedule::Expiries,
    /// Roles the last reaper pass failed to drop (`actbridge_postgres_roles_undroppable`).
    undroppable: Arc<UndroppableRoles>,
}

impl Postgres {
    pub(super) fn new(cfg: &PostgresConfig) -> Postgres {
        Postgres {
            cfg: cfg.clone(),
            stats: CacheStats::shared(),
            privileges: privileges::Gate::default(),
            hardening: hardening::Hardening::default(),
            expiries: schedule::Expiries::default(),
            undroppable: UndroppableRoles::register(),
        }
    }

    /// A vending request must be `action: connect`; the policy sees no resource.
    pub(super) fn vend_scope(&self, action: &str) -> Result<Scope, CredentialError> {
        if action != "connect" {
            return Err(CredentialError::BadVendRequest(
                "`action` must be `connect` for PostgreSQL".into(),
            ));
        }
        Ok(Scope {
            action: "connect",
            resource: Vec::new(),
            object: String::new(),
        })
    }

    /// Nothing is cached: every vend mints a new role.
    pub(super) fn forget_cached(&self) {}

    /// Every vend counts as a miss (one mint); a failed one as an error too.
    pub(super) fn cache_stats(&self) -> &Arc<CacheStats> {
        &self.stats
    }

    /// A new role, with a new password, for every call; within `timeout` in all
    /// (connecting, the first check, `CREATE ROLE`), so that a slow server is
    /// actbridge's 503, inside Envoy's ext_proc `message_timeout`. A role created just as
    /// the time ran out is never handed out; it expires and is reaped.
    pub(super) async fn vend(&self, who: &Grantee<'_>) -> Result<Vended, CredentialError> {
        let roles = super::mapped(who.grant, &self.cfg.roles)?;
        self.stats.miss();
        // Timed inside the deadline: a call cut short counts as an error.
        let mint = crate::telemetry::metrics::timed("postgres", self.mint(who, roles));
        tokio::time::timeout(self.cfg.timeout, mint)
            .await
            .unwrap_or_else(|_| Err(CredentialError::Unavailable("PostgreSQL timed out".into())))
            .inspect_err(|_| self.stats.error())
    }

    async fn mint(&self, who: &Grantee<'_>, roles: Vec<String>) -> Result<Vended, CredentialError> {
        let client = self.admin().await?;
        if !self.privileges.checked() {
            self.check(&client).await?;
        }
        self.privileges.admit(&self.cfg, &roles)?;
        let username = format!(
            "{}{}",
            self.cfg.role_prefix,
            hex::encode(rand::random::<[u8; 12]>())
        );
        let password =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let expires_at = now_secs().saturating_add(self.cfg.ttl.as_secs().max(1));
        let for_whom = who.credential_name();
        let statement = sql::create_role(&sql::NewRole {
            name: &username,
            password: &password,
            valid_until: expires_at,
            connection_limit: self.cfg.connection_limit,
            member_of: &roles,
            comment: &sql::comment(expires_at)?,
        })?;
        self.bounded(client.batch_execute(&statement)).await?;
        // Whom the role is for is in actbridge's log, not in the catalogue every role
        // reads.
        tracing::info!(
            role = username,
            for_whom,
            member_of = roles.join(","),
            expires_at,
            "PostgreSQL role created"
        );
        self.expiries.add(expires_at, username.clone());
        Ok(Vended(serde_json::json!({
            "username": username,
            "password": password,
            "host": self.cfg.host,
            "port": self.cfg.port,
            "database": self.cfg.database,
            "expires_at": sql::rfc3339(expires_at)?,
        })))
    }

    /// Checks the administrative role's privileges (recorded for the vends) and
    /// `PUBLIC`'s hardening (warned about) on `client`.
    async fn check(&self, client: &tokio_postgres::Client) -> Result<(), CredentialError> {
        let found = privileges::check(self, client).await?;
        self.privileges.record(&self.cfg, found);
        self.hardening.check(self, client).await
    }

    /// The reaper loop, until `shutdown`: a pass at once (roles left by an earlier run),
    /// then at the expiry of each role this process minted, and every
    /// `reaper_interval` — passes at least [`schedule::MIN_GAP`] apart.
    pub(super) async fn run_reaper(&self, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            let started = now_secs();
            let gap = tokio::time::Instant::now() + schedule::MIN_GAP;
            match reaper::reap(self).await {
                Ok(pass) => {
                    if !pass.dropped.is_empty() {
                        tracing::info!(
                            dropped = pass.dropped.len(),
                            "expired PostgreSQL roles dropped"
                        );
                    }
                    if !pass.failed.is_empty() {
                        tracing::warn!(
                            undroppable = pass.failed.len(),
                            "expired PostgreSQL roles could not be dropped \
                             (actbridge_postgres_roles_undroppable)"
                        );
                    }
                    self.undroppable.set(pass.failed.len() as u64);
                    let ended = [pass.dropped, pass.failed].concat();
                    self.expiries.settle(started, &ended);
                }
                Err(e) => tracing::warn!(error = %e, "PostgreSQL reaper failed; retrying"),
            }
            let periodic = tokio::time::Instant::now() + self.cfg.reaper_interval;
            loop {
                let next = self.expiries.first().map_or(periodic, |at| {
                    (tokio::time::Instant::now() + schedule::until(at)).min(periodic)
                });
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(next.max(gap)) => break,
                    _ = self.expiries.earlier_added() => {}
                }
            }
        }
    }

    /// A connection as the administrative role; its connection task ends with the
    /// client. The server bounds its statements and lock waits by `timeout` too (so a
    /// statement the client gave up on does not hold the connection), and resolves
    /// names in `pg_catalog` only.
    async fn admin(&self) -> Result<tokio_postgres::Client, CredentialError> {
        let ms = self.cfg.timeout.as_millis();
        let mut config = tokio_postgres::Config::new();
        config
            .options(format!(
                "-c search_path=pg_catalog -c statement_timeout={ms} -c lock_timeout={ms}"
            ))
            .host(&self.cfg.host)
            .port(self.cfg.port)
            .dbname(&self.cfg.database)
            .user(&self.cfg.admin_user)
            .password(self.cfg.admin_password.expose().as_str())
            .application_name("actbridge")
            .connect_timeout(self.cfg.timeout);
        let (client, connection) = self.bounded(config.connect(tokio_postgres::NoTls)).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL admin connection ended");
            }
        });
        Ok(client)
    }

    /// Runs `f` within the configured timeout, sorting its error.
    async fn bounded<T>(
        &self,
        f: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, CredentialError> {
        match tokio::time::timeout(self.cfg.timeout, f).await {
            Err(_) => Err(CredentialError::Unavailable("PostgreSQL timed out".into())),
            Ok(r) => r.map_err(classify),
        }
    }
}

/// A server's refusal (it answered with an SQLSTATE) → refused, logged with its code;
/// anything else (connect, I/O, closed) → unavailable.
fn classify(e: tokio_postgres::Error) -> CredentialError {
    match e.as_db_error() {
        Some(db) => {
            tracing::warn!(
                code = db.code().code(),
                error = db.message(),
                "PostgreSQL refused"
            );
            CredentialError::Refused {
                code: format!("SQLSTATE {}", db.code().code()),
            }
        }
        None => CredentialError::Unavailable(format!("PostgreSQL: {e}")),
    }
}
