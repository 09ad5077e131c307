use std::fmt;

use serde_yaml_ng::Value;

/// Why `actbridge inject` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    /// A document is not valid YAML.
    #[error("document {document} (line {line}): not valid YAML: {message}")]
    Yaml {
        /// 1-based document number.
        document: usize,
        /// 1-based line of the input where the document starts.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// An object was refused: what it is, and why.
    #[error("{object}: {refusal}")]
    Refused {
        /// The object (boxed: errors stay small).
        object: Box<ObjectRef>,
        /// Why.
        refusal: Refusal,
    },
    /// A changed document could not be written back as YAML.
    #[error("document {document}: cannot write it back as YAML: {message}")]
    Emit {
        /// 1-based document number.
        document: usize,
        /// The emitter's message.
        message: String,
    },
    /// The sidecar template is not what the injector expects (a build defect).
    #[error("the sidecar template (manifests/inject/sidecar-template.yaml): {0}")]
    Template(String),
}

/// Why one object was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a mapping with `apiVersion` and `kind`.
    #[error("not a Kubernetes object (a mapping with `apiVersion` and `kind`)")]
    NotAnObject,
    /// A kind the injector does not know: it cannot tell whether it runs pods.
    #[error(
        "unknown kind `{kind}` (apiVersion `{api_version}`): actbridge inject cannot tell whether it runs pods; \
         it knows Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob, \
         PodTemplate and the built-in kinds that run none — inject the pods it creates yourself, or leave it out of the input"
    )]
    UnknownKind {
        /// The object's `apiVersion`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
    },
    /// The kind runs pods but the object has no pod template where the kind keeps it.
    #[error("no pod template at `{path}`")]
    NoPodTemplate {
        /// Dotted path of the missing template.
        path: String,
    },
    /// A value does not have the shape Kubernetes gives it.
    #[error("`{path}` is not a {expected}")]
    Malformed {
        /// Dotted path of the value.
        path: String,
        /// What it should be.
        expected: &'static str,
    },
    /// The pod shares the node's network namespace.
    #[error(
        "`{path}.hostNetwork` is true: the pod shares the node's network namespace, so the traffic capture \
         would rewrite the node's iptables rules"
    )]
    HostNetwork {
        /// Dotted path of the pod spec.
        path: String,
    },
    /// An app container runs as a UID the capture exempts.
    #[error(
        "container `{container}` runs as UID {uid} (set in `{set_at}`), the UID of the `{sidecar}` sidecar: \
         the traffic capture exempts that UID, so its traffic would escape actbridge; run it as another UID"
    )]
    ReservedUid {
        /// The app container.
        container: String,
        /// The UID.
        uid: i64,
        /// Where the UID is set (the container's or the pod's `securityContext`).
        set_at: String,
        /// The sidecar that owns the UID.
        sidecar: String,
    },
    /// A container already has a name the sidecars use, and the pod is not marked as
    /// injected.
    #[error(
        "a container is already named `{name}` but the pod is not marked `{annotation}: \"true\"`: \
         actbridge inject adds its own `{name}`; rename yours"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// The marker annotation.
        annotation: &'static str,
    },
    /// A volume already has a name the sidecars use.
    #[error("a volume is already named `{name}`, a name the sidecars use; rename yours")]
    VolumeTaken {
        /// The name.
        name: String,
    },
    /// The pod is marked as injected but a sidecar container is missing.
    #[error(
        "marked `{annotation}: \"true\"` but has no container `{missing}`: the injection was edited; \
         remove the annotation and the remaining sidecars, and inject again"
    )]
    PartiallyInjected {
        /// The missing container.
        missing: String,
        /// The marker annotation.
        annotation: &'static str,
    },
    /// An app container declares a port the sidecars listen on.
    #[error(
        "container `{container}` declares port {port}, which is {owner}; move the app to another port"
    )]
    PortConflict {
        /// The app container.
        container: String,
        /// The port.
        port: i64,
        /// Which sidecar listener uses it.
        owner: &'static str,
    },
}

/// The object a message is about: kind, namespace/name and where it is in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// `kind`, or `?` when absent.
    pub kind: String,
    /// `metadata.namespace`, when set.
    pub namespace: Option<String>,
    /// `metadata.name` (or `generateName`), or `?` when absent.
    pub name: String,
    /// 1-based document number.
    pub document: usize,
    /// 1-based line of the input where the document starts.
    pub line: usize,
    /// 0-based index in a `List`'s `items`.
    pub item: Option<usize>,
}

impl ObjectRef {
    pub(super) fn of(doc: &Value, document: usize, line: usize, item: Option<usize>) -> Self {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let meta = doc.get("metadata");
        ObjectRef {
            kind: s(doc.get("kind")).unwrap_or_else(|| "?".into()),
            namespace: s(meta.and_then(|m| m.get("namespace"))),
            name: s(meta.and_then(|m| m.get("name")))
                .or_else(|| s(meta.and_then(|m| m.get("generateName"))))
                .unwrap_or_else(|| "?".into()),
            document,
            line,
            item,
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.kind)?;
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        write!(
            f,
            "{} (document {}, line {}",
            self.name, self.document, self.line
        )?;
        if let Some(i) = self.item {
            write!(f, ", items[{i}]")?;
        }
        write!(f, ")")
    }
}
