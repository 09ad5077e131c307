//! Running the sidecar: the ext_proc server (TCP or Unix socket), the admin listener,
//! the JWKS refresh, policy reload and credential maintenance (the PostgreSQL reaper)
//! tasks, all stopped by one shutdown token and drained with a deadline; then the audit
//! writer, which writes what is queued and fsyncs before the process exits.

use std::sync::Arc;
use std::time::Duration;

use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::AuditLog;
use crate::config::{Config, ListenAddr};
use crate::credentials::Credentials;
use crate::extproc::ExtProcService;
use crate::pipeline::{DenyList, Pipeline};
use crate::policy::PolicyEngine;
use crate::spiffe::WorkloadIdentity;

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
    /// The gRPC server failed.
    #[error("ext_proc server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// The audit log could not be opened.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// The deny list's file could not be read.
    #[error(transparent)]
    Revocation(#[from] crate::pipeline::RevocationError),
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
    let revocations = Arc::new(DenyList::load(
        cfg.revocation.as_ref().map(|r| r.file.as_path()),
    )?);
    let mut pipeline = Pipeline::new(&cfg, policy.clone(), credentials.clone(), revocations);
    if let Some(log) = &audit {
        pipeline = pipeline.with_audit(log.clone());
    }
    if let Some(id) = &identity {
        pipeline = pipeline.with_identity(id.clone());
    }
    let pipeline = Arc::new(pipeline);
    if let Some(log) = &audit {
        let log = log.clone();
        pipeline.metrics().register_audit(Box::new(move || {
            let s = log.stats();
            (s.queue_depth, s.written, s.dropped)
        }));
    }
    for backend in credentials.all() {
        let (backend, sd) = (backend.clone(), shutdown.clone());
        tracker.spawn(async move { backend.run_maintenance(sd).await });
    }
    if let Some(engine) = policy {
        tracker.spawn(engine.run_reload(shutdown.clone()));
    }
    for store in pipeline.verifier().jwks_stores() {
        tracker.spawn(store.clone().run_refresh(shutdown.clone()));
    }
    if let Some(addr) = cfg.admin_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| ServeError::Bind {
                addr: addr.to_string(),
                source: e,
            })?;
        tracing::info!(%addr, "admin listener ready");
        let state = crate::admin::AdminState {
            pipeline: pipeline.clone(),
            api: cfg.admin_api.clone(),
            identity: identity.clone(),
        };
        let sd = shutdown.clone();
        tracker.spawn(async move {
            if let Err(e) = crate::admin::serve(listener, state, sd).await {
                tracing::error!(error = %e, "admin listener failed");
            }
        });
    }
    let sds = identity
        .as_ref()
        .map(|id| crate::spiffe::sds::SdsService::new(id.clone()).into_server());
    let service = ExtProcService::new(pipeline).into_server();
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(service)
        .add_optional_service(sds);
    let stop = {
        let sd = shutdown.clone();
        async move { sd.cancelled().await }
    };
    let result = match &cfg.ext_proc_listen {
        ListenAddr::Tcp(addr) => {
            let listener =
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| ServeError::Bind {
                        addr: cfg.ext_proc_listen.to_string(),
                        source: e,
                    })?;
            tracing::info!(listen = %cfg.ext_proc_listen, "ext_proc server ready");
            // TCP_NODELAY on every accepted connection: a decision answered after an
            // await (a token exchange) must not wait for Envoy's delayed ACK (Nagle).
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            router.serve_with_incoming_shutdown(incoming, stop).await
        }
        ListenAddr::Unix(path) => {
            // A socket file left by a previous run would make bind fail.
            if std::fs::symlink_metadata(path).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_socket()
            }) {
                let _ = std::fs::remove_file(path);
            }
            let listener = tokio::net::UnixListener::bind(path).map_err(|e| ServeError::Bind {
                addr: cfg.ext_proc_listen.to_string(),
                source: e,
            })?;
            tracing::info!(listen = %cfg.ext_proc_listen, "ext_proc server ready");
            let r = router
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), stop)
                .await;
            let _ = std::fs::remove_file(path);
            r
        }
    };
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(DRAIN_DEADLINE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("drain deadline passed; exiting with tasks still running");
    }
    // Every decision made is on the queue now: write it, sign, fsync.
    if let Some(log) = audit {
        log.shutdown().await;
    }
    result.map_err(ServeError::from)
}
