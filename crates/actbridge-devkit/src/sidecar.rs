//! Renders the shipped `envoy/sidecar.yaml` for a one-machine run: listeners on
//! loopback at the given ports, and the `actbridge`, `app`, `document_service`,
//! `aws_s3` and `github_api` clusters pointed at local addresses (the last two in plain
//! HTTP, for local stand-ins). Used by the demo and the integration tests, so
//! both exercise the file users copy.
//!
//! [`Transport::Plain`] (what [`render`] does) also takes the SPIFFE mTLS out, for runs
//! without a Workload API: the inbound listener keeps only its mTLS chain, as plain
//! HTTP, and `document_service` speaks plain HTTP. [`Transport::Mtls`] keeps the
//! shipped SDS-based mTLS as it is (inbound client certificates, the pinned peer ID).

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
    /// actbridge's SDS server (the `actbridge_sds` cluster), when it serves one.
    pub sds: Option<ExtProcEndpoint>,
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

/// How the in-mesh hops (inbound listener, `document_service`) are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP: no SDS, no client certificates (runs without a Workload API).
    Plain,
    /// The shipped mTLS with the SVIDs actbridge serves over SDS.
    Mtls,
}

/// Rewrites `template` (the text of `envoy/sidecar.yaml`) for `ports`, in plain HTTP.
pub fn render(template: &str, ports: &SidecarPorts) -> Result<String, RenderError> {
    render_with(template, ports, Transport::Plain)
}

/// Rewrites `template` for `ports`, with the in-mesh hops as `transport` says.
pub fn render_with(
    template: &str,
    ports: &SidecarPorts,
    transport: Transport,
) -> Result<String, RenderError> {
    let mut doc: Value =
        serde_yaml_ng::from_str(template).map_err(|e| RenderError(e.to_string()))?;
    if transport == Transport::Plain {
        strip_mtls(&mut doc)?;
    }
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
            "actbridge" | "actbridge_sds" | "app" | "document_service" | "aws_s3" | "github_api"
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
            "actbridge" => set_endpoint(addr, &ports.ext_proc),
            "actbridge_sds" => {
                if let Some(sds) = &ports.sds {
                    set_endpoint(addr, sds);
                }
            }
            "app" => set_socket(addr, ports.app),
            "document_service" => set_socket(addr, ports.document_service),
            "aws_s3" => set_socket(addr, ports.aws_s3),
            "github_api" => set_socket(addr, ports.github_api),
            _ => {}
        }
    }
    serde_yaml_ng::to_string(&doc).map_err(|e| RenderError(e.to_string()))
}

/// `rendered` (a bootstrap) with the `actbridge` cluster spread over several actbridge
/// processes, each on `127.0.0.1:<port>`: Envoy sends each request's ext_proc stream to
/// the next in turn (round robin), as with replicas behind one Envoy.
pub fn with_ext_proc_replicas(rendered: &str, ports: &[u16]) -> Result<String, RenderError> {
    let mut doc: Value =
        serde_yaml_ng::from_str(rendered).map_err(|e| RenderError(e.to_string()))?;
    let cluster = doc["static_resources"]["clusters"]
        .as_sequence_mut()
        .and_then(|cs| {
            cs.iter_mut()
                .find(|c| c["name"].as_str() == Some("actbridge"))
        })
        .ok_or_else(|| RenderError("no actbridge cluster".into()))?;
    let endpoints: Vec<Value> = ports
        .iter()
        .map(|port| {
            let mut address = Value::Null;
            set_socket(&mut address, *port);
            let mut endpoint = serde_yaml_ng::Mapping::new();
            endpoint.insert("address".into(), address);
            let mut lb = serde_yaml_ng::Mapping::new();
            lb.insert("endpoint".into(), Value::Mapping(endpoint));
            Value::Mapping(lb)
        })
        .collect();
    cluster["load_assignment"]["endpoints"][0]["lb_endpoints"] = Value::Sequence(endpoints);
    serde_yaml_ng::to_string(&doc).map_err(|e| RenderError(e.to_string()))
}

/// `rendered` (a bootstrap) with its outbound `route_config` replaced by
/// `route_config_yaml` — what `actbridge envoy-routes` prints for the sidecar's config —,
/// as every run must have it: Envoy's routes are actbridge's. A route's cluster named
/// `local_<port>` that the bootstrap lacks is added, plain HTTP to `127.0.0.1:<port>` (a
/// one-machine run's stand-in for a destination).
pub fn with_routes(rendered: &str, route_config_yaml: &str) -> Result<String, RenderError> {
    let mut doc: Value =
        serde_yaml_ng::from_str(rendered).map_err(|e| RenderError(e.to_string()))?;
    let route_config: Value =
        serde_yaml_ng::from_str(route_config_yaml).map_err(|e| RenderError(e.to_string()))?;
    let routed: Vec<String> = route_config["virtual_hosts"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|host| host["routes"].as_sequence().into_iter().flatten())
        .filter_map(|r| r["route"]["cluster"].as_str().map(str::to_string))
        .collect();
    let listeners = doc["static_resources"]["listeners"]
        .as_sequence_mut()
        .ok_or_else(|| RenderError("no listeners".into()))?;
    let outbound = listeners
        .iter_mut()
        .find(|l| l["name"].as_str() == Some("outbound"))
        .ok_or_else(|| RenderError("no outbound listener".into()))?;
    let hcm = outbound["filter_chains"]
        .as_sequence_mut()
        .and_then(|chains| {
            chains.iter_mut().find(|c| {
                c["filter_chain_match"]["transport_protocol"].as_str() == Some("raw_buffer")
            })
        })
        .and_then(|c| c["filters"].get_mut(0))
        .ok_or_else(|| RenderError("no plain-HTTP chain on the outbound listener".into()))?;
    hcm["typed_config"]["route_config"] = route_config;
    let clusters = doc["static_resources"]["clusters"]
        .as_sequence_mut()
        .ok_or_else(|| RenderError("no clusters".into()))?;
    for name in &routed {
        let Some(port) = name
            .strip_prefix("local_")
            .and_then(|p| p.parse::<u16>().ok())
        else {
            continue;
        };
        if clusters
            .iter()
            .any(|c| c["name"].as_str() == Some(name.as_str()))
        {
            continue;
        }
        let cluster = format!(
            "name: {name}\ntype: STATIC\nconnect_timeout: 1s\nload_assignment:\n  cluster_name: {name}\n  endpoints:\n  - lb_endpoints:\n    - endpoint:\n        address:\n          socket_address: {{address: 127.0.0.1, port_value: {port}}}\n"
        );
        clusters.push(serde_yaml_ng::from_str(&cluster).map_err(|e| RenderError(e.to_string()))?);
    }
    serde_yaml_ng::to_string(&doc).map_err(|e| RenderError(e.to_string()))
}

/// `template` without its SPIFFE mTLS, addresses unchanged (as [`Transport::Plain`]
/// renders it): for a run on the real ports without a Workload API.
pub fn without_mtls(template: &str) -> Result<String, RenderError> {
    let mut doc: Value =
        serde_yaml_ng::from_str(template).map_err(|e| RenderError(e.to_string()))?;
    strip_mtls(&mut doc)?;
    serde_yaml_ng::to_string(&doc).map_err(|e| RenderError(e.to_string()))
}

/// Takes the SPIFFE mTLS out: the inbound listener's mTLS chain alone, in plain text,
/// and `document_service` without TLS.
fn strip_mtls(doc: &mut Value) -> Result<(), RenderError> {
    let listeners = doc["static_resources"]["listeners"]
        .as_sequence_mut()
        .ok_or_else(|| RenderError("no listeners".into()))?;
    for l in listeners {
        if l["name"].as_str() == Some("inbound") {
            plain_inbound(l)?;
        }
    }
    let clusters = doc["static_resources"]["clusters"]
        .as_sequence_mut()
        .ok_or_else(|| RenderError("no clusters".into()))?;
    for c in clusters {
        if c["name"].as_str() == Some("document_service")
            && let Some(m) = c.as_mapping_mut()
        {
            m.remove("transport_socket");
        }
    }
    Ok(())
}

/// The inbound listener in plain HTTP: its mTLS chain alone, without TLS (renamed
/// `inbound_plain`).
fn plain_inbound(listener: &mut Value) -> Result<(), RenderError> {
    let chains = listener["filter_chains"]
        .as_sequence()
        .ok_or_else(|| RenderError("inbound listener has no filter_chains".into()))?;
    let mut chain = chains
        .iter()
        .find(|c| c["name"].as_str() == Some("inbound_mtls"))
        .cloned()
        .ok_or_else(|| RenderError("inbound listener has no inbound_mtls chain".into()))?;
    if let Some(m) = chain.as_mapping_mut() {
        m.remove("transport_socket");
        m.remove("filter_chain_match");
        m.insert("name".into(), Value::from("inbound_plain"));
    }
    if let Some(m) = listener.as_mapping_mut() {
        m.remove("listener_filters");
    }
    listener["filter_chains"] = Value::Sequence(vec![chain]);
    Ok(())
}

fn set_endpoint(addr: &mut Value, endpoint: &ExtProcEndpoint) {
    match endpoint {
        ExtProcEndpoint::Tcp(p) => *addr = tcp_address(*p),
        ExtProcEndpoint::Unix(path) => {
            let mut pipe = serde_yaml_ng::Mapping::new();
            pipe.insert("path".into(), Value::from(path.display().to_string()));
            let mut m = serde_yaml_ng::Mapping::new();
            m.insert("pipe".into(), Value::Mapping(pipe));
            *addr = Value::Mapping(m);
        }
    }
}

/// A `socket_address` on loopback (replacing whatever address was there, `pipe` too).
fn tcp_address(port: u16) -> Value {
    let mut socket = serde_yaml_ng::Mapping::new();
    socket.insert("address".into(), Value::from("127.0.0.1"));
    socket.insert("port_value".into(), Value::from(port));
    let mut m = serde_yaml_ng::Mapping::new();
    m.insert("socket_address".into(), Value::Mapping(socket));
    Value::Mapping(m)
}

fn set_socket(addr: &mut Value, port: u16) {
    addr["socket_address"]["address"] = Value::from("127.0.0.1");
    addr["socket_address"]["port_value"] = Value::from(port);
}

#[cfg(test)]
mod tests;
