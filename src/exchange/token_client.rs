//! One POST to the token endpoint (RFC 6749 §3.2, form-encoded) and the parsing of its
//! answer: an RFC 6749 §5.1 / RFC 8693 §2.2.1 token response, or an error response
//! (§5.2, Keycloak's `{"error","error_description"}` shape).

use serde::Deserialize;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use super::ExchangeError;
use super::client_auth::authenticate;
use crate::config::{ClientAuthConfig, ClientConfig};
use crate::http_client;
use crate::spiffe::jwt::JwtSvidFetcher;
use crate::spiffe::tls::IdentitySlot;

/// Largest token response accepted.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Longest `expires_in` accepted, in seconds: one year. Token services issue tokens for
/// minutes or hours; an answer beyond a year is garbage, not a policy, and refusing it
/// keeps every time computed from it far from overflow.
pub const MAX_EXPIRES_IN_SECS: u64 = 365 * 24 * 3600;

/// A successful token response, checked: a non-empty `access_token`, `token_type`
/// Bearer, `expires_in` (when present) a whole number of seconds in
/// 1..=[`MAX_EXPIRES_IN_SECS`].
#[derive(Debug, Clone)]
pub(super) struct TokenResponse {
    pub access_token: String,
    pub expires_in: Option<u64>,
    pub issued_token_type: Option<String>,
}

/// A token response as it arrives (RFC 6749 §5.1); `expires_in` is any JSON number
/// until it is checked.
#[derive(Deserialize)]
struct RawTokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<serde_json::Number>,
    #[serde(default)]
    issued_token_type: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Posts token requests for one client.
pub(super) struct TokenClient {
    http: reqwest::Client,
    endpoint: url::Url,
    client: ClientConfig,
    /// JWT-SVIDs for `jwt_svid` client authentication.
    svids: Option<JwtSvidFetcher>,
    /// The workload identity for mTLS to the token endpoint (`outbound.tls`), set once
    /// it exists.
    identity: IdentitySlot,
}

impl TokenClient {
    /// `server_id`: the token service's SPIFFE ID, for mTLS with the pod's SVID.
    pub(super) fn new(
        endpoint: url::Url,
        client: ClientConfig,
        timeout: std::time::Duration,
        server_id: Option<&str>,
    ) -> Self {
        let svids = match &client.auth {
            ClientAuthConfig::JwtSvid { workload_api, .. } => {
                Some(JwtSvidFetcher::new(workload_api, timeout))
            }
            _ => None,
        };
        let identity = IdentitySlot::default();
        let http = match server_id {
            Some(id) => http_client::build_with_tls(
                timeout,
                crate::spiffe::tls::client_config(identity.clone(), id),
            ),
            None => http_client::build(timeout),
        };
        TokenClient {
            http,
            endpoint,
            client,
            svids,
            identity,
        }
    }

    /// Hands over the workload identity whose SVID mTLS presents (once; later calls
    /// change nothing).
    pub(super) fn use_identity(&self, identity: std::sync::Arc<crate::spiffe::WorkloadIdentity>) {
        let _ = self.identity.set(identity);
    }

    pub(super) fn client_id(&self) -> &str {
        &self.client.client_id
    }

    /// Sends `form` (plus client authentication) and parses the answer, in a
    /// `token_request` client span whose context the request carries (`traceparent`).
    pub(super) async fn request(
        &self,
        form: Vec<(&'static str, String)>,
    ) -> Result<TokenResponse, ExchangeError> {
        let grant = form
            .iter()
            .find(|(k, _)| *k == "grant_type")
            .map(|(_, v)| v);
        let span = crate::telemetry::sampling::child_span(|| {
            tracing::debug_span!(
                "token_request",
                otel.kind = "client",
                grant_type = grant.map(String::as_str),
                server.address = self.endpoint.host_str(),
                http.response.status_code = Empty,
                otel.status_code = Empty,
            )
        });
        // Boxed: one token request (a cache miss) is off the hot path, and the decision
        // future that awaits it is already deeply nested (its layout has a depth limit).
        let result = Box::pin(crate::telemetry::metrics::timed(
            "token_service",
            self.send(form),
        ))
        .instrument(span.clone())
        .await;
        if result.is_err() {
            span.record("otel.status_code", "error");
        }
        result
    }

    async fn send(
        &self,
        mut form: Vec<(&'static str, String)>,
    ) -> Result<TokenResponse, ExchangeError> {
        let req = http_client::traced(
            self.http
                .post(self.endpoint.clone())
                .header("accept", "application/json"),
        );
        let req = authenticate(&self.client, self.svids.as_ref(), &mut form, req).await?;
        let resp = req
            .form(&form)
            .send()
            .await
            .map_err(|e| ExchangeError::Unavailable(crate::http_client::describe(&e)))?;
        let status = resp.status();
        Span::current().record("http.response.status_code", status.as_u16());
        let body = http_client::read_limited(resp, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| ExchangeError::Unavailable(e.to_string()))?;
        parse_answer(status.as_u16(), &body)
    }
}

/// Reads the token endpoint's answer (its HTTP status and body): a checked token
/// response, or why there is none. 5xx and 429 are `Unavailable`; 401 with an OAuth error
/// body is `ClientRejected` (actbridge's own client); another non-2xx with one is `Refused`; anything else that is not a token response within
/// bounds is `InvalidResponse`. Pure: the exchanger and fuzz target `peer` both use it.
pub(super) fn parse_answer(status: u16, body: &[u8]) -> Result<TokenResponse, ExchangeError> {
    let Ok(status) = reqwest::StatusCode::from_u16(status) else {
        return Err(ExchangeError::InvalidResponse(format!(
            "HTTP status {status} is not a status"
        )));
    };
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(ExchangeError::Unavailable(format!("HTTP {status}")));
    }
    if status.is_success() {
        let tr: RawTokenResponse = serde_json::from_slice(body).map_err(|e| {
            ExchangeError::InvalidResponse(format!("HTTP {status} without a token response: {e}"))
        })?;
        if !tr.token_type.eq_ignore_ascii_case("bearer") {
            return Err(ExchangeError::InvalidResponse(format!(
                "token_type `{}` is not Bearer",
                clip(&tr.token_type.chars().take(32).collect::<String>())
            )));
        }
        if tr.access_token.is_empty() {
            return Err(ExchangeError::InvalidResponse("empty access_token".into()));
        }
        let expires_in = match tr.expires_in {
            None => None,
            Some(n) => Some(
                n.as_u64()
                    .filter(|s| (1..=MAX_EXPIRES_IN_SECS).contains(s))
                    .ok_or_else(|| {
                        ExchangeError::InvalidResponse(format!(
                            "expires_in {} is not a whole number of seconds in 1..={MAX_EXPIRES_IN_SECS}",
                            clip(&n.to_string())
                        ))
                    })?,
            ),
        };
        return Ok(TokenResponse {
            access_token: tr.access_token,
            expires_in,
            issued_token_type: tr.issued_token_type,
        });
    }
    let Ok(er) = serde_json::from_slice::<ErrorResponse>(body) else {
        return Err(ExchangeError::InvalidResponse(format!(
            "HTTP {status} without an OAuth error body"
        )));
    };
    let error = clip(&er.error);
    let description = er
        .error_description
        .as_deref()
        .map(clip)
        .unwrap_or_default();
    // RFC 6749 §5.2: 401 is the answer to a client that failed to authenticate.
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(ExchangeError::ClientRejected { error, description });
    }
    Err(ExchangeError::Refused {
        status: status.as_u16(),
        error,
        description,
    })
}

/// Keeps strings from the token service short and printable before they are logged.
pub(crate) fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}
