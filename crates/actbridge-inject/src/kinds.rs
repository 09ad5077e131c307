//! Which kinds run pods, and where each keeps its pod template.

/// What the injector does with a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// Runs pods from the pod template at this path (empty: the object is the pod).
    Pods(&'static [&'static str]),
    /// Runs no pods: passed through.
    NoPods,
    /// `v1` `List`: its `items` are handled one by one.
    List,
    /// Not known: refused (it might run pods the injector would miss).
    Unknown,
}

/// (API group, kind) → where the pod template is.
const WORKLOADS: &[(&str, &str, &[&str])] = &[
    ("", "Pod", &[]),
    ("", "PodTemplate", &["template"]),
    ("", "ReplicationController", &["spec", "template"]),
    ("apps", "Deployment", &["spec", "template"]),
    ("apps", "StatefulSet", &["spec", "template"]),
    ("apps", "DaemonSet", &["spec", "template"]),
    ("apps", "ReplicaSet", &["spec", "template"]),
    ("batch", "Job", &["spec", "template"]),
    (
        "batch",
        "CronJob",
        &["spec", "jobTemplate", "spec", "template"],
    ),
];

/// (API group, kind) of built-in objects that run no pods.
const NO_PODS: &[(&str, &str)] = &[
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "Service"),
    ("", "ServiceAccount"),
    ("", "Namespace"),
    ("", "PersistentVolumeClaim"),
    ("", "PersistentVolume"),
    ("", "Endpoints"),
    ("", "LimitRange"),
    ("", "ResourceQuota"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "IngressClass"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("policy", "PodDisruptionBudget"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "StorageClass"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
];

/// The shape of `kind` in `api_version` (`group/version`, or `version` for the core
/// group). Only the group is compared: every served version of a kind keeps its pod
/// template in the same place.
pub(super) fn shape(api_version: &str, kind: &str) -> Shape {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    if group.is_empty() && kind == "List" {
        return Shape::List;
    }
    if let Some((_, _, path)) = WORKLOADS.iter().find(|(g, k, _)| *g == group && *k == kind) {
        return Shape::Pods(path);
    }
    if NO_PODS.iter().any(|(g, k)| *g == group && *k == kind) {
        return Shape::NoPods;
    }
    Shape::Unknown
}
