//! rustls client configurations from the pod's current X.509-SVID, for actbridge's own
//! TLS calls (the token endpoint, `outbound.tls`): the client certificate is the SVID
//! held at each handshake (a rotation applies to every new connection), and the server
//! must chain to the current trust bundle and present the pinned SPIFFE ID.
//!
//! The identity is handed over after the client is built ([`IdentitySlot`]): until it
//! is, and while it holds no SVID, no client certificate is sent and every server is
//! refused (fail closed).

use std::sync::{Arc, OnceLock};

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use super::WorkloadIdentity;
use super::verify::SpiffeServerVerifier;

/// Where the workload identity arrives once it exists.
pub type IdentitySlot = Arc<OnceLock<Arc<WorkloadIdentity>>>;

/// The crypto provider of actbridge's TLS (explicit: more than one may be compiled in).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A client config that presents the current SVID and accepts only `server_id`.
pub fn client_config(slot: IdentitySlot, server_id: &str) -> ClientConfig {
    let provider = provider();
    ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the default protocol versions are supported by aws-lc-rs")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(BundleVerifier {
            slot: slot.clone(),
            server_id: server_id.to_string(),
            provider: provider.clone(),
        }))
        .with_client_cert_resolver(Arc::new(SvidResolver { slot, provider }))
}

fn ders(pem_text: &str) -> Vec<CertificateDer<'static>> {
    pem::parse_many(pem_text)
        .unwrap_or_default()
        .into_iter()
        .map(|p| CertificateDer::from(p.into_contents()))
        .collect()
}

/// The client certificate: the SVID held now.
#[derive(Debug)]
struct SvidResolver {
    slot: IdentitySlot,
    provider: Arc<CryptoProvider>,
}

impl ResolvesClientCert for SvidResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let m = self.slot.get()?.material()?;
        let key = pem::parse(&m.key_pem).ok()?.into_contents();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
        let signing = match self.provider.key_provider.load_private_key(key) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "the X.509-SVID's key is unusable for TLS");
                return None;
            }
        };
        Some(Arc::new(CertifiedKey::new(ders(&m.chain_pem), signing)))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The server: chains to the current bundle, presents `server_id`.
#[derive(Debug)]
struct BundleVerifier {
    slot: IdentitySlot,
    server_id: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for BundleVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let m = self
            .slot
            .get()
            .and_then(|id| id.material())
            .ok_or_else(|| Error::General("no SPIFFE trust bundle yet".into()))?;
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(ders(&m.bundle_pem));
        if added == 0 {
            return Err(Error::General("the SPIFFE trust bundle is empty".into()));
        }
        SpiffeServerVerifier::new(Arc::new(roots), &self.server_id, self.provider.clone())
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
