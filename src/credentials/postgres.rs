//! `postgres`: a dynamic login role per (user, agent chain, grant), member of the roles
//! the grant maps to, able to log in until `VALID UNTIL`, then revoked and dropped by the
//! reaper.
//!
//! actbridge holds an administrative role (`CREATEROLE`). A vending request gets a fresh
//! role — a random name with the configured prefix, a random password (sent to the
//! server only as a SCRAM verifier), `CONNECTION LIMIT`, `IN ROLE` the mapped roles and a
//! comment naming the user, the agent and the expiry — and its credentials. PostgreSQL
//! enforces the intersection: the role has the mapped roles' privileges and nothing else.

mod reaper;
mod sql;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;

use super::{CredentialError, Grantee, Scope, Vended};
use crate::clock::now_secs;
use crate::config::{PostgresConfig, Secret};

/// How every dynamic role's comment starts (the reaper drops only such roles).
const COMMENT_MARK: &str = "actbridge:";

struct Minted {
    username: String,
    password: Secret,
    expires_at: u64,
    cache_for: Duration,
}

struct CacheFor;

impl<K> moka::Expiry<K, Arc<Minted>> for CacheFor {
    fn expire_after_create(&self, _: &K, v: &Arc<Minted>, _: Instant) -> Option<Duration> {
        Some(v.cache_for)
    }
}

/// (user, chain, roles): what a dynamic role is minted for.
type RoleKey = (String, Vec<String>, Vec<String>);

/// The `postgres` backend.
pub struct Postgres {
    cfg: PostgresConfig,
    minted: moka::future::Cache<RoleKey, Arc<Minted>>,
    /// Hits and misses of `minted`; a miss is one mint.
    stats: Arc<crate::telemetry::metrics::CacheStats>,
}

impl Postgres {
    pub(super) fn new(cfg: &PostgresConfig) -> Postgres {
        Postgres {
            cfg: cfg.clone(),
            stats: crate::telemetry::metrics::CacheStats::shared(),
            minted: moka::future::Cache::builder()
                .max_capacity(10_000)
                .expire_after(CacheFor)
                .build(),
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

    pub(super) fn forget_cached(&self) {
        self.minted.invalidate_all();
    }

    pub(super) fn cache_stats(&self) -> &Arc<crate::telemetry::metrics::CacheStats> {
        &self.stats
    }

    pub(super) async fn vend(&self, who: &Grantee<'_>) -> Result<Vended, CredentialError> {
        let roles = super::mapped(who.grant, &self.cfg.roles)?;
        let key = (who.user.to_string(), who.chain.to_vec(), roles.clone());
        let minted = self
            .stats
            .get_or_mint(&self.minted, key, self.mint(who, roles))
            .await
            .map_err(|e: Arc<CredentialError>| (*e).clone())?;
        Ok(Vended(serde_json::json!({
            "username": minted.username,
            "password": minted.password.expose(),
            "host": self.cfg.host,
            "port": self.cfg.port,
            "database": self.cfg.database,
            "expires_at": sql::rfc3339(minted.expires_at)?,
        })))
    }

    async fn mint(
        &self,
        who: &Grantee<'_>,
        roles: Vec<String>,
    ) -> Result<Arc<Minted>, CredentialError> {
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
            comment: &format!(
                "actbridge: for {for_whom}, expires {}",
                sql::rfc3339(expires_at)?
            ),
        })?;
        let client = self.admin().await?;
        self.bounded(client.batch_execute(&statement)).await?;
        tracing::info!(
            role = username,
            for_whom,
            member_of = roles.join(","),
            expires_at,
            "PostgreSQL role created"
        );
        let life = Duration::from_secs(expires_at.saturating_sub(now_secs()));
        Ok(Arc::new(Minted {
            username,
            password: Secret::new(password),
            expires_at,
            cache_for: life - life / 5,
        }))
    }

    /// Revokes, disconnects and drops every expired role with the prefix; returns how
    /// many were dropped.
    pub(super) async fn reap(&self) -> Result<usize, CredentialError> {
        reaper::reap(self).await
    }

    /// The reaper loop: at once (roles left by an earlier run), then every
    /// `reaper_interval`, until `shutdown`.
    pub(super) async fn run_reaper(&self, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            match self.reap().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(dropped = n, "expired PostgreSQL roles dropped"),
                Err(e) => tracing::warn!(error = %e, "PostgreSQL reaper failed; retrying"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.cfg.reaper_interval) => {}
            }
        }
    }

    /// A connection as the administrative role; its connection task ends with the
    /// client.
    async fn admin(&self) -> Result<tokio_postgres::Client, CredentialError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.cfg.host)
            .port(self.cfg.port)
            .dbname(&self.cfg.database)
            .user(&self.cfg.admin_user)
            .password(self.cfg.admin_password.expose())
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
                message = db.message(),
                "PostgreSQL refused"
            );
            CredentialError::Refused {
                code: format!("SQLSTATE {}", db.code().code()),
            }
        }
        None => CredentialError::Unavailable(format!("PostgreSQL: {e}")),
    }
}
