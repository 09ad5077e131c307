//! Ports and waiting.

use std::time::{Duration, Instant};

/// A free loopback TCP port (bound then released; the OS does not hand it out again
/// immediately).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Polls `url` until it answers 200 or `timeout` passes.
pub async fn wait_http_ok(url: &str, timeout: Duration) -> bool {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let answer = client
            .get(url)
            .timeout(Duration::from_millis(500))
            .send()
            .await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// Writes `request` as raw bytes to `127.0.0.1:port` (what an HTTP client would refuse
/// to send: CR, LF or NUL in a value, obs-fold, non-UTF-8), reads the answer until the
/// peer closes (send `connection: close`) and returns its status code and body, or `None`
/// when the connection closed without an answer.
pub async fn raw_http(port: u16, request: &[u8]) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    // The peer may answer and close before everything is written (e.g. an oversized
    // header): a failed write still leaves its answer to read.
    let _ = conn.write_all(request).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 8192];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no end of the answer within 10 s to a raw request"
    );
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut status = head.lines().next()?.split(' ');
    match (status.next(), status.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => {
            Some((code.parse().ok()?, body.to_string()))
        }
        _ => None,
    }
}

/// Now, in Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
