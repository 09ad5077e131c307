//! An in-mesh upstream of the tests' own: HTTP/1.1 over TLS with a certificate (an
//! X.509-SVID) from a test CA, requiring a client certificate from that CA. It answers
//! every request with the SPIFFE ID (URI SAN) and serial of the client's certificate and
//! closes the connection, so every request is a new handshake: each one shows the
//! certificate the client holds at that moment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_util::sync::CancellationToken;

use super::workload_api::TestCa;

/// One request, with the client certificate of its connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client certificate's URI SAN.
    pub spiffe_id: Option<String>,
    /// The client certificate's serial, hex.
    pub serial: String,
    pub path: String,
    pub authorization: Option<String>,
}

/// A running TLS echo; stops on drop.
pub struct TlsEcho {
    pub port: u16,
    seen: Arc<Mutex<Vec<Peer>>>,
    failed_handshakes: Arc<AtomicU64>,
    stop: CancellationToken,
}

/// The rustls provider the tests use (explicit: more than one may be compiled in).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// (URI SAN, serial hex) of a DER certificate.
pub fn spiffe_id_and_serial(der: &[u8]) -> (Option<String>, String) {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("a certificate");
    let id = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|g| match g {
                x509_parser::extensions::GeneralName::URI(u) => Some(u.to_string()),
                _ => None,
            })
        });
    (id, cert.raw_serial_as_string())
}

/// A TLS server config presenting an SVID for `spiffe_id` from `ca` and requiring a
/// client certificate from `ca`.
pub fn server_config(ca: &TestCa, spiffe_id: &str) -> Arc<ServerConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca.bundle_der())).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .unwrap();
    let svid = ca.issue(spiffe_id, Duration::from_secs(3600));
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(svid.cert_der)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(svid.key_der)),
        )
        .unwrap();
    Arc::new(config)
}

impl TlsEcho {
    /// Serves as `spiffe_id` (an SVID from `ca`), trusting client certificates from `ca`.
    pub async fn start(ca: &TestCa, spiffe_id: &str) -> TlsEcho {
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(ca, spiffe_id));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let failed_handshakes = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let (s, seen2, failed) = (stop.clone(), seen.clone(), failed_handshakes.clone());
        tokio::spawn(async move {
            loop {
                let tcp = tokio::select! {
                    _ = s.cancelled() => return,
                    a = listener.accept() => match a { Ok((tcp, _)) => tcp, Err(_) => continue },
                };
                let (acceptor, seen, failed) = (acceptor.clone(), seen2.clone(), failed.clone());
                tokio::spawn(async move {
                    let tls = match acceptor.accept(tcp).await {
                        Ok(t) => t,
                        Err(_) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    };
                    let (spiffe_id, serial) = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| spiffe_id_and_serial(c.as_ref()))
                        .expect("the verifier requires a client certificate");
                    let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                        let peer = Peer {
                            spiffe_id: spiffe_id.clone(),
                            serial: serial.clone(),
                            path: req.uri().path().to_string(),
                            authorization: req
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string),
                        };
                        let body = serde_json::json!({
                            "client_spiffe_id": peer.spiffe_id,
                            "client_serial": peer.serial,
                        })
                        .to_string();
                        seen.lock().unwrap().push(peer);
                        async move { Ok::<_, std::convert::Infallible>(hyper::Response::new(body)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TlsEcho {
            port,
            seen,
            failed_handshakes,
            stop,
        }
    }

    /// Every request served so far.
    pub fn seen(&self) -> Vec<Peer> {
        self.seen.lock().unwrap().clone()
    }

    /// Connections whose TLS handshake failed (no or a refused client certificate, or
    /// the client refused this server's certificate).
    pub fn failed_handshakes(&self) -> u64 {
        self.failed_handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for TlsEcho {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
