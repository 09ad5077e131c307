//! The gRPC listeners Envoy alone may reach: ext_proc and SDS, each on its own.
//!
//! A Unix socket is created with mode `0660` (owner and group; Envoy runs with
//! actbridge's group in the shipped manifests, the app does not), in a directory created
//! `0750` when actbridge makes it; a stale socket file is replaced and the socket is
//! removed at the end. A TCP listener binds loopback only (validated with the config) and
//! sets `TCP_NODELAY`.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::server::{Router, TcpIncoming};

use super::ServeError;
use crate::config::ListenAddr;

/// The mode of a socket actbridge creates: read and write for its owner and group.
pub const SOCKET_MODE: u32 = 0o660;

/// The mode of a socket directory actbridge creates.
const DIRECTORY_MODE: u32 = 0o750;

/// A bound listener, not yet serving.
pub(super) enum Bound {
    Tcp(TcpIncoming),
    Unix(UnixListenerStream, PathBuf),
}

/// Binds `addr` for the server named `what` (for errors and logs).
pub(super) async fn bind(what: &str, addr: &ListenAddr) -> Result<Bound, ServeError> {
    let failed = |source: std::io::Error| ServeError::Bind {
        addr: format!("{what} {addr}"),
        source,
    };
    let bound = match addr {
        ListenAddr::Tcp(a) => {
            let listener = tokio::net::TcpListener::bind(a).await.map_err(failed)?;
            // A decision answered after an await (a token exchange) must not wait for
            // Envoy's delayed ACK (Nagle).
            Bound::Tcp(TcpIncoming::from(listener).with_nodelay(Some(true)))
        }
        ListenAddr::Unix(path) => {
            prepare_directory(path).map_err(failed)?;
            // A socket file left by a previous run would make bind fail.
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
                let _ = std::fs::remove_file(path);
            }
            let listener = tokio::net::UnixListener::bind(path).map_err(failed)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
                .map_err(failed)?;
            Bound::Unix(UnixListenerStream::new(listener), path.clone())
        }
    };
    tracing::info!(listen = %addr, "{what} server ready");
    Ok(bound)
}

/// Creates the socket's directory (`0750`) when it does not exist; an existing one (a
/// volume shared with Envoy) is left as it is.
fn prepare_directory(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIRECTORY_MODE)
            .create(dir),
        _ => Ok(()),
    }
}

/// Serves `router` on `bound` until `stop` completes.
pub(super) async fn serve(
    router: Router,
    bound: Bound,
    stop: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    match bound {
        Bound::Tcp(incoming) => router.serve_with_incoming_shutdown(incoming, stop).await,
        Bound::Unix(incoming, path) => {
            let r = router.serve_with_incoming_shutdown(incoming, stop).await;
            let _ = std::fs::remove_file(path);
            r
        }
    }
}
