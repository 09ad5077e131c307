//! Renders the shipped `envoy/sidecar.yaml` for a one-machine run: listeners on
//! loopback at the given ports, and the `actbridge`, `app`, `document_service`,
//! `aws_s3` and `github_api` clusters pointed at local addresses (the last two in plain
//! HTTP, for local stand-ins). Used by the demo and the integration tests, so
//! both exercise the file users copy.

use std::path::PathBuf;

use serde_yaml_ng::Value;

/// Where the ext_proc server listens.
#[derive(Debug, Clone)]
pub enum ExtProcEndpoint {
    /// 127.0.0.1:port.
    Tcp(u16),
    /// A Unix socket path (Envoy `pipe`).
    Unix(PathBuf),
}

/// The local ports of a one-machine run.
#[derive(Debug, Clone)]
pub struct SidecarPorts {
    /// Envoy admin.
    pub admin: u16,
    /// Inbound listener.
    pub inbound: u16,
    /// Outbound listener.
    pub outbound: u16,
    /// actbridge's ext_proc server.
    pub ext_proc: ExtProcEndpoint,
    /// The app behind the inbound listener.
    pub app: u16,
    /// The document service (the `document_service` cluster).
    pub document_service: u16,
    /// The S3 endpoint (the `aws_s3` cluster), plain HTTP.
    pub aws_s3: u16,
    /// The GitHub API (the `github_api` cluster), plain HTTP.
    pub github_api: u16,
}

/// Why the template could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("envoy/sidecar.yaml: {0}")]
pub struct RenderError(String);

/// Rewrites `template` (the text of `envoy/sidecar.yaml`) for `ports`.
pub fn render(template: &str, ports: &SidecarPorts) -> Result<String, RenderError> {
    let mut doc: Value =
        serde_yaml_ng::from_str(template).map_err(|e| RenderError(e.to_string()))?;
    set_socket(&mut doc["admin"]["address"], ports.admin);
    let listeners = doc["static_resources"]["listeners"]
        .as_sequence_mut()
        .ok_or_else(|| RenderError("no listeners".into()))?;
    for l in listeners {
        let port = match l["name"].as_str() {
            Some("inbound") => ports.inbound,
            Some("outbound") => ports.outbound,
            other => return Err(RenderError(format!("unexpected listener {other:?}"))),
        };
        set_socket(&mut l["address"], port);
    }
    let clusters = doc["static_resources"]["clusters"]
        .as_sequence_mut()
        .ok_or_else(|| RenderError("no clusters".into()))?;
    for c in clusters {
        let name = c["name"].as_str().unwrap_or_default().to_string();
        if !matches!(
            name.as_str(),
            "actbridge" | "app" | "document_service" | "aws_s3" | "github_api"
        ) {
            continue;
        }
        if matches!(name.as_str(), "aws_s3" | "github_api") {
            // A local emulator speaks plain HTTP.
            if let Some(m) = c.as_mapping_mut() {
                m.remove("transport_socket");
                m.remove("typed_extension_protocol_options");
            }
        }
        let addr = c
            .get_mut("load_assignment")
            .and_then(|v| v.get_mut("endpoints"))
            .and_then(|v| v.get_mut(0))
            .and_then(|v| v.get_mut("lb_endpoints"))
            .and_then(|v| v.get_mut(0))
            .and_then(|v| v.get_mut("endpoint"))
            .and_then(|v| v.get_mut("address"))
            .ok_or_else(|| RenderError(format!("cluster {name} has no endpoint address")))?;
        match name.as_str() {
            "actbridge" => match &ports.ext_proc {
                ExtProcEndpoint::Tcp(p) => set_socket(addr, *p),
                ExtProcEndpoint::Unix(path) => {
                    let mut pipe = serde_yaml_ng::Mapping::new();
                    pipe.insert("path".into(), Value::from(path.display().to_string()));
                    let mut m = serde_yaml_ng::Mapping::new();
                    m.insert("pipe".into(), Value::Mapping(pipe));
                    *addr = Value::Mapping(m);
                }
            },
            "app" => set_socket(addr, ports.app),
            "document_service" => set_socket(addr, ports.document_service),
            "aws_s3" => set_socket(addr, ports.aws_s3),
            "github_api" => set_socket(addr, ports.github_api),
            _ => {}
        }
    }
    serde_yaml_ng::to_string(&doc).map_err(|e| RenderError(e.to_string()))
}

fn set_socket(addr: &mut Value, port: u16) {
    addr["socket_address"]["address"] = Value::from("127.0.0.1");
    addr["socket_address"]["port_value"] = Value::from(port);
}
