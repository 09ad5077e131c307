//! The running policy: the compiled version in use (swapped atomically on reload), the
//! decision cache, and evaluation with a time limit.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use super::bundle::Bundle;
use super::{PolicyDecision, PolicyError, PolicyInput};
use crate::config::PolicyConfig;

/// One loaded policy version.
struct Loaded {
    /// Content version (hex), for logs.
    version: String,
    /// Load generation: part of every decision-cache key, so a reload never serves an
    /// answer of the previous version.
    generation: u64,
    compiled: regorus::CompiledPolicy,
}

/// The policy engine shared by every request.
pub struct PolicyEngine {
    cfg: PolicyConfig,
    current: ArcSwap<Loaded>,
    generations: AtomicU64,
    cache: Option<moka::sync::Cache<(u64, String), Arc<PolicyDecision>>>,
}

impl PolicyEngine {
    /// Loads and compiles the policy directory; an error names the file (and line).
    pub fn load(cfg: &PolicyConfig) -> Result<PolicyEngine, PolicyError> {
        // regorus reads the evaluation time limit from this process-wide setting for
        // every evaluation of a compiled policy.
        regorus::utils::limits::set_fallback_execution_timer_config(Some(
            regorus::utils::limits::ExecutionTimerConfig {
                limit: cfg.eval_timeout,
                check_interval: NonZeroU32::new(64).unwrap_or(NonZeroU32::MIN),
            },
        ));
        let bundle = Bundle::read(&cfg.dir)?;
        let compiled = bundle.compile(&cfg.entrypoint)?;
        tracing::info!(dir = %cfg.dir.display(), version = %bundle.version, "policy loaded");
        Ok(PolicyEngine {
            cfg: cfg.clone(),
            current: ArcSwap::from_pointee(Loaded {
                version: bundle.version,
                generation: 0,
                compiled,
            }),
            generations: AtomicU64::new(0),
            cache: (cfg.decision_cache_entries > 0).then(|| {
                moka::sync::Cache::builder()
                    .max_capacity(cfg.decision_cache_entries)
                    .time_to_live(cfg.decision_cache_ttl)
                    .build()
            }),
        })
    }

    /// The engine for a config's optional `policy` section (`None` when there is none).
    pub fn load_configured(
        cfg: Option<&PolicyConfig>,
    ) -> Result<Option<Arc<PolicyEngine>>, PolicyError> {
        cfg.map(|c| PolicyEngine::load(c).map(Arc::new)).transpose()
    }

    /// The version in use (hex of the content hash).
    pub fn version(&self) -> String {
        self.current.load().version.clone()
    }

    /// Judges one request. Errors (evaluation failure, time limit, malformed answer) are
    /// returned, never turned into an allow; only well-formed answers are cached.
    pub fn decide(&self, input: &PolicyInput) -> Result<Arc<PolicyDecision>, PolicyError> {
        let loaded = self.current.load();
        let json = serde_json::to_string(input)
            .map_err(|e| PolicyError::Eval(format!("input not serializable: {e}")))?;
        let Some(cache) = &self.cache else {
            return evaluate(&loaded.compiled, &json).map(Arc::new);
        };
        let key = (loaded.generation, json);
        if let Some(hit) = cache.get(&key) {
            return Ok(hit);
        }
        let decision = Arc::new(evaluate(&loaded.compiled, &key.1)?);
        cache.insert(key, decision.clone());
        Ok(decision)
    }

    /// Re-reads the directory and swaps in the new version if it compiles. Returns the new
    /// version, `Ok(None)` when nothing changed; on error the running version is kept.
    pub fn reload(&self) -> Result<Option<String>, PolicyError> {
        let bundle = Bundle::read(&self.cfg.dir)?;
        if bundle.version == self.current.load().version {
            return Ok(None);
        }
        let compiled = bundle.compile(&self.cfg.entrypoint)?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        self.current.store(Arc::new(Loaded {
            version: bundle.version.clone(),
            generation,
            compiled,
        }));
        Ok(Some(bundle.version))
    }

    /// Checks the directory every `reload_interval` until `shutdown`; a broken version is
    /// reported once per change and the running one kept.
    pub async fn run_reload(self: Arc<Self>, shutdown: CancellationToken) {
        let Some(period) = self.cfg.reload_interval else {
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
            match outcome {
                Ok(Ok(Some(version))) => {
                    tracing::info!(%version, "policy reloaded");
                    last_error = None;
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    if last_error.as_ref() != Some(&e) {
                        tracing::error!(error = %e, version = %self.version(), "policy reload failed; keeping the running version");
                    }
                    last_error = Some(e);
                }
                Err(e) => tracing::error!(error = %e, "policy reload task failed"),
            }
        }
    }
}

/// Evaluates the compiled entrypoint for an input given as JSON.
fn evaluate(
    compiled: &regorus::CompiledPolicy,
    input_json: &str,
) -> Result<PolicyDecision, PolicyError> {
    let input: regorus::Value =
        serde_json::from_str(input_json).map_err(|e| PolicyError::Eval(format!("input: {e}")))?;
    evaluate_value(compiled, input)
}

/// Evaluates the compiled entrypoint and parses the decision.
pub(super) fn evaluate_value(
    compiled: &regorus::CompiledPolicy,
    input: regorus::Value,
) -> Result<PolicyDecision, PolicyError> {
    let out = compiled
        .eval_with_input(input)
        .map_err(|e| PolicyError::Eval(e.to_string()))?;
    if out == regorus::Value::Undefined {
        return Err(PolicyError::Malformed("the entrypoint is undefined".into()));
    }
    let json = serde_json::to_value(&out).map_err(|e| PolicyError::Malformed(e.to_string()))?;
    PolicyDecision::from_value(json)
}
