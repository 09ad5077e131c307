//! Why a policy could not be loaded or could not decide.

/// A policy failure. Loading failures name the file (and, from the Rego parser, the
/// line); evaluation failures refuse the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy directory or one of its files could not be read.
    #[error("cannot read policy {path}: {message}")]
    Read {
        /// The path that failed.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// A Rego module did not parse or compile (the message has file and line).
    #[error("policy does not compile: {0}")]
    Compile(String),
    /// A data file is not valid JSON or YAML, or does not merge into `data`.
    #[error("policy data {path}: {message}")]
    Data {
        /// The data file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The directory has no `*.rego` file.
    #[error("policy directory {0} has no .rego file")]
    Empty(String),
    /// Evaluation failed (runtime error, time limit, conflicting rule values, …).
    #[error("policy evaluation failed: {0}")]
    Eval(String),
    /// The remote OPA could not be asked (unreachable, timeout, 502/503/504).
    #[error("policy unavailable: {0}")]
    Unavailable(String),
    /// The entrypoint's value is not a well-formed decision.
    #[error("policy answered a malformed decision: {0}")]
    Malformed(String),
}
