//! The in-process policy: a directory compiled with regorus, the version in use behind
//! `ArcSwap`, replaced atomically on reload.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::bundle::Bundle;
use super::{PolicyDecision, PolicyError};

/// One loaded policy version.
pub(super) struct Loaded {
    /// Content version (hex), for logs.
    version: String,
    /// Load generation: part of every decision-cache key, so a reload never serves an
    /// answer of the previous version.
    pub generation: u64,
    compiled: regorus::CompiledPolicy,
}

impl Loaded {
    /// Evaluates this version for an input given as JSON.
    pub(super) fn evaluate(&self, input_json: &str) -> Result<PolicyDecision, PolicyError> {
        let input: regorus::Value = serde_json::from_str(input_json)
            .map_err(|e| PolicyError::Eval(format!("input: {e}")))?;
        evaluate_value(&self.compiled, input)
    }
}

/// A policy directory, compiled.
pub(super) struct LocalPolicy {
    dir: PathBuf,
    entrypoint: String,
    current: ArcSwap<Loaded>,
    generations: AtomicU64,
}

impl LocalPolicy {
    /// Loads and compiles `dir`; an error names the file (and line).
    pub(super) fn load(
        dir: &Path,
        entrypoint: &str,
        eval_timeout: Duration,
    ) -> Result<Self, PolicyError> {
        // regorus reads the evaluation time limit from this process-wide setting for
        // every evaluation of a compiled policy.
        regorus::utils::limits::set_fallback_execution_timer_config(Some(
            regorus::utils::limits::ExecutionTimerConfig {
                limit: eval_timeout,
                check_interval: NonZeroU32::new(64).unwrap_or(NonZeroU32::MIN),
            },
        ));
        let bundle = Bundle::read(dir)?;
        let compiled = bundle.compile(entrypoint)?;
        tracing::info!(dir = %dir.display(), version = %bundle.version, "policy loaded");
        Ok(LocalPolicy {
            dir: dir.to_path_buf(),
            entrypoint: entrypoint.to_string(),
            current: ArcSwap::from_pointee(Loaded {
                version: bundle.version,
                generation: 0,
                compiled,
            }),
            generations: AtomicU64::new(0),
        })
    }

    /// The version in use (hex of the content hash).
    pub(super) fn version(&self) -> String {
        self.current.load().version.clone()
    }

    /// The version in use, held for one decision (a reload does not change it mid-way).
    pub(super) fn snapshot(&self) -> Arc<Loaded> {
        self.current.load_full()
    }

    /// Re-reads the directory and swaps in the new version if it compiles. Returns the new
    /// version, `Ok(None)` when nothing changed; on error the running version is kept.
    pub(super) fn reload(&self) -> Result<Option<String>, PolicyError> {
        let bundle = Bundle::read(&self.dir)?;
        if bundle.version == self.current.load().version {
            return Ok(None);
        }
        let compiled = bundle.compile(&self.entrypoint)?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        self.current.store(Arc::new(Loaded {
            version: bundle.version.clone(),
            generation,
            compiled,
        }));
        Ok(Some(bundle.version))
    }
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
