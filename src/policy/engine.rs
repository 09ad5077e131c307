//! The running policy — in process (a compiled directory, reloaded atomically) or a
//! remote OPA — and the decision cache in front of either.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::local::LocalPolicy;
use super::opa::OpaClient;
use super::{PolicyDecision, PolicyError, PolicyInput};
use crate::config::{PolicyConfig, PolicySource};
use crate::telemetry::metrics::CacheStats;

/// Where decisions come from.
enum Backend {
    Local(LocalPolicy),
    Remote(OpaClient),
}

/// The policy engine shared by every request.
pub struct PolicyEngine {
    cfg: PolicyConfig,
    backend: Backend,
    cache: Option<moka::sync::Cache<(u64, String), Arc<PolicyDecision>>>,
    stats: Arc<CacheStats>,
    reloads: Reloads,
}

/// What the reload task saw (`actbridge_policy_*` metrics).
#[derive(Default)]
struct Reloads {
    ok: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    failing: std::sync::atomic::AtomicBool,
}

impl PolicyEngine {
    /// Loads and compiles the policy directory (an error names the file and line), or
    /// prepares the client of the remote OPA (no call is made until a request needs it).
    pub fn load(cfg: &PolicyConfig) -> Result<PolicyEngine, PolicyError> {
        let backend = match &cfg.source {
            PolicySource::Directory(dir) => {
                Backend::Local(LocalPolicy::load(dir, &cfg.entrypoint, cfg.eval_timeout)?)
            }
            PolicySource::Opa(base) => {
                Backend::Remote(OpaClient::new(base, &cfg.entrypoint, cfg.eval_timeout)?)
            }
        };
        Ok(PolicyEngine {
            cfg: cfg.clone(),
            backend,
            cache: (cfg.decision_cache_entries > 0).then(|| {
                moka::sync::Cache::builder()
                    .max_capacity(cfg.decision_cache_entries)
                    .time_to_live(cfg.decision_cache_ttl)
                    .build()
            }),
            stats: CacheStats::shared(),
            reloads: Reloads::default(),
        })
    }

    /// The load generation and what the reloads did, for the metrics.
    pub fn status(&self) -> crate::telemetry::metrics::PolicyStatus {
        use std::sync::atomic::Ordering::Relaxed;
        crate::telemetry::metrics::PolicyStatus {
            generation: match &self.backend {
                Backend::Local(local) => local.snapshot().generation,
                Backend::Remote(_) => 0,
            },
            reloads_ok: self.reloads.ok.load(Relaxed),
            reloads_failed: self.reloads.failed.load(Relaxed),
            failing: self.reloads.failing.load(Relaxed),
        }
    }

    /// The engine for a config's optional `policy` section (`None` when there is none).
    pub fn load_configured(
        cfg: Option<&PolicyConfig>,
    ) -> Result<Option<Arc<PolicyEngine>>, PolicyError> {
        cfg.map(|c| PolicyEngine::load(c).map(Arc::new)).transpose()
    }

    /// The version in use: the content hash of the directory, or `opa`.
    pub fn version(&self) -> String {
        match &self.backend {
            Backend::Local(local) => local.version(),
            Backend::Remote(_) => "opa".into(),
        }
    }

    /// Judges one request. Errors (evaluation failure, time limit, malformed answer, OPA
    /// unavailable) are returned, never turned into an allow; only well-formed answers are
    /// cached.
    pub async fn decide(&self, input: &PolicyInput) -> Result<Arc<PolicyDecision>, PolicyError> {
        let json = serde_json::to_string(input)
            .map_err(|e| PolicyError::Eval(format!("input not serializable: {e}")))?;
        match &self.backend {
            Backend::Local(local) => {
                let loaded = local.snapshot();
                let key = (loaded.generation, json);
                if let Some(hit) = self.lookup(&key) {
                    return Ok(hit);
                }
                let decision = loaded
                    .evaluate(&key.1)
                    .inspect_err(|_| self.stats.error())?;
                Ok(self.remember(key, decision))
            }
            // A remote policy has no version here: its answers live for the cache's TTL.
            Backend::Remote(opa) => {
                let key = (0, json);
                if let Some(hit) = self.lookup(&key) {
                    return Ok(hit);
                }
                let decision = opa
                    .decide(&key.1)
                    .await
                    .inspect_err(|_| self.stats.error())?;
                Ok(self.remember(key, decision))
            }
        }
    }

    fn lookup(&self, key: &(u64, String)) -> Option<Arc<PolicyDecision>> {
        let hit = self.cache.as_ref().and_then(|c| c.get(key));
        match &hit {
            Some(_) => self.stats.hit(),
            None => self.stats.miss(),
        }
        hit
    }

    /// Hits and misses of the decision cache; a miss is one evaluation (for a remote OPA,
    /// one call; errors are failed evaluations).
    pub fn cache_stats(&self) -> &Arc<CacheStats> {
        &self.stats
    }

    fn remember(&self, key: (u64, String), decision: PolicyDecision) -> Arc<PolicyDecision> {
        let decision = Arc::new(decision);
        if let Some(cache) = &self.cache {
            cache.insert(key, decision.clone());
        }
        decision
    }

    /// Re-reads the directory and swaps in the new version if it compiles. Returns the new
    /// version, `Ok(None)` when nothing changed (always, for a remote OPA); on error the
    /// running version is kept.
    pub fn reload(&self) -> Result<Option<String>, PolicyError> {
        match &self.backend {
            Backend::Local(local) => local.reload(),
            Backend::Remote(_) => Ok(None),
        }
    }

    /// Checks the directory every `reload_interval` until `shutdown`; a broken version is
    /// reported once per change and the running one kept. Returns at once for a remote OPA.
    pub async fn run_reload(self: Arc<Self>, shutdown: CancellationToken) {
        let (Backend::Local(_), Some(period)) = (&self.backend, self.cfg.reload_interval) else {
            return;
        };
        let mut last_error: Option<PolicyError> = None;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let this = self.clone();
            let outcome = tokio::task::spawn_blocking(move || this.reload()).await;
            use std::sync::atomic::Ordering::Relaxed;
            match outcome {
                Ok(Ok(Some(version))) => {
                    tracing::info!(%version, "policy reloaded");
                    self.reloads.ok.fetch_add(1, Relaxed);
                    self.reloads.failing.store(false, Relaxed);
                    last_error = None;
                }
                // Unchanged, or changed back to the running version.
                Ok(Ok(None)) => {
                    self.reloads.failing.store(false, Relaxed);
                    last_error = None;
                }
                Ok(Err(e)) => {
                    // Counted once per broken version, as it is logged.
                    if last_error.as_ref() != Some(&e) {
                        tracing::error!(error = %e, version = %self.version(), "policy reload failed; keeping the running version");
                        self.reloads.failed.fetch_add(1, Relaxed);
                    }
                    self.reloads.failing.store(true, Relaxed);
                    last_error = Some(e);
                }
                Err(e) => {
                    tracing::error!(error = %e, "policy reload task failed");
                    self.reloads.failed.fetch_add(1, Relaxed);
                    self.reloads.failing.store(true, Relaxed);
                }
            }
        }
    }
}
