//! The sidecar template: what injection adds to a pod template, read from
//! `manifests/inject/sidecar-template.yaml` (embedded at build time).

use serde_yaml_ng::{Mapping, Value};

use super::InjectError;

/// The text of `manifests/inject/sidecar-template.yaml`.
pub const TEMPLATE_YAML: &str = include_str!("../../../manifests/inject/sidecar-template.yaml");

/// The pod annotation that marks a pod as injected.
pub const INJECTED_ANNOTATION: &str = "actbridge.io/injected";

/// What injection adds, checked for the shape the injector relies on.
#[derive(Debug, Clone)]
pub struct Template {
    /// Added to `metadata.annotations`.
    pub(super) annotations: Mapping,
    /// Put before the pod's own init containers.
    pub(super) init_containers: Vec<Value>,
    /// Appended to the pod's containers.
    pub(super) containers: Vec<Value>,
    /// Appended to the pod's volumes.
    pub(super) volumes: Vec<Value>,
}

impl Template {
    /// The template embedded in this binary.
    pub fn embedded() -> Result<Template, InjectError> {
        Template::from_yaml(TEMPLATE_YAML)
    }

    /// Reads a template: a mapping with only `metadata.annotations` (holding
    /// [`INJECTED_ANNOTATION`]: `"true"`) and `spec.initContainers`, `spec.containers`,
    /// `spec.volumes` (lists of named mappings). Any other key is refused, so nothing in
    /// the file is silently left out of the injection.
    pub fn from_yaml(text: &str) -> Result<Template, InjectError> {
        let bad = |m: &str| InjectError::Template(m.to_string());
        let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| bad(&e.to_string()))?;
        let root = doc.as_mapping().ok_or_else(|| bad("not a mapping"))?;
        only_keys(root, "", &["metadata", "spec"])?;
        let meta = section(root, "metadata")?;
        only_keys(meta, "metadata.", &["annotations"])?;
        let annotations = section(meta, "annotations")?.clone();
        if annotations.get(INJECTED_ANNOTATION).and_then(Value::as_str) != Some("true") {
            return Err(bad(&format!(
                "metadata.annotations must hold `{INJECTED_ANNOTATION}: \"true\"`"
            )));
        }
        let spec = section(root, "spec")?;
        only_keys(spec, "spec.", &["initContainers", "containers", "volumes"])?;
        let t = Template {
            annotations,
            init_containers: named_list(spec, "initContainers")?,
            containers: named_list(spec, "containers")?,
            volumes: named_list(spec, "volumes")?,
        };
        if t.reserved_uids().is_empty() {
            return Err(bad("no sidecar container sets a non-root runAsUser"));
        }
        Ok(t)
    }

    /// The names of the containers (init containers included) the template adds.
    pub fn container_names(&self) -> Vec<&str> {
        self.init_containers
            .iter()
            .chain(&self.containers)
            .filter_map(name_of)
            .collect()
    }

    /// The names of the volumes the template adds.
    pub fn volume_names(&self) -> Vec<&str> {
        self.volumes.iter().filter_map(name_of).collect()
    }

    /// (UID, container) of every sidecar that runs as a fixed non-root UID: the UIDs the
    /// traffic capture exempts, so no app container may use them.
    pub fn reserved_uids(&self) -> Vec<(i64, &str)> {
        self.containers
            .iter()
            .filter_map(|c| {
                let uid = c.get("securityContext")?.get("runAsUser")?.as_i64()?;
                (uid != 0).then_some((uid, name_of(c)?))
            })
            .collect()
    }
}

fn name_of(v: &Value) -> Option<&str> {
    v.get("name").and_then(Value::as_str)
}

fn only_keys(m: &Mapping, prefix: &str, allowed: &[&str]) -> Result<(), InjectError> {
    for k in m.keys() {
        let k = k.as_str().unwrap_or("?");
        if !allowed.contains(&k) {
            return Err(InjectError::Template(format!(
                "unexpected key `{prefix}{k}` (the injector would ignore it)"
            )));
        }
    }
    Ok(())
}

fn section<'a>(m: &'a Mapping, key: &str) -> Result<&'a Mapping, InjectError> {
    m.get(key)
        .and_then(Value::as_mapping)
        .ok_or_else(|| InjectError::Template(format!("`{key}` must be a mapping")))
}

fn named_list(spec: &Mapping, key: &str) -> Result<Vec<Value>, InjectError> {
    let items = spec
        .get(key)
        .and_then(Value::as_sequence)
        .ok_or_else(|| InjectError::Template(format!("`spec.{key}` must be a list")))?;
    if items.iter().any(|i| name_of(i).is_none()) {
        return Err(InjectError::Template(format!(
            "every item of `spec.{key}` needs a `name`"
        )));
    }
    Ok(items.clone())
}
