//! Prometheus metrics, served on the admin listener at `/metrics` (OpenMetrics text,
//! which Prometheus scrapes natively). Names follow Prometheus conventions
//! (`actbridge_…_total`, `_seconds`); labels are bounded (directions, route names from
//! the config, reason codes, stage and cache names) — never a user, a token or a path.
//!
//! The request path updates counters and histograms directly (atomics, no locks on the
//! hot path once a label set exists). Caches and upstream calls keep their own
//! [`CacheStats`] (the module owning the cache increments it), read at scrape time, so
//! the token verifier, the exchanger, the policy engine and the credential backends do
//! not depend on this registry.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Hits, misses (each miss is one call to the upstream behind the cache) and failed
/// calls of one cache.
#[derive(Debug, Default)]
pub struct CacheStats {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
}

impl CacheStats {
    /// A new, shared set of counters.
    pub fn shared() -> Arc<CacheStats> {
        Arc::new(CacheStats::default())
    }

    /// Served from the cache.
    pub fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Not in the cache: the upstream is called.
    pub fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// The upstream call made for a miss failed.
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// `key` from `cache`, or minted by `mint` when absent — counted as a miss, and its
    /// failure as an error; concurrent callers for one key share one mint (moka's
    /// single-flight) and count as hits.
    pub async fn get_or_mint<K, V, E, F>(
        &self,
        cache: &moka::future::Cache<K, V>,
        key: K,
        mint: F,
    ) -> Result<V, Arc<E>>
    where
        K: std::hash::Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: std::future::Future<Output = Result<V, E>>,
    {
        let minted = std::sync::atomic::AtomicBool::new(false);
        let got = cache
            .try_get_with(key, async {
                minted.store(true, Ordering::Relaxed);
                self.miss();
                mint.await.inspect_err(|_| self.error())
            })
            .await;
        if !minted.load(Ordering::Relaxed) {
            self.hit();
        }
        got
    }

    /// (hits, misses, errors).
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

/// Expired PostgreSQL roles that one `postgres` backend's reaper failed to drop in its
/// last pass (each is logged with its SQLSTATE). Every live instance is summed into
/// `actbridge_postgres_roles_undroppable` at every scrape — a process-wide list rather
/// than a probe registered with [`Metrics`], so the backend reports without being wired
/// through the pipeline; the gauge is absent when no `postgres` backend exists.
#[derive(Debug, Default)]
pub struct UndroppableRoles(AtomicU64);

static UNDROPPABLE: Mutex<Vec<Weak<UndroppableRoles>>> = Mutex::new(Vec::new());

impl UndroppableRoles {
    /// A new count (0), reported until it is dropped.
    pub fn register() -> Arc<UndroppableRoles> {
        let n = Arc::new(UndroppableRoles::default());
        if let Ok(mut all) = UNDROPPABLE.lock() {
            all.retain(|w| w.strong_count() > 0);
            all.push(Arc::downgrade(&n));
        }
        n
    }

    /// The roles the last pass failed to drop.
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }

    /// The sum over every live instance; `None` when there is none.
    fn total() -> Option<u64> {
        let all = UNDROPPABLE.lock().ok()?;
        let live: Vec<Arc<UndroppableRoles>> = all.iter().filter_map(Weak::upgrade).collect();
        (!live.is_empty()).then(|| live.iter().map(|n| n.0.load(Ordering::Relaxed)).sum())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    direction: &'static str,
    route: String,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    direction: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    direction: &'static str,
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    upstream: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    upstream: &'static str,
    outcome: &'static str,
}

/// How long each call to a peer took: process-wide, like the undroppable roles, so that
/// the clients calling peers record without being wired through the pipeline;
/// registered in every [`Metrics`].
static UPSTREAM_DURATION: LazyLock<Family<PeerLabels, Histogram>> =
    LazyLock::new(|| Family::new_with_constructor(upstream_histogram as fn() -> _));

/// Peer latency buckets: 1 ms to 10 s.
fn upstream_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// Times one call to `upstream` (`jwks`, `token_service`, `introspection`, `opa`,
/// `aws_sts`, `github_app`, `postgres`) into `actbridge_upstream_duration_seconds`. A
/// call dropped before it ends (a deadline, a cancelled request) counts as an error.
pub async fn timed<T, E>(
    upstream: &'static str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let mut timer = UpstreamTimer {
        upstream,
        started: Instant::now(),
        ok: false,
    };
    let result = call.await;
    timer.ok = result.is_ok();
    result
}

/// Records its call's time when dropped: at the end, or when the call is abandoned.
struct UpstreamTimer {
    upstream: &'static str,
    started: Instant,
    ok: bool,
}

impl Drop for UpstreamTimer {
    fn drop(&mut self) {
        let outcome = if self.ok { "ok" } else { "error" };
        UPSTREAM_DURATION
            .get_or_create(&PeerLabels {
                upstream: self.upstream,
                outcome,
            })
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// Each issuer's JWKS age (`None` before the first fetch).
pub type JwksProbe = Box<dyn Fn() -> Vec<(String, Option<Duration>)> + Send + Sync>;

/// The in-process policy's reload state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyStatus {
    /// Load generation (0 at start, one more per successful reload).
    pub generation: u64,
    /// Successful reloads.
    pub reloads_ok: u64,
    /// Failed reloads.
    pub reloads_failed: u64,
    /// Whether the last reload attempt failed.
    pub failing: bool,
}

/// The policy's reload state, read at scrape time.
pub type PolicyProbe = Box<dyn Fn() -> PolicyStatus + Send + Sync>;

/// What the audit log reports at scrape time: (queue depth, written, dropped).
pub type AuditProbe = Box<dyn Fn() -> (usize, u64, u64, bool) + Send + Sync>;

/// The current SVID's expiry (Unix seconds), if one is held.
pub type SvidProbe = Box<dyn Fn() -> Option<i64> + Send + Sync>;

/// How long ago the shared deny list was last synced.
pub type SyncProbe = Box<dyn Fn() -> Option<Duration> + Send + Sync>;

/// The refusals per rate limit, and the requests let through unchecked.
pub type RateLimitProbe = Box<dyn Fn() -> (Vec<(String, u64)>, u64) + Send + Sync>;

/// Everything read at scrape time.
#[derive(Default)]
struct Probes {
    rate_limits: Option<RateLimitProbe>,
    caches: Vec<(String, String, Arc<CacheStats>)>,
    audit: Option<AuditProbe>,
    svid: Option<SvidProbe>,
    revocations_sync: Option<SyncProbe>,
    jwks: Option<JwksProbe>,
    policy: Option<PolicyProbe>,
}

impl fmt::Debug for Probes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probes")
            .field("caches", &self.caches.len())
            .field("audit", &self.audit.is_some())
            .finish()
    }
}

#[derive(Debug, Default)]
struct ProbeCollector(Mutex<Probes>);

/// The stages a decision goes through, timed separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Token verification.
    Verify,
    /// The live check at the issuer (RFC 7662 introspection, cache included).
    Introspect,
    /// The policy decision.
    Policy,
    /// The RFC 8693 exchange (cache included).
    Exchange,
    /// A credential backend (cache included).
    Credential,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Verify => "verify",
            Stage::Introspect => "introspect",
            Stage::Policy => "policy",
            Stage::Exchange => "exchange",
            Stage::Credential => "credential",
        }
    }
}

/// The registry and the request-path metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    stages: Family<StageLabels, Histogram>,
    probes: Arc<ProbeCollector>,
}

/// Latency buckets: 50 µs to 5 s.
fn latency_histogram() -> Histogram {
    Histogram::new([
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
        1.0, 2.5, 5.0,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every actbridge metric, and the process' own.
    pub fn new() -> Metrics {
        let mut root = Registry::default();
        root.register_collector(Box::new(super::process_metrics::ProcessCollector));
        let registry = root.sub_registry_with_prefix("actbridge");
        let build = Family::<
            [(&'static str, &'static str); 2],
            prometheus_client::metrics::gauge::Gauge,
        >::default();
        build
            .get_or_create(&[
                ("version", env!("CARGO_PKG_VERSION")),
                ("revision", env!("ACTBRIDGE_REVISION")),
            ])
            .set(1);
        registry.register(
            "build_info",
            "The actbridge build: its version and git revision (always 1)",
            build,
        );
        registry.register(
            "upstream_duration_seconds",
            "Time per call to a peer (token service, JWKS, introspection, OPA, STS, GitHub, PostgreSQL), by outcome",
            UPSTREAM_DURATION.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Decisions by direction, route and decision (allow, answer, deny)",
            requests.clone(),
        );
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "refusals",
            "Refusals by direction and reason code",
            refusals.clone(),
        );
        let stages =
            Family::<StageLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "stage_duration_seconds",
            "Time spent per stage of a decision (stage `decision` is the whole decision)",
            stages.clone(),
        );
        let probes = Arc::new(ProbeCollector::default());
        registry.register_collector(Box::new(probes.clone()));
        Metrics {
            registry: root,
            requests,
            refusals,
            stages,
            probes,
        }
    }

    /// Counts one decision.
    pub fn decision(&self, direction: &'static str, route: &str, decision: &'static str) {
        self.requests
            .get_or_create(&RequestLabels {
                direction,
                route: route.to_string(),
                decision,
            })
            .inc();
    }

    /// Counts one refusal.
    pub fn refusal(&self, direction: &'static str, reason: &'static str) {
        self.refusals
            .get_or_create(&RefusalLabels { direction, reason })
            .inc();
    }

    /// Records how long `stage` took (`None` = the whole decision).
    pub fn stage(&self, direction: &'static str, stage: Option<Stage>, took: Duration) {
        self.stages
            .get_or_create(&StageLabels {
                direction,
                stage: stage.map_or("decision", Stage::as_str),
            })
            .observe(took.as_secs_f64());
    }

    /// Reports `stats` as cache `cache` (hits and misses) and upstream `upstream` (calls
    /// and errors) at every scrape.
    pub fn register_cache(&self, cache: &str, upstream: &str, stats: Arc<CacheStats>) {
        if let Ok(mut p) = self.probes.0.lock() {
            p.caches
                .push((cache.to_string(), upstream.to_string(), stats));
        }
    }

    /// Reports the audit log's queue depth and record counts at every scrape.
    pub fn register_audit(&self, probe: AuditProbe) {
        if let Ok(mut p) = self.probes.0.lock() {
            p.audit = Some(probe);
        }
    }

    /// Reports the SVID's expiry time at every scrape.
    pub fn register_svid_expiry(&self, probe: SvidProbe) {
        if let Ok(mut p) = self.probes.0.lock() {
            p.svid = Some(probe);
        }
    }

    /// Reports the rate limits' refusals (`rate_limits`).
    pub fn register_rate_limits(&self, probe: RateLimitProbe) {
        if let Ok(mut p) = self.probes.0.lock() {
            p.rate_limits = Some(probe);
        }
    }

    /// Reports each issuer's JWKS age at every scrape.
    pub fn register_jwks(&self, probe: JwksProbe) {
        if let Ok(mut p) = self.probes.0.lock() {
            p.jwks = Some(probe);
        }
    }

    /// Reports the in-process policy's reload state at every scrape.
    pub fn register_policy(&self, probe: PolicyProbe) {
        if let Ok(mut p) = self.probes.0.lock() {
            p.policy = Some(probe);
        }
    }

    /// Reports how long ago the shared deny list was last synced (`state.redis`).
    pub fn register_revocations_sync(&self, probe: SyncProbe) {
        if let Ok(mut p) = self.probes.0.lock() {
            p.revocations_sync = Some(probe);
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("metrics could not be encoded");
        }
        out
    }
}

// Names here get the registry's `actbridge_` prefix, and counters their `_total`.
impl Collector for ProbeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let Ok(p) = self.0.lock() else {
            return Ok(());
        };
        {
            let mut e = encoder.encode_descriptor(
                "cache_requests",
                "Cache lookups by cache and result (hit, miss)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (cache, _, stats) in &p.caches {
                let (hits, misses, _) = stats.snapshot();
                for (result, n) in [("hit", hits), ("miss", misses)] {
                    let labels = CacheLabels {
                        cache: cache.clone(),
                        result,
                    };
                    ConstCounter::new(n).encode(e.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut e = encoder.encode_descriptor(
                "upstream_calls",
                "Calls to the token service and the credential backends, by outcome (ok, error)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (_, upstream, stats) in &p.caches {
                let (_, misses, errors) = stats.snapshot();
                for (outcome, n) in [("ok", misses.saturating_sub(errors)), ("error", errors)] {
                    let labels = UpstreamLabels {
                        upstream: upstream.clone(),
                        outcome,
                    };
                    ConstCounter::new(n).encode(e.encode_family(&labels)?)?;
                }
            }
        }
        if let Some(expiry) = p.svid.as_ref().and_then(|f| f()) {
            let g = ConstGauge::new(expiry);
            g.encode(encoder.encode_descriptor(
                "svid_expiry_timestamp_seconds",
                "When the current X.509-SVID expires (Unix seconds)",
                None,
                g.metric_type(),
            )?)?;
        }
        if let Some(limits) = &p.rate_limits {
            let (per_limit, unchecked) = limits();
            // The operator's alert (seed 004): unusual call rates, per limit.
            let mut e = encoder.encode_descriptor(
                "rate_limited",
                "Requests refused (429) by each rate limit",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (limit, n) in per_limit {
                ConstCounter::new(n).encode(e.encode_family(&[("limit", limit)])?)?;
            }
            let c = ConstCounter::new(unchecked);
            c.encode(encoder.encode_descriptor(
                "rate_limit_unchecked",
                "Requests let through without their rate limits checked (on_unavailable: allow)",
                None,
                c.metric_type(),
            )?)?;
        }
        if let Some(age) = p.revocations_sync.as_ref().and_then(|f| f()) {
            // The operator's alert: the deny list enforced is this old; a revocation
            // made since is not enforced here.
            let g = ConstGauge::new(age.as_secs_f64());
            g.encode(encoder.encode_descriptor(
                "revocations_sync_age_seconds",
                "Seconds since this replica last read the shared deny list (state.redis): alert when above sync_interval",
                None,
                g.metric_type(),
            )?)?;
        }
        if let Some(jwks) = &p.jwks {
            // The operator's alert: keys this old are not being refreshed.
            let mut e = encoder.encode_descriptor(
                "jwks_age_seconds",
                "Seconds since each issuer's signing keys were last fetched",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (issuer, age) in jwks() {
                if let Some(age) = age {
                    ConstGauge::new(age.as_secs_f64())
                        .encode(e.encode_family(&[("issuer", issuer)])?)?;
                }
            }
        }
        if let Some(policy) = &p.policy {
            let status = policy();
            let g = ConstGauge::new(i64::try_from(status.generation).unwrap_or(i64::MAX));
            g.encode(encoder.encode_descriptor(
                "policy_generation",
                "The in-process policy's load generation (one more per successful reload)",
                None,
                g.metric_type(),
            )?)?;
            let mut e = encoder.encode_descriptor(
                "policy_reloads",
                "Reloads of a changed policy directory, by outcome (a failed one keeps the running version)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (outcome, n) in [("ok", status.reloads_ok), ("error", status.reloads_failed)] {
                ConstCounter::new(n).encode(e.encode_family(&[("outcome", outcome)])?)?;
            }
            let g = ConstGauge::new(i64::from(status.failing));
            g.encode(encoder.encode_descriptor(
                "policy_reload_failing",
                "1 while the last policy reload failed (the running version is kept): alert on it",
                None,
                g.metric_type(),
            )?)?;
        }
        if let Some(n) = UndroppableRoles::total() {
            // The operator's alert: a role the reaper cannot drop keeps its objects (and,
            // until dropped, stays in the catalogue); each failure is logged with its
            // SQLSTATE and what depends on the role.
            let g = ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX));
            g.encode(encoder.encode_descriptor(
                "postgres_roles_undroppable",
                "Expired PostgreSQL roles the reaper failed to drop in its last pass: alert on it",
                None,
                g.metric_type(),
            )?)?;
        }
        if let Some(audit) = &p.audit {
            let (depth, written, dropped, failed) = audit();
            let g = ConstGauge::new(depth as i64);
            g.encode(encoder.encode_descriptor(
                "audit_queue_depth",
                "Audit records waiting to be written",
                None,
                g.metric_type(),
            )?)?;
            // The operator's alert: 1 once the writer failed (a full disk, a lost volume);
            // from then on every request is refused (or its record dropped).
            let g = ConstGauge::new(i64::from(failed));
            g.encode(encoder.encode_descriptor(
                "audit_writer_failed",
                "1 when the audit writer has failed (disk full, I/O error): alert on it",
                None,
                g.metric_type(),
            )?)?;
            for (name, help, n) in [
                ("audit_records_written", "Audit records written", written),
                (
                    "audit_records_dropped",
                    "Audit records dropped because the queue was full (on_queue_full: drop)",
                    dropped,
                ),
            ] {
                let c = ConstCounter::new(n);
                c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
            }
        }
        Ok(())
    }
}
