//! The policy engine: Rego (regorus, in process) over the files of `policies/`, or a
//! remote OPA, judging an input document built from verified data and the route, and
//! answering `{allow, reason, grant, approval_required}`.
//!
//! Knows nothing of Envoy, and of a request only its [`PolicyInput`]: that in, a
//! [`PolicyDecision`] or a [`PolicyError`] out. An error is always a refusal (the caller
//! maps it).

mod bundle;
mod decision;
mod engine;
mod error;
mod input;
mod local;
mod opa;
mod testing;

pub use decision::PolicyDecision;
pub use engine::PolicyEngine;
pub use error::PolicyError;
pub use input::{
    A2aInput, ActorInput, McpInput, PolicyInput, ResourceError, UserInput, action_of, resource_of,
    segments_of,
};
pub use testing::{TestOutcome, TestReport, run_tests};

/// Evaluates `input` (a JSON document) against the policy in `dir` once, without the
/// cache: the `policy eval` command.
pub fn eval_once(
    dir: &std::path::Path,
    entrypoint: &str,
    input: serde_json::Value,
) -> Result<PolicyDecision, PolicyError> {
    let bundle = bundle::Bundle::read(dir)?;
    let compiled = bundle.compile(entrypoint)?;
    let value: regorus::Value =
        serde_json::from_value(input).map_err(|e| PolicyError::Eval(format!("input: {e}")))?;
    local::evaluate_value(&compiled, value)
}

#[cfg(test)]
mod tests;
