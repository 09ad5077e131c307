//! One pod template: the checks that refuse it, and the sidecars added to it.

use serde_yaml_ng::{Mapping, Value};

use super::Refusal;
use super::template::{INJECTED_ANNOTATION, Template};

/// The ports the sidecars listen on, and whose they are. An app container declaring one
/// is refused. (envoy/sidecar.yaml and deploy/actbridge.yaml must agree: a test checks.)
pub const RESERVED_PORTS: [(u16, &str); 5] = [
    (15000, "Envoy's admin port"),
    (15001, "Envoy's outbound listener"),
    (15006, "Envoy's inbound listener"),
    (9001, "actbridge's ext_proc port (when TCP)"),
    (9902, "actbridge's admin port"),
];

/// The port Envoy's inbound listener forwards to (the `app` cluster of
/// envoy/sidecar.yaml). A pod where no container declares it gets a warning.
pub const APP_PORT: u16 = 8080;

/// What happened to a pod template.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The sidecars were added.
    Injected {
        /// Things worth a look that are not refusals.
        warnings: Vec<String>,
    },
    /// It carried the marker and every sidecar: left as it was.
    AlreadyInjected,
}

/// Checks the pod template `node` (a mapping with `metadata` and `spec`, found at `path`
/// in its object) and adds the template's sidecars to it.
pub(super) fn inject(node: &mut Value, path: &str, t: &Template) -> Result<Outcome, Refusal> {
    let spec_path = join(path, "spec");
    let spec = node
        .get("spec")
        .and_then(Value::as_mapping)
        .ok_or_else(|| Refusal::NoPodTemplate {
            path: spec_path.clone(),
        })?;
    let containers = containers(spec, "containers", &spec_path)?;
    let init = containers_opt(spec, "initContainers", &spec_path)?;
    let names: Vec<&str> = containers.iter().chain(&init).map(|c| c.name).collect();

    let marked = node
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(INJECTED_ANNOTATION))
        .and_then(Value::as_str)
        == Some("true");
    let ours = t.container_names();
    if marked {
        return match ours.iter().find(|n| !names.contains(n)) {
            None => Ok(Outcome::AlreadyInjected),
            Some(missing) => Err(Refusal::PartiallyInjected {
                missing: missing.to_string(),
                annotation: INJECTED_ANNOTATION,
            }),
        };
    }
    if let Some(n) = ours.iter().find(|n| names.contains(n)) {
        return Err(Refusal::NameTaken {
            name: n.to_string(),
            annotation: INJECTED_ANNOTATION,
        });
    }
    if let Some(v) = spec.get("volumes").and_then(Value::as_sequence) {
        let theirs: Vec<&str> = v
            .iter()
            .filter_map(|v| v.get("name").and_then(Value::as_str))
            .collect();
        if let Some(n) = t.volume_names().into_iter().find(|n| theirs.contains(n)) {
            return Err(Refusal::VolumeTaken {
                name: n.to_string(),
            });
        }
    }
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        return Err(Refusal::HostNetwork { path: spec_path });
    }
    check_uids(spec, &spec_path, containers.iter().chain(&init), t)?;
    let mut declares_app_port = false;
    for c in containers.iter().chain(&init) {
        for port in &c.ports {
            if let Some((_, owner)) = RESERVED_PORTS.iter().find(|(p, _)| i64::from(*p) == *port) {
                return Err(Refusal::PortConflict {
                    container: c.name.to_string(),
                    port: *port,
                    owner,
                });
            }
            declares_app_port |= *port == i64::from(APP_PORT);
        }
    }
    let mut warnings = Vec::new();
    if !declares_app_port {
        warnings.push(format!(
            "no container declares port {APP_PORT}, where Envoy's inbound listener sends requests \
             (the `app` cluster of the actbridge-envoy ConfigMap): change that cluster's port to the app's"
        ));
    }
    add_sidecars(node, path, t)?;
    Ok(Outcome::Injected { warnings })
}

/// What the checks need of one container.
struct Container<'a> {
    name: &'a str,
    uid: Option<i64>,
    ports: Vec<i64>,
}

fn containers<'a>(
    spec: &'a Mapping,
    key: &str,
    spec_path: &str,
) -> Result<Vec<Container<'a>>, Refusal> {
    let list = containers_opt(spec, key, spec_path)?;
    if list.is_empty() {
        return Err(Refusal::Malformed {
            path: format!("{spec_path}.{key}"),
            expected: "non-empty list of containers",
        });
    }
    Ok(list)
}

fn containers_opt<'a>(
    spec: &'a Mapping,
    key: &str,
    spec_path: &str,
) -> Result<Vec<Container<'a>>, Refusal> {
    let malformed = |expected| Refusal::Malformed {
        path: format!("{spec_path}.{key}"),
        expected,
    };
    let items = match spec.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(v) => v
            .as_sequence()
            .ok_or_else(|| malformed("list of containers"))?,
    };
    items
        .iter()
        .map(|c| {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("list of containers, each with a `name`"))?;
            let uid = c
                .get("securityContext")
                .and_then(|s| s.get("runAsUser"))
                .and_then(as_int);
            let ports = c
                .get("ports")
                .and_then(Value::as_sequence)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| p.get("containerPort").and_then(as_int))
                        .collect()
                })
                .unwrap_or_default();
            Ok(Container { name, uid, ports })
        })
        .collect()
}

fn as_int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.trim().parse().ok())
}

fn check_uids<'a>(
    spec: &Mapping,
    spec_path: &str,
    containers: impl Iterator<Item = &'a Container<'a>>,
    t: &Template,
) -> Result<(), Refusal> {
    let pod_uid = spec
        .get("securityContext")
        .and_then(|s| s.get("runAsUser"))
        .and_then(as_int);
    let reserved = t.reserved_uids();
    for c in containers {
        let (uid, set_at) = match (c.uid, pod_uid) {
            (Some(u), _) => (u, format!("the securityContext of container `{}`", c.name)),
            (None, Some(u)) => (u, format!("{spec_path}.securityContext")),
            (None, None) => continue, // the image's USER: not visible here
        };
        if let Some((_, sidecar)) = reserved.iter().find(|(r, _)| *r == uid) {
            return Err(Refusal::ReservedUid {
                container: c.name.to_string(),
                uid,
                set_at,
                sidecar: sidecar.to_string(),
            });
        }
    }
    Ok(())
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Adds the annotations, init containers (first), containers and volumes (appended) to
/// the pod template `node` at `path`.
fn add_sidecars(node: &mut Value, path: &str, t: &Template) -> Result<(), Refusal> {
    let root = node.as_mapping_mut().ok_or_else(|| Refusal::Malformed {
        path: path.to_string(),
        expected: "mapping",
    })?;
    let meta_path = join(path, "metadata");
    let meta = child_mapping(root, "metadata", path)?;
    let annotations = child_mapping(meta, "annotations", &meta_path)?;
    for (k, v) in &t.annotations {
        annotations.insert(k.clone(), v.clone());
    }
    let spec_path = join(path, "spec");
    let spec = child_mapping(root, "spec", path)?;
    let init = child_sequence(spec, "initContainers", &spec_path)?;
    let theirs = std::mem::take(init);
    init.extend(t.init_containers.iter().cloned());
    init.extend(theirs);
    child_sequence(spec, "containers", &spec_path)?.extend(t.containers.iter().cloned());
    child_sequence(spec, "volumes", &spec_path)?.extend(t.volumes.iter().cloned());
    Ok(())
}

/// The mapping under `key` of `m` (at `path`), created when absent or null.
fn child_mapping<'a>(
    m: &'a mut Mapping,
    key: &str,
    path: &str,
) -> Result<&'a mut Mapping, Refusal> {
    let v = m
        .entry(Value::String(key.to_string()))
        .or_insert(Value::Null);
    if v.is_null() {
        *v = Value::Mapping(Mapping::new());
    }
    v.as_mapping_mut().ok_or_else(|| Refusal::Malformed {
        path: join(path, key),
        expected: "mapping",
    })
}

/// The list under `key` of `m` (at `path`), created when absent or null.
fn child_sequence<'a>(
    m: &'a mut Mapping,
    key: &str,
    path: &str,
) -> Result<&'a mut Vec<Value>, Refusal> {
    let v = m
        .entry(Value::String(key.to_string()))
        .or_insert(Value::Null);
    if v.is_null() {
        *v = Value::Sequence(Vec::new());
    }
    v.as_sequence_mut().ok_or_else(|| Refusal::Malformed {
        path: join(path, key),
        expected: "list",
    })
}

/// Kubernetes reads YAML 1.1, where a plain `0644` is octal (420); the YAML 1.2 reader
/// here keeps it as the string "0644", which would be written back quoted and then
/// refused as a string. File modes (`defaultMode`, `mode`) are integers in every
/// Kubernetes schema, so such strings are turned back into the integer Kubernetes meant.
pub(super) fn normalize_octal_modes(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                if matches!(k.as_str(), Some("defaultMode" | "mode"))
                    && let Some(n) = val.as_str().and_then(octal)
                {
                    *val = Value::Number(n.into());
                } else {
                    normalize_octal_modes(val);
                }
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(normalize_octal_modes),
        _ => {}
    }
}

fn octal(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('0')?;
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    i64::from_str_radix(digits, 8).ok()
}
