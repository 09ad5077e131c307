//! The outgoing HTTP client shared by the JWKS fetcher, the token-exchange client, a
//! remote OPA and the GitHub backend: reqwest over rustls, bounded response bodies, the
//! trace context of the calling span.

use std::time::Duration;

/// Builds the client used for calls to identity providers.
pub(crate) fn build(timeout: Duration) -> reqwest::Client {
    builder(timeout)
        .build()
        // Building only fails when the TLS backend cannot initialise, which is a broken
        // installation rather than a runtime condition.
        .expect("the rustls-based HTTP client must build")
}

/// As [`build`], with the given rustls configuration (e.g. mTLS with the pod's SVID,
/// `crate::spiffe::tls`).
pub(crate) fn build_with_tls(timeout: Duration, tls: rustls::ClientConfig) -> reqwest::Client {
    builder(timeout)
        .tls_backend_preconfigured(tls)
        .build()
        .expect("the rustls-based HTTP client must build with a rustls 0.23 config")
}

fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("actbridge/", env!("CARGO_PKG_VERSION")))
}

/// Adds the current span's W3C trace context (`traceparent`, and `tracestate` when the
/// caller sent one) to `req`, so the callee's spans join actbridge's trace. Adds nothing
/// when spans are not exported.
pub(crate) fn traced(mut req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    for (name, value) in crate::telemetry::propagation::outgoing() {
        req = req.header(name, value);
    }
    req
}

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The body exceeded the limit.
    #[error("response body is larger than {0} bytes")]
    TooLarge(usize),
    /// The transport failed while reading.
    #[error("reading the response failed: {0}")]
    Transport(#[from] reqwest::Error),
}

/// Reads a response body, refusing more than `limit` bytes (a misbehaving peer must not
/// make actbridge buffer without bound).
pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
