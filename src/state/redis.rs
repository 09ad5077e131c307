//! The Redis every replica shares (`state.redis`): one connection (redis-rs'
//! `ConnectionManager`), made on first use — at the URL, or at the master the sentinels
//! name — and every command bounded by `state.redis.timeout`. A failure is
//! [`SharedStateError::Unavailable`]: the callers refuse (fail closed), the connection
//! is dropped, and the next request makes a new one, so a Redis that comes back (or a
//! new master) is used with no restart.
//!
//! A store whose promise is "never forget a live entry" cannot live in a Redis that
//! evicts keys under memory pressure: on each new connection `maxmemory-policy` is read,
//! and anything but `noeviction` makes every command fail (and is logged at ERROR). A
//! Redis that does not answer `CONFIG GET` (managed services often disable it) is used
//! with a warning that the policy could not be checked.

use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::Mutex;

use crate::config::RedisConfig;

/// Why a shared store could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharedStateError {
    /// Redis did not answer in time, refused the command, or may evict keys.
    #[error("the shared state (Redis) is unavailable: {0}")]
    Unavailable(String),
}

/// The connection to the shared Redis.
pub struct SharedRedis {
    /// Where the server is: the client, or why the URL cannot make one (config
    /// validation already refused such a URL: this only keeps the store failing closed).
    source: Source,
    timeout: Duration,
    prefix: String,
    display_url: String,
    conn: Mutex<Option<ConnectionManager>>,
}

/// Where the server is.
enum Source {
    /// At the URL.
    Direct(Result<redis::Client, String>),
    /// Wherever the sentinels say the master is, asked at each new connection.
    Sentinel(Mutex<redis::sentinel::SentinelClient>),
}

impl SharedRedis {
    /// The Redis of `cfg`; nothing is connected until the first command.
    pub fn new(cfg: &RedisConfig) -> SharedRedis {
        let source = match sentinel_client(cfg) {
            Some(Ok(sentinel)) => Source::Sentinel(Mutex::new(sentinel)),
            Some(Err(e)) => Source::Direct(Err(format!("state.redis.sentinels: {e}"))),
            None => Source::Direct(client_of(cfg).map_err(|e| format!("state.redis: {e}"))),
        };
        SharedRedis {
            source,
            timeout: cfg.timeout,
            prefix: cfg.key_prefix.clone(),
            display_url: cfg.display_url.clone(),
            conn: Mutex::new(None),
        }
    }

    /// `name` under this deployment's prefix.
    pub(super) fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Runs `cmd`, bounded by the timeout.
    pub(super) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, SharedStateError> {
        self.bounded(async |mut conn| cmd.query_async::<T>(&mut conn).await)
            .await
    }

    /// Runs `pipe` (atomic when built with `.atomic()`: one `MULTI`/`EXEC`), bounded by
    /// the timeout.
    pub(super) async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, SharedStateError> {
        self.bounded(async |mut conn| pipe.query_async::<T>(&mut conn).await)
            .await
    }

    /// Runs `script` (one atomic step at the server), bounded by the timeout.
    pub(super) async fn run_script<T: redis::FromRedisValue>(
        &self,
        script: &redis::ScriptInvocation<'_>,
    ) -> Result<T, SharedStateError> {
        self.bounded(async |mut conn| script.invoke_async::<T>(&mut conn).await)
            .await
    }

    /// The channel on which replicas tell each other that shared state changed.
    pub(super) fn events_channel(&self) -> String {
        self.key("events")
    }

    /// Announces `event` on the events channel.
    pub(super) async fn publish(&self, event: &str) -> Result<(), SharedStateError> {
        self.query::<i64>(redis::cmd("PUBLISH").arg(self.events_channel()).arg(event))
            .await
            .map(drop)
    }

    /// A new connection subscribed to the events channel (pub/sub needs a connection of
    /// its own), made within the timeout.
    pub(super) async fn subscribe(&self) -> Result<redis::aio::PubSubStream, SharedStateError> {
        let subscribed = async {
            let client = self.client().await?;
            let mut pubsub = client
                .get_async_pubsub()
                .await
                .map_err(|e| self.unavailable(&e))?;
            pubsub
                .subscribe(self.events_channel())
                .await
                .map_err(|e| self.unavailable(&e))?;
            Ok::<_, SharedStateError>(pubsub.into_on_message())
        };
        tokio::time::timeout(self.timeout, subscribed)
            .await
            .map_err(|_| self.late())?
    }

    /// A client for the server: the URL's, or the master the sentinels name now.
    async fn client(&self) -> Result<redis::Client, SharedStateError> {
        match &self.source {
            Source::Direct(client) => client.clone().map_err(SharedStateError::Unavailable),
            Source::Sentinel(sentinel) => sentinel
                .lock()
                .await
                .async_get_client()
                .await
                .map_err(|e| self.unavailable(&e)),
        }
    }

    /// Runs `call` on the connection, bounded by the timeout (connecting included). A
    /// failure drops the connection: the next command makes a new one (asking the
    /// sentinels again, and checking the eviction policy again — a failed-over or
    /// restarted server is another server).
    async fn bounded<T>(
        &self,
        call: impl AsyncFnOnce(ConnectionManager) -> redis::RedisResult<T>,
    ) -> Result<T, SharedStateError> {
        let bounded = async {
            let conn = self.connection().await?;
            call(conn).await.map_err(|e| self.unavailable(&e))
        };
        let outcome = tokio::time::timeout(self.timeout, bounded)
            .await
            .map_err(|_| self.late())
            .and_then(|r| r);
        if outcome.is_err() {
            self.conn.lock().await.take();
        }
        outcome
    }

    fn late(&self) -> SharedStateError {
        SharedStateError::Unavailable(format!(
            "{} did not answer within {:?}",
            self.display_url, self.timeout
        ))
    }

    /// The connection, made (and its eviction policy checked) if there is none yet.
    async fn connection(&self) -> Result<ConnectionManager, SharedStateError> {
        let mut held = self.conn.lock().await;
        if let Some(conn) = held.as_ref() {
            return Ok(conn.clone());
        }
        let client = self.client().await?;
        // No retries of its own: a refused handshake or password is reported as what it
        // is (not as a timeout), and the next request tries again.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let mut conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| self.unavailable(&e))?;
        self.check_eviction(&mut conn).await?;
        tracing::info!(redis = %self.display_url, "connected to the shared state");
        *held = Some(conn.clone());
        Ok(conn)
    }

    /// Refuses a Redis that may evict keys (see the module's documentation).
    async fn check_eviction(&self, conn: &mut ConnectionManager) -> Result<(), SharedStateError> {
        let answer: Result<Vec<String>, _> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(conn)
            .await;
        match answer.as_deref() {
            Ok([_, policy]) if policy == "noeviction" => Ok(()),
            Ok([_, policy]) => {
                let why = format!(
                    "{} has maxmemory-policy {policy}: it may evict a live single-use entry; set noeviction",
                    self.display_url
                );
                tracing::error!("{why}");
                Err(SharedStateError::Unavailable(why))
            }
            _ => {
                tracing::warn!(
                    redis = %self.display_url,
                    "cannot read maxmemory-policy (CONFIG GET refused): make sure it is noeviction"
                );
                Ok(())
            }
        }
    }

    fn unavailable(&self, e: &redis::RedisError) -> SharedStateError {
        SharedStateError::Unavailable(format!("{}: {e}", self.display_url))
    }
}

/// The client of `cfg`: with `ca_file` or a client certificate, TLS with them (rustls);
/// else as the URL says (`rediss://`: TLS with the system's roots).
fn client_of(cfg: &RedisConfig) -> redis::RedisResult<redis::Client> {
    use redis::IntoConnectionInfo;
    let info = cfg
        .url
        .expose()
        .as_str()
        .into_connection_info()?
        .set_tcp_settings(tcp_settings());
    let Some(tls) = &cfg.tls else {
        return redis::Client::open(info);
    };
    redis::Client::build_with_tls(
        info,
        redis::TlsCertificates {
            client_tls: tls
                .client
                .as_ref()
                .map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.expose().as_bytes().to_vec(),
                }),
            root_cert: tls.ca_pem.clone(),
        },
    )
}

/// The sentinel client of `cfg`, when it names sentinels: asking for the master named in
/// the URL, and connecting to it with the URL's database and credentials.
fn sentinel_client(
    cfg: &RedisConfig,
) -> Option<redis::RedisResult<redis::sentinel::SentinelClient>> {
    use redis::IntoConnectionInfo;
    let sentinel = cfg.sentinel.as_ref()?;
    Some((|| {
        let info = cfg.url.expose().as_str().into_connection_info()?;
        let mut node = redis::sentinel::SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(info.redis_settings().clone())
            .set_tcp_settings(tcp_settings());
        if matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) {
            node = node.set_tls_mode(redis::TlsMode::Secure);
        }
        redis::sentinel::SentinelClient::build(
            sentinel.sentinels.clone(),
            sentinel.master.clone(),
            Some(node),
            redis::sentinel::SentinelServerType::Master,
        )
    })())
}

/// `TCP_NODELAY` on: a command is one small write answered at once, which Nagle's
/// algorithm (redis-rs' default) would hold back waiting for an acknowledgement.
fn tcp_settings() -> redis::io::tcp::TcpSettings {
    redis::io::tcp::TcpSettings::default().set_nodelay(true)
}
