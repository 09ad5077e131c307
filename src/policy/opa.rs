//! A remote OPA instead of the in-process engine: OPA's Data API,
//! `POST {base}/v1/data/{entrypoint path}` with `{"input": …}`, answered by
//! `{"result": …}` (no `result` when the rule is undefined) or an error object
//! `{"code", "message"}`.

use std::time::Duration;

use url::Url;

use super::{PolicyDecision, PolicyError};
use crate::http_client::{build, read_limited};

/// Largest OPA response read.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The client of one OPA rule.
pub(super) struct OpaClient {
    http: reqwest::Client,
    url: Url,
}

impl OpaClient {
    /// A client for `entrypoint` (`data.a.b`) at the OPA server `base`.
    pub(super) fn new(
        base: &Url,
        entrypoint: &str,
        timeout: Duration,
    ) -> Result<Self, PolicyError> {
        let path = entrypoint.trim_start_matches("data.").replace('.', "/");
        // `join` replaces the last segment of a base without a trailing `/`.
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let url = base
            .join(&format!("v1/data/{path}"))
            .map_err(|e| PolicyError::Unavailable(format!("OPA URL: {e}")))?;
        Ok(OpaClient {
            http: build(timeout),
            url,
        })
    }

    /// The rule's value for `input_json`, as a decision.
    pub(super) async fn decide(&self, input_json: &str) -> Result<PolicyDecision, PolicyError> {
        crate::telemetry::metrics::timed("opa", self.ask(input_json)).await
    }

    async fn ask(&self, input_json: &str) -> Result<PolicyDecision, PolicyError> {
        let body = format!("{{\"input\":{input_json}}}");
        let resp = crate::http_client::traced(self.http.post(self.url.clone()))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                PolicyError::Unavailable(format!(
                    "OPA unreachable: {}",
                    crate::http_client::describe(&e)
                ))
            })?;
        let status = resp.status();
        let bytes = read_limited(resp, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| PolicyError::Unavailable(format!("OPA response: {e}")))?;
        if status.is_server_error() && status != http::StatusCode::INTERNAL_SERVER_ERROR {
            return Err(PolicyError::Unavailable(format!("OPA answered {status}")));
        }
        let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
            PolicyError::Malformed(format!(
                "OPA answered {status} with a body that is not JSON"
            ))
        })?;
        if !status.is_success() {
            // 400 invalid_parameter, 404, 500 internal_error (e.g. conflicting rule values).
            let message = json["message"].as_str().unwrap_or("no message");
            let code = json["code"].as_str().unwrap_or("no code");
            return Err(PolicyError::Eval(format!(
                "OPA answered {status} {code}: {}",
                message.chars().take(300).collect::<String>()
            )));
        }
        match json.get("result") {
            None => Err(PolicyError::Malformed("the entrypoint is undefined".into())),
            Some(v) => PolicyDecision::from_value(v.clone()),
        }
    }
}
