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

/// What went wrong with a call, for the operator: the kind of failure and every cause
/// under it (`connection failed: client error (Connect): tcp connect error: Connection
/// refused (os error 111)`), never the URL (it is configuration, and may carry a query
/// string; the log line names the peer), each cause clipped to printable text. reqwest's
/// own message stops at "error sending request for url (...)".
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else if e.is_redirect() {
        "redirected"
    } else {
        "request failed"
    };
    let mut out = kind.to_string();
    let mut last = String::new();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text: String = c
            .to_string()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        // hyper and std repeat a cause's text in the next one down; say it once.
        if !text.is_empty() && !last.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        last = text;
        cause = c.source();
    }
    out
}

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The body exceeded the limit.
    #[error("response body is larger than {0} bytes")]
    TooLarge(usize),
    /// The transport failed while reading.
    #[error("{}", describe(.0))]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused connection says so, down to the OS's words, and never echoes the URL
    /// (whose query may hold a secret).
    #[tokio::test]
    async fn a_failed_call_is_described_with_its_causes_and_without_the_url() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/certs?key=s3cret");
        let e = build(Duration::from_secs(2))
            .get(&url)
            .send()
            .await
            .unwrap_err();
        let text = describe(&e);
        assert!(text.starts_with("connection failed: "), "{text}");
        assert!(text.contains("Connection refused"), "{text}");
        assert!(
            !text.contains("s3cret") && !text.contains("/certs"),
            "{text}"
        );
        // What reqwest alone says: neither cause nor anything after the URL.
        assert!(!e.to_string().contains("refused"), "{e}");
    }

    #[tokio::test]
    async fn a_peer_that_does_not_answer_in_time_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let e = build(Duration::from_millis(200))
            .get(&url)
            .send()
            .await
            .unwrap_err();
        assert_eq!(describe(&e).split(':').next(), Some("timed out"));
        drop(listener);
    }
}
