//! `actbridge inject`: adds the sidecars to Kubernetes workloads, the way `istioctl
//! kube-inject` does. A multi-document YAML goes in; every pod template in it comes back
//! with Envoy, actbridge, the traffic-capture init container and their volumes (one
//! definition: `manifests/inject/sidecar-template.yaml`, embedded in the binary).
//!
//! - Objects that run no pods (ConfigMaps, Services, …) are passed through unchanged, as
//!   written (comments included); so are pods already injected (idempotent).
//! - Whatever it does not understand is refused, naming the object and why: a kind it
//!   does not know, `hostNetwork`, an app container running as a sidecar's UID, a
//!   container or volume already using a sidecar's name, a port the sidecars listen on.
//!   Nothing is written then.
//!
//! Layout: [`documents`] splits the input, [`kinds`] says where a kind keeps its pod
//! template, [`pod`] checks and extends one pod template, [`template`] reads the
//! embedded template, [`error`] holds the refusals.

#![warn(unreachable_pub)]

mod documents;
mod error;
mod kinds;
mod pod;
mod template;

#[cfg(test)]
mod tests;

use serde_yaml_ng::Value;

pub use error::{InjectError, ObjectRef, Refusal};
pub use pod::{APP_PORT, RESERVED_PORTS};
pub use template::{INJECTED_ANNOTATION, TEMPLATE_YAML, Template};

use documents::Chunk;
use kinds::Shape;
use pod::Outcome;

/// What one run of the injector did.
#[derive(Debug, Default)]
pub struct Report {
    /// The output: every input document, in order, separated by `---`.
    pub output: String,
    /// The objects whose pod template got the sidecars.
    pub injected: Vec<String>,
    /// The objects already injected, left as they were.
    pub already_injected: Vec<String>,
    /// How many objects without pods were passed through.
    pub passed_through: usize,
    /// Things worth a look that are not refusals (printed on stderr by the CLI).
    pub warnings: Vec<String>,
}

/// Injects the sidecars of `template` into every pod template of `input` (one or more
/// YAML documents). Refuses the whole input at the first object it cannot handle.
pub fn inject_yaml(input: &str, template: &Template) -> Result<Report, InjectError> {
    let mut report = Report::default();
    let mut out = Vec::new();
    for chunk in documents::split(input) {
        let mut doc: Value =
            serde_yaml_ng::from_str(&chunk.text).map_err(|e| InjectError::Yaml {
                document: chunk.index,
                line: chunk.line,
                message: e.to_string(),
            })?;
        if doc.is_null() {
            continue; // empty, or comments only
        }
        doc.apply_merge().map_err(|e| InjectError::Yaml {
            document: chunk.index,
            line: chunk.line,
            message: e.to_string(),
        })?;
        let changed = inject_object(&mut doc, &chunk, None, template, &mut report)?;
        if changed {
            pod::normalize_octal_modes(&mut doc);
            let text = serde_yaml_ng::to_string(&doc).map_err(|e| InjectError::Emit {
                document: chunk.index,
                message: e.to_string(),
            })?;
            out.push(text);
        } else {
            out.push(documents::verbatim(&chunk));
        }
    }
    report.output = out.join("---\n");
    Ok(report)
}

/// Handles one object (or a `List` of them); true when it was changed.
fn inject_object(
    doc: &mut Value,
    chunk: &Chunk,
    item: Option<usize>,
    template: &Template,
    report: &mut Report,
) -> Result<bool, InjectError> {
    let object = ObjectRef::of(doc, chunk.index, chunk.line, item);
    let refuse = |refusal| InjectError::Refused {
        object: Box::new(object.clone()),
        refusal,
    };
    let (Some(api_version), Some(kind)) = (
        doc.get("apiVersion").and_then(Value::as_str),
        doc.get("kind").and_then(Value::as_str),
    ) else {
        return Err(refuse(Refusal::NotAnObject));
    };
    match kinds::shape(api_version, kind) {
        Shape::NoPods => {
            report.passed_through += 1;
            Ok(false)
        }
        Shape::List if item.is_none() => {
            let Some(items) = doc.get_mut("items").and_then(Value::as_sequence_mut) else {
                return Err(refuse(Refusal::Malformed {
                    path: "items".into(),
                    expected: "list of objects",
                }));
            };
            let mut changed = false;
            for (i, it) in items.iter_mut().enumerate() {
                changed |= inject_object(it, chunk, Some(i), template, report)?;
            }
            Ok(changed)
        }
        Shape::List | Shape::Unknown => Err(refuse(Refusal::UnknownKind {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        })),
        Shape::Pods(path) => {
            let shown = path.join(".");
            let mut node = &mut *doc;
            for key in path {
                node = match node.get_mut(*key) {
                    Some(next) if next.is_mapping() => next,
                    _ => return Err(refuse(Refusal::NoPodTemplate { path: shown })),
                };
            }
            match pod::inject(node, &shown, template).map_err(refuse)? {
                Outcome::Injected { warnings } => {
                    report
                        .warnings
                        .extend(warnings.into_iter().map(|w| format!("{object}: {w}")));
                    report.injected.push(object.to_string());
                    Ok(true)
                }
                Outcome::AlreadyInjected => {
                    report.already_injected.push(object.to_string());
                    Ok(false)
                }
            }
        }
    }
}
