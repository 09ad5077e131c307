//! What the policy answers, parsed strictly: anything malformed is an error, and an
//! error is a refusal.

use serde::{Deserialize, Serialize};

use super::PolicyError;

/// Longest `reason` accepted (it is shown to the caller).
const MAX_REASON_CHARS: usize = 200;

/// The policy's answer for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDecision {
    /// Whether the request may go on.
    pub allow: bool,
    /// Why, in words a caller may read (no secrets): it becomes `error_description`.
    pub reason: String,
    /// The permission intersection: the user's permissions ∩ every agent's capabilities.
    #[serde(default)]
    pub grant: Vec<String>,
    /// Whether a person must approve the request first.
    #[serde(default)]
    pub approval_required: bool,
    /// Resources inside the grant this request must still not reach (for `aws_sts`: object
    /// keys a session policy denies explicitly, such as a document whose departments are
    /// not all granted). Optional; default none.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// On a `protocol: mcp` route, a `tools/call` goes out with a single-use tool token:
    /// a fresh exchange (never cached) whose audience is the MCP server and whose only
    /// scope names the tool (`tool_scope`), living seconds with its own `jti`. Optional;
    /// default `false`.
    #[serde(default)]
    pub single_use_token: bool,
}

impl PolicyDecision {
    /// Parses and checks the entrypoint's value: an object with a boolean `allow`, a
    /// non-empty printable `reason`, a list of non-empty strings `grant` (sorted and
    /// deduplicated here), a boolean `approval_required` and an optional list `exclude`.
    pub(super) fn from_value(v: serde_json::Value) -> Result<PolicyDecision, PolicyError> {
        if v.is_null() {
            return Err(PolicyError::Malformed("the entrypoint is undefined".into()));
        }
        let mut d: PolicyDecision = serde_json::from_value(v)
            .map_err(|e| PolicyError::Malformed(format!("not a decision object: {e}")))?;
        if d.reason.trim().is_empty()
            || d.reason.chars().count() > MAX_REASON_CHARS
            || d.reason.chars().any(char::is_control)
        {
            return Err(PolicyError::Malformed(format!(
                "`reason` must be 1 to {MAX_REASON_CHARS} printable characters"
            )));
        }
        if d.grant
            .iter()
            .any(|g| g.is_empty() || g.chars().any(|c| c.is_control() || c == ','))
        {
            return Err(PolicyError::Malformed(
                "`grant` entries must be non-empty, without commas or control characters".into(),
            ));
        }
        if d.exclude
            .iter()
            .any(|x| x.is_empty() || x.chars().any(char::is_control))
        {
            return Err(PolicyError::Malformed(
                "`exclude` entries must be non-empty, without control characters".into(),
            ));
        }
        d.grant.sort();
        d.grant.dedup();
        d.exclude.sort();
        d.exclude.dedup();
        Ok(d)
    }
}
