//! A TLS front for a plain-HTTP test server (the embedded token service): it presents an
//! X.509-SVID from a test CA, requires a client certificate from that CA, notes the
//! client's SPIFFE ID, and relays the bytes to the server behind it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::tls_echo::{server_config, spiffe_id_and_serial};
use super::workload_api::TestCa;

/// A running front; stops on drop.
pub struct TlsFront {
    pub port: u16,
    peers: Arc<Mutex<Vec<Option<String>>>>,
    failed_handshakes: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl TlsFront {
    /// Serves as `spiffe_id` and relays to 127.0.0.1:`upstream`.
    pub async fn start(ca: &TestCa, spiffe_id: &str, upstream: u16) -> TlsFront {
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(ca, spiffe_id));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peers = Arc::new(Mutex::new(Vec::new()));
        let failed_handshakes = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let (s, p, f) = (stop.clone(), peers.clone(), failed_handshakes.clone());
        tokio::spawn(async move {
            loop {
                let tcp = tokio::select! {
                    _ = s.cancelled() => return,
                    a = listener.accept() => match a { Ok((tcp, _)) => tcp, Err(_) => continue },
                };
                let (acceptor, peers, failed, s) =
                    (acceptor.clone(), p.clone(), f.clone(), s.clone());
                tokio::spawn(async move {
                    let mut tls = match acceptor.accept(tcp).await {
                        Ok(t) => t,
                        Err(_) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    };
                    let id = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|c| spiffe_id_and_serial(c.as_ref()).0);
                    peers.lock().unwrap().push(id);
                    let Ok(mut plain) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = s.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut tls, &mut plain) => {}
                    }
                });
            }
        });
        TlsFront {
            port,
            peers,
            failed_handshakes,
            stop,
        }
    }

    /// The client SPIFFE ID of every connection accepted.
    pub fn peers(&self) -> Vec<Option<String>> {
        self.peers.lock().unwrap().clone()
    }

    /// Connections whose handshake failed.
    pub fn failed_handshakes(&self) -> u64 {
        self.failed_handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
