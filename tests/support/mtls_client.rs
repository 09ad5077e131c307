//! One HTTP/1.1 request over mTLS, as a workload of the mesh makes it: the server must
//! present an X.509-SVID for the pinned SPIFFE ID (actbridge's own verifier), and the
//! client presents its SVID, or none.

use std::sync::Arc;

use actbridge::spiffe::verify::SpiffeServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::tls_echo::provider;
use super::workload_api::{Issued, TestCa};

/// `GET path` to 127.0.0.1:`port`, expecting `server_id` signed by `ca`, with `client`'s
/// certificate if any. Ok = the whole response (status line, headers, body); Err = the
/// handshake or the connection failed, or nothing was answered.
pub async fn get(
    port: u16,
    ca: &TestCa,
    server_id: &str,
    client: Option<&Issued>,
    path: &str,
) -> Result<String, String> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca.bundle_der())).unwrap();
    let verifier = SpiffeServerVerifier::new(Arc::new(roots), server_id, provider());
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let config = match client {
        Some(c) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(c.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key_der.clone())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("workload.invalid").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: agent\r\nconnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response)
        .await
        .map_err(|e| format!("read: {e}"))?;
    if response.is_empty() {
        return Err("closed without a response".into());
    }
    Ok(String::from_utf8_lossy(&response).into_owned())
}
