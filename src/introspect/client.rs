//! One POST to an introspection endpoint (RFC 7662 §2.1: `token`,
//! `token_type_hint=access_token`, the client's authentication) and the parsing of its
//! answer (§2.2). The token is sent in the body only, and never logged.

use serde::Deserialize;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use super::IntrospectError;
use crate::config::{ClientAuthConfig, ClientConfig, IntrospectionConfig};
use crate::exchange::{ExchangeError, authenticate_client, clip, describe_transport};
use crate::http_client;
use crate::jwt::VerifiedToken;
use crate::spiffe::jwt::JwtSvidFetcher;

/// Largest answer accepted (an answer carries the token's claims).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// An RFC 7662 answer: `active` is required and a boolean; `sub` and `iss`, when
/// present, are compared with the verified token.
#[derive(Debug, Deserialize)]
pub(super) struct Answer {
    active: bool,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    iss: Option<String>,
}

impl Answer {
    /// Ok when the token is active and the answer is about `verified`.
    pub(super) fn agrees_with(&self, verified: &VerifiedToken) -> Result<(), IntrospectError> {
        if !self.active {
            return Err(IntrospectError::Inactive);
        }
        if self.sub.is_some() && self.sub != verified.subject {
            return Err(IntrospectError::Mismatch("sub"));
        }
        if self.iss.as_ref().is_some_and(|iss| *iss != verified.issuer) {
            return Err(IntrospectError::Mismatch("iss"));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Posts introspection requests for one issuer.
pub(super) struct IntrospectionClient {
    http: reqwest::Client,
    endpoint: url::Url,
    client: ClientConfig,
    svids: Option<JwtSvidFetcher>,
}

impl IntrospectionClient {
    pub fn new(cfg: &IntrospectionConfig) -> Self {
        let svids = match &cfg.client.auth {
            ClientAuthConfig::JwtSvid { workload_api, .. } => {
                Some(JwtSvidFetcher::new(workload_api, cfg.timeout))
            }
            _ => None,
        };
        IntrospectionClient {
            http: http_client::build(cfg.timeout),
            endpoint: cfg.endpoint.clone(),
            client: cfg.client.clone(),
            svids,
        }
    }

    /// Introspects `token`, in an `introspection_request` client span whose context the
    /// request carries (`traceparent`).
    pub async fn introspect(&self, token: &str) -> Result<Answer, IntrospectError> {
        let span = crate::telemetry::sampling::child_span(|| {
            tracing::debug_span!(
                "introspection_request",
                otel.kind = "client",
                server.address = self.endpoint.host_str(),
                http.response.status_code = Empty,
                otel.status_code = Empty,
            )
        });
        // Boxed: the decision future awaiting it is already deeply nested.
        let result = Box::pin(self.send(token)).instrument(span.clone()).await;
        if result.is_err() {
            span.record("otel.status_code", "error");
        }
        result
    }

    async fn send(&self, token: &str) -> Result<Answer, IntrospectError> {
        let mut form: Vec<(&'static str, String)> = vec![
            ("token", token.to_string()),
            ("token_type_hint", "access_token".to_string()),
        ];
        let req = http_client::traced(
            self.http
                .post(self.endpoint.clone())
                .header("accept", "application/json"),
        );
        let req = authenticate_client(&self.client, self.svids.as_ref(), &mut form, req)
            .await
            .map_err(|e| match e {
                ExchangeError::Unavailable(why) => IntrospectError::Unavailable(why),
                other => IntrospectError::Unavailable(other.to_string()),
            })?;
        let resp = req
            .form(&form)
            .send()
            .await
            .map_err(|e| IntrospectError::Unavailable(describe_transport(&e)))?;
        let status = resp.status();
        Span::current().record("http.response.status_code", status.as_u16());
        let body = http_client::read_limited(resp, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| IntrospectError::Unavailable(e.to_string()))?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(IntrospectError::Unavailable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            let error = serde_json::from_slice::<ErrorResponse>(&body)
                .map(|e| {
                    let description = e.error_description.as_deref().map(clip);
                    match description {
                        Some(d) => format!("{} ({d})", clip(&e.error)),
                        None => clip(&e.error),
                    }
                })
                .unwrap_or_default();
            return Err(IntrospectError::Refused {
                status: status.as_u16(),
                error,
            });
        }
        serde_json::from_slice(&body).map_err(|e| {
            IntrospectError::InvalidResponse(format!("HTTP {status}, not an RFC 7662 answer: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(sub: &str) -> VerifiedToken {
        VerifiedToken {
            issuer: "https://idp/realms/a".into(),
            subject: Some(sub.into()),
            username: None,
            audiences: Vec::new(),
            authorized_party: None,
            scopes: Vec::new(),
            groups: Vec::new(),
            roles: Vec::new(),
            expires_at: 0,
            issued_at: None,
            token_id: None,
            actors: Vec::new(),
            fingerprint: String::new(),
        }
    }

    fn answer(json: &str) -> Result<Answer, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn only_an_active_answer_about_the_same_token_passes() {
        let t = verified("alice");
        let ok = |j: &str| answer(j).unwrap().agrees_with(&t);
        assert_eq!(ok(r#"{"active":true}"#), Ok(()));
        assert_eq!(
            ok(r#"{"active":true,"sub":"alice","iss":"https://idp/realms/a","x":[1]}"#),
            Ok(())
        );
        assert_eq!(ok(r#"{"active":false}"#), Err(IntrospectError::Inactive));
        assert_eq!(
            ok(r#"{"active":false,"sub":"bob"}"#),
            Err(IntrospectError::Inactive)
        );
        assert_eq!(
            ok(r#"{"active":true,"sub":"bob"}"#),
            Err(IntrospectError::Mismatch("sub"))
        );
        assert_eq!(
            ok(r#"{"active":true,"iss":"https://other"}"#),
            Err(IntrospectError::Mismatch("iss"))
        );
    }

    #[test]
    fn an_answer_without_a_boolean_active_is_not_an_answer() {
        for bad in [
            r#"{}"#,
            r#"{"active":"true"}"#,
            r#"{"active":1}"#,
            "[]",
            "<html>",
        ] {
            assert!(answer(bad).is_err(), "{bad}");
        }
    }
}
