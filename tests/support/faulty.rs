//! A misbehaving HTTP/1.1 peer for fault injection: a raw TCP server that reads each
//! request and then does what the test set — answer given bytes (garbage, HTML, a
//! truncated response), answer after a delay, or close without answering. It records
//! every request it read, so a test can also assert on what was sent to it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// What the peer does with the next requests.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answers these bytes as they are (status line, headers, body), then closes.
    Raw(Vec<u8>),
    /// Waits, then answers as the inner fault.
    Slow(Duration, Box<Fault>),
    /// Closes the connection without a byte.
    Close,
}

impl Fault {
    /// A complete response with `status`, `content-type` and `body`.
    pub fn respond(status: u16, content_type: &str, body: &[u8]) -> Fault {
        let mut r = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        Fault::Raw(r)
    }
}

/// A running faulty peer; stops on drop.
pub struct Faulty {
    pub port: u16,
    fault: Arc<Mutex<Fault>>,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: CancellationToken,
}

impl Faulty {
    /// Starts the peer on a free loopback port, doing `fault`.
    pub async fn start(fault: Fault) -> Faulty {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let fault = Arc::new(Mutex::new(fault));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (f, r, s) = (fault.clone(), requests.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    _ = s.cancelled() => return,
                    c = listener.accept() => c,
                };
                let Ok((conn, _)) = conn else { continue };
                let (f, r, s) = (f.clone(), r.clone(), s.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = s.cancelled() => {}
                        _ = serve(conn, f, r) => {}
                    }
                });
            }
        });
        Faulty {
            port,
            fault,
            requests,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Changes what the peer does from the next request on.
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    /// Every request read so far (head and body, raw).
    pub fn requests(&self) -> Vec<Vec<u8>> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Faulty {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(
    mut conn: tokio::net::TcpStream,
    fault: Arc<Mutex<Fault>>,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
) {
    let mut req = Vec::new();
    let mut buf = [0u8; 8192];
    // The head, then as many body bytes as content-length names.
    loop {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
        if let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&req[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if req.len() >= end + 4 + len {
                break;
            }
        }
    }
    requests.lock().unwrap().push(req);
    let mut current = fault.lock().unwrap().clone();
    loop {
        match current {
            Fault::Slow(delay, inner) => {
                tokio::time::sleep(delay).await;
                current = *inner;
            }
            Fault::Raw(bytes) => {
                let _ = conn.write_all(&bytes).await;
                let _ = conn.shutdown().await;
                return;
            }
            Fault::Close => return,
        }
    }
}
