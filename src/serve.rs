//! Running the sidecar: the ext_proc server and the SDS server (each on its own Unix
//! socket or loopback TCP listener, `serve/grpc_listener.rs`), the admin listener,
//! the JWKS refresh, policy reload and credential maintenance (the PostgreSQL reaper)
//! tasks, all stopped by one shutdown token and drained with a deadline; then the audit
//! writer, which writes what is queued and fsyncs before the process exits.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::AuditLog;
use crate::config::Config;
use crate::credentials::Credentials;
use crate::extproc::ExtProcService;
use crate::pipeline::Pipeline;
use crate::policy::PolicyEngine;
use crate::spiffe::WorkloadIdentity;
use crate::state::State;

mod grpc_listener;

pub use grpc_listener::SOCKET_MODE;

/// How long in-flight work may take to finish after shutdown is signalled.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Why the sidecar could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A gRPC server (ext_proc or SDS) failed.
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// The audit log could not be opened.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// A route's backend or policy is missing.
    #[error(transparent)]
    Wiring(#[from] crate::pipeline::WiringError),
    /// The deny list's file could not be read.
    #[error(transparent)]
    Revocation(#[from] crate::state::revocations::RevocationError),
}

/// Runs until `shutdown` is cancelled, then drains (bounded by [`DRAIN_DEADLINE`]).
/// `policy` is the engine loaded from `cfg.policy` (loaded by the caller, so a policy that
/// does not compile is a configuration error before anything listens).
pub async fn run(
    cfg: Config,
    policy: Option<Arc<PolicyEngine>>,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    // The audit log opens first: a sidecar that cannot audit does not start.
    let audit = cfg
        .audit
        .as_ref()
        .map(AuditLog::open)
        .transpose()?
        .map(Arc::new);
    let tracker = TaskTracker::new();
    let identity = cfg.spiffe.as_ref().map(WorkloadIdentity::new);
    if let Some(id) = &identity {
        tracker.spawn(id.clone().run(shutdown.clone()));
    }
    let credentials = Arc::new(Credentials::load(&cfg.credentials).await);
    let state = State::load(&cfg)?;
    let mut pipeline = Pipeline::new(&cfg, policy.clone(), credentials.clone(), &state)?;
    if let Some(log) = &audit {
        pipeline = pipeline.with_audit(log.clone());
        let log = log.clone();
        pipeline.metrics().register_audit(Box::new(move || {
            let s = log.stats();
            (s.queue_depth, s.written, s.dropped, s.failed)
        }));
    }
    if let Some(id) = &identity {
        pipeline = pipeline.with_identity(id.clone());
    }
    let pipeline = Arc::new(pipeline);
    if let (Some(redis), Some(r)) = (state.redis.clone(), &cfg.redis) {
        let list = state.revocations.clone();
        pipeline
            .metrics()
            .register_revocations_sync(Box::new(move || list.staleness()));
        let p = pipeline.clone();
        tracker.spawn(crate::state::fleet::follow(
            redis,
            state.revocations.clone(),
            state.approvals.clone(),
            r.sync_interval,
            move || p.forget_cached(),
            shutdown.clone(),
        ));
    }
    spawn_background(&tracker, &shutdown, &credentials, policy, &pipeline);
    let admin = crate::admin::AdminState {
        pipeline: pipeline.clone(),
        state: state.clone(),
        audit: audit.clone(),
        api: cfg.admin_api.clone(),
        identity: identity.clone(),
    };
    if let Some(addr) = cfg.admin_listen {
        let probes = crate::admin::probes_router(admin.clone());
        spawn_http("admin", addr, probes, &tracker, &shutdown).await?;
    }
    if let Some(api) = &cfg.admin_api {
        let routes = crate::admin::api_router(admin);
        spawn_http("admin API", api.listen, routes, &tracker, &shutdown).await?;
    }
    // Requests held for a person are refused (503) as soon as shutdown starts: they
    // would otherwise hold the drain up to the approval timeout.
    if let Some(approvals) = state.approvals.clone() {
        let sd = shutdown.clone();
        tracker.spawn(async move {
            sd.cancelled().await;
            approvals.shut_down();
        });
    }
    let result = serve_grpc(&cfg, pipeline, identity, &shutdown, tracker).await;
    // Every decision made is on the queue now: write it, sign, fsync.
    if let Some(log) = audit {
        log.shutdown().await;
    }
    result
}

/// The background work, each task ending at `shutdown`: credential maintenance (the
/// PostgreSQL reaper), policy reload, secret files re-read, JWKS refresh.
fn spawn_background(
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    credentials: &Credentials,
    policy: Option<Arc<PolicyEngine>>,
    pipeline: &Pipeline,
) {
    for backend in credentials.all() {
        let (backend, sd) = (backend.clone(), shutdown.clone());
        tracker.spawn(async move { backend.run_maintenance(sd).await });
    }
    if let Some(engine) = policy {
        tracker.spawn(engine.run_reload(shutdown.clone()));
    }
    // Secrets read from files follow their rotation.
    tracker.spawn(crate::config::secret_files::watch(shutdown.clone()));
    for store in pipeline.verifier().jwks_stores() {
        tracker.spawn(store.clone().run_refresh(shutdown.clone()));
    }
}

/// Binds the HTTP listener `what` on `addr` and serves `routes` until `shutdown`.
async fn spawn_http(
    what: &'static str,
    addr: std::net::SocketAddr,
    routes: axum::Router,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Bind {
            addr: addr.to_string(),
            source: e,
        })?;
    tracing::info!(%addr, "{what} listener ready");
    let sd = shutdown.clone();
    tracker.spawn(async move {
        if let Err(e) = crate::admin::serve(listener, routes, sd).await {
            tracing::error!(error = %e, "{what} listener failed");
        }
    });
    Ok(())
}

/// Serves ext_proc and SDS until `shutdown`, then drains: the servers gracefully but
/// never past [`DRAIN_DEADLINE`], and `tracker`'s tasks in what is left of it.
async fn serve_grpc(
    cfg: &Config,
    pipeline: Arc<Pipeline>,
    identity: Option<Arc<WorkloadIdentity>>,
    shutdown: &CancellationToken,
    tracker: TaskTracker,
) -> Result<(), ServeError> {
    // ext_proc and SDS each on a listener of its own: the SVID's private key is never
    // served where decisions are asked for.
    let ext_proc = grpc_listener::bind("ext_proc", &cfg.ext_proc_listen).await?;
    let sds = match (&identity, &cfg.sds_listen) {
        (Some(id), Some(addr)) => Some((
            crate::spiffe::sds::SdsService::new(id.clone()).into_server(),
            grpc_listener::bind("sds", addr).await?,
        )),
        (Some(_), None) => {
            tracing::warn!(
                "`spiffe` without `listen.sds`: SDS is not served, Envoy's mTLS stays closed"
            );
            None
        }
        _ => None,
    };
    let builder = || {
        tonic::transport::Server::builder().http2_keepalive_interval(Some(Duration::from_secs(30)))
    };
    let ext_proc_server = {
        let router = builder().add_service(ExtProcService::new(pipeline).into_server());
        let sd = shutdown.clone();
        async move {
            let r = grpc_listener::serve(router, ext_proc, sd.clone().cancelled_owned()).await;
            sd.cancel();
            r
        }
    };
    let sds_server = {
        let sd = shutdown.clone();
        async move {
            let Some((service, bound)) = sds else {
                return Ok(());
            };
            let router = builder().add_service(service);
            let r = grpc_listener::serve(router, bound, sd.clone().cancelled_owned()).await;
            sd.cancel();
            r
        }
    };
    let cancelled_at = Arc::new(std::sync::OnceLock::new());
    {
        let (sd, at) = (shutdown.clone(), cancelled_at.clone());
        tokio::spawn(async move {
            sd.cancelled().await;
            let _ = at.set(tokio::time::Instant::now());
        });
    }
    // The gRPC servers drain gracefully (every stream answered), but never past the
    // deadline: then they are dropped, and the process goes down with whatever was in
    // flight refused by Envoy (the stream breaks: `failure_mode_allow: false`).
    let servers = async { tokio::join!(ext_proc_server, sds_server) };
    let forced = async {
        shutdown.cancelled().await;
        tokio::time::sleep(DRAIN_DEADLINE).await;
    };
    let result = tokio::select! {
        (ext_proc_result, sds_result) = servers => ext_proc_result.and(sds_result),
        () = forced => {
            tracing::warn!(deadline = ?DRAIN_DEADLINE, "drain deadline passed with requests in flight; forcing the gRPC servers down");
            Ok(())
        }
    };
    let remaining = cancelled_at.get().map_or(DRAIN_DEADLINE, |at| {
        DRAIN_DEADLINE.saturating_sub(at.elapsed())
    });
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(remaining, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("drain deadline passed; exiting with tasks still running");
    }
    result.map_err(ServeError::from)
}
