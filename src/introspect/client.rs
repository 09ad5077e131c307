//! One POST to an introspection endpoint (RFC 7662 §2.1: `token`,
//! `token_type_hint=access_token`, the client's authentication) and the parsing of its
//! answer (§2.2). The token is sent in the body only, and never logged.

use std::time::Duration;

use serde::Deserialize;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use super::IntrospectError;
use crate::config::{ClientAuthConfig, ClientConfig, IntrospectionConfig};
use crate::exchange::{ExchangeError, authenticate_client, clip};
use crate::http_client;
use crate::jwt::VerifiedToken;
use crate::spiffe::jwt::JwtSvidFetcher;

/// Largest answer accepted (an answer carries the token's claims).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// An RFC 7662 answer: `active` is required and a boolean; `sub` and `iss`, when
/// present, are compared with the verified token; `exp`, `iat` and `nbf`, when present,
/// are integer timestamps (§2.2) — anything else (a float, a negative number, a string,
/// beyond 2⁶⁴−1) makes it no answer. `exp` caps how long an active answer is reused.
#[derive(Debug, Deserialize)]
pub(super) struct Answer {
    active: bool,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    /// Checked for its type only.
    #[serde(default, rename = "iat")]
    _iat: Option<u64>,
    /// Checked for its type only.
    #[serde(default, rename = "nbf")]
    _nbf: Option<u64>,
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

    /// How long, as of `now` (Unix seconds), an active answer about `verified` may be
    /// reused at most: until the earlier of the token's `exp` and the answer's own.
    /// Saturating: any `exp` gives a time, none overflows.
    pub(super) fn reuse_for(&self, verified: &VerifiedToken, now: u64) -> Duration {
        let until = self
            .exp
            .map_or(verified.expires_at, |exp| exp.min(verified.expires_at));
        Duration::from_secs(until.saturating_sub(now))
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
    pub(super) fn new(cfg: &IntrospectionConfig) -> Self {
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
    pub(super) async fn introspect(&self, token: &str) -> Result<Answer, IntrospectError> {
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
        let result = Box::pin(crate::telemetry::metrics::timed(
            "introspection",
            self.send(token),
        ))
        .instrument(span.clone())
        .await;
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
            .map_err(|e| IntrospectError::Unavailable(crate::http_client::describe(&e)))?;
        let status = resp.status();
        Span::current().record("http.response.status_code", status.as_u16());
        let body = http_client::read_limited(resp, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| IntrospectError::Unavailable(e.to_string()))?;
        parse_answer(status.as_u16(), &body)
    }
}

/// Reads the endpoint's answer (its HTTP status and body): 5xx and 429 are
/// `Unavailable`, another non-2xx `Refused`, a 2xx that is not an RFC 7662 answer
/// `InvalidResponse`. Pure: the introspector and fuzz target `peer` both use it.
pub(super) fn parse_answer(status: u16, body: &[u8]) -> Result<Answer, IntrospectError> {
    let Ok(status) = reqwest::StatusCode::from_u16(status) else {
        return Err(IntrospectError::InvalidResponse(format!(
            "HTTP status {status} is not a status"
        )));
    };
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(IntrospectError::Unavailable(format!("HTTP {status}")));
    }
    if !status.is_success() {
        let error = serde_json::from_slice::<ErrorResponse>(body)
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
    serde_json::from_slice(body).map_err(|e| {
        IntrospectError::InvalidResponse(format!("HTTP {status}, not an RFC 7662 answer: {e}"))
    })
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
            actors_nest: true,
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

    #[test]
    fn timestamps_that_are_not_integers_make_no_answer() {
        for bad in [
            r#"{"active":true,"exp":1e300}"#,
            r#"{"active":true,"exp":18446744073709551616}"#,
            r#"{"active":true,"exp":-1}"#,
            r#"{"active":true,"exp":1796208300.5}"#,
            r#"{"active":true,"exp":"1796208300"}"#,
            r#"{"active":true,"iat":-5000000000000000000}"#,
            r#"{"active":true,"nbf":1e19}"#,
            r#"{"active":false,"exp":[]}"#,
        ] {
            let got = parse_answer(200, bad.as_bytes()).map(|_| ());
            assert!(
                matches!(got, Err(IntrospectError::InvalidResponse(_))),
                "{bad}: {got:?}"
            );
        }
        assert!(parse_answer(200, br#"{"active":true,"exp":18446744073709551615}"#).is_ok());
    }

    #[test]
    fn an_active_answer_is_reused_until_the_earlier_exp_and_never_overflows() {
        let reuse = |json: &str, exp: u64, now: u64| {
            let mut t = verified("alice");
            t.expires_at = exp;
            parse_answer(200, json.as_bytes())
                .unwrap()
                .reuse_for(&t, now)
                .as_secs()
        };
        let max = r#"{"active":true,"exp":18446744073709551615}"#;
        assert_eq!(reuse(r#"{"active":true}"#, 2_000, 1_000), 1_000);
        assert_eq!(reuse(r#"{"active":true,"exp":1500}"#, 2_000, 1_000), 500);
        assert_eq!(reuse(max, 2_000, 1_000), 1_000);
        assert_eq!(reuse(r#"{"active":true,"exp":0}"#, 2_000, 1_000), 0);
        assert_eq!(reuse(r#"{"active":true}"#, 2_000, u64::MAX), 0);
        assert_eq!(reuse(max, u64::MAX, 0), u64::MAX);
    }

    #[test]
    fn statuses_sort_into_unavailable_refused_and_invalid() {
        let kind = |status: u16, body: &str| match parse_answer(status, body.as_bytes()) {
            Ok(_) => "ok",
            Err(IntrospectError::Unavailable(_)) => "unavailable",
            Err(IntrospectError::Refused { .. }) => "refused",
            Err(IntrospectError::InvalidResponse(_)) => "invalid",
            Err(e) => panic!("{e}"),
        };
        assert_eq!(kind(200, r#"{"active":true}"#), "ok");
        assert_eq!(kind(503, r#"{"active":true}"#), "unavailable");
        assert_eq!(kind(429, ""), "unavailable");
        assert_eq!(kind(401, r#"{"error":"invalid_client"}"#), "refused");
        assert_eq!(kind(0, r#"{"active":true}"#), "invalid");
        assert_eq!(kind(1000, r#"{"active":true}"#), "invalid");
    }
}
