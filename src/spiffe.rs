//! The pod's workload identity: X.509-SVIDs and trust bundles from the SPIFFE Workload
//! API (through the `spiffe` crate's `X509Source`, which follows every rotation and
//! reconnects with backoff), served to Envoy over SDS ([`sds`]).
//!
//! Until the first SVID arrives the sidecar is not ready and outbound requests are
//! refused; when the Workload API goes away the last SVID is used until it expires, then
//! outbound requests are refused again until a new one arrives.

pub mod jwt;
pub mod sds;
pub mod tls;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::SpiffeConfig;

/// What Envoy and actbridge use of the identity: the SVID (certificate chain and key)
/// and the trust bundle of its trust domain, as PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Material {
    /// The SPIFFE ID of the SVID.
    pub spiffe_id: String,
    /// The certificate chain, leaf first, PEM.
    pub chain_pem: String,
    /// The private key, PKCS#8 PEM. Never logged.
    pub key_pem: String,
    /// The trust bundle's CA certificates, PEM.
    pub bundle_pem: String,
    /// The leaf's `notAfter`, Unix seconds.
    pub expires_at: i64,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("spiffe_id", &self.spiffe_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The workload identity, shared by the SDS server, readiness and the decision core.
pub struct WorkloadIdentity {
    cfg: SpiffeConfig,
    current: ArcSwapOption<Material>,
    /// Bumped on every new SVID or bundle; SDS streams push on a change.
    version: watch::Sender<u64>,
}

impl std::fmt::Debug for WorkloadIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadIdentity")
            .field("endpoint", &self.cfg.endpoint)
            .field("current", &self.material())
            .finish()
    }
}

impl WorkloadIdentity {
    /// An identity with no SVID yet; [`WorkloadIdentity::run`] fetches it.
    pub fn new(cfg: &SpiffeConfig) -> Arc<WorkloadIdentity> {
        Arc::new(WorkloadIdentity {
            cfg: cfg.clone(),
            current: ArcSwapOption::empty(),
            version: watch::channel(0).0,
        })
    }

    /// The configuration (SDS names).
    pub fn config(&self) -> &SpiffeConfig {
        &self.cfg
    }

    /// The current material, if an SVID has arrived (expired or not).
    pub fn material(&self) -> Option<Arc<Material>> {
        self.current.load_full()
    }

    /// Whether a valid (unexpired) SVID is held.
    pub fn is_ready(&self) -> bool {
        self.material()
            .is_some_and(|m| m.expires_at > crate::clock::now_secs() as i64)
    }

    /// Version changes: one per new SVID or bundle.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Connects to the Workload API and follows it until `shutdown`: the first SVID (the
    /// `spiffe` crate retries until the API answers), then every rotation. A source that
    /// fails is rebuilt after a pause.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let built = tokio::select! {
                _ = shutdown.cancelled() => return,
                b = ::spiffe::X509Source::builder().endpoint(&self.cfg.endpoint).build() => b,
            };
            let source = match built {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(endpoint = %self.cfg.endpoint, error = %e, "SPIFFE Workload API unavailable; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            self.take(&source);
            let mut updates = source.updated();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        source.shutdown().await;
                        return;
                    }
                    changed = updates.changed() => match changed {
                        Ok(_) => self.take(&source),
                        Err(e) => {
                            tracing::warn!(error = %e, "SPIFFE X.509 source closed; reconnecting");
                            break;
                        }
                    },
                }
            }
        }
    }

    /// Publishes the source's current SVID and bundle.
    fn take(&self, source: &::spiffe::X509Source) {
        match material_of(source) {
            Ok(m) => {
                if self.material().as_deref() != Some(&m) {
                    tracing::info!(spiffe_id = %m.spiffe_id, expires_at = m.expires_at, "X.509-SVID received");
                    self.current.store(Some(Arc::new(m)));
                    self.version.send_modify(|v| *v += 1);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "unusable X.509-SVID from the Workload API; keeping the last one")
            }
        }
    }
}

/// The SVID and bundle of `source` as PEM.
fn material_of(source: &::spiffe::X509Source) -> Result<Material, String> {
    let svid = source.svid().map_err(|e| e.to_string())?;
    let td = svid.spiffe_id().trust_domain();
    let bundle = source
        .try_bundle_for_trust_domain(td)
        .ok_or_else(|| format!("no trust bundle for {td}"))?;
    let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    let pem_of = |tag: &str, der: &[u8]| pem::encode_config(&pem::Pem::new(tag, der.to_vec()), lf);
    let chain_pem = svid
        .cert_chain()
        .iter()
        .map(|c| pem_of("CERTIFICATE", c.as_ref()))
        .collect::<String>();
    let bundle_pem = bundle
        .authorities()
        .iter()
        .map(|c| pem_of("CERTIFICATE", c.as_ref()))
        .collect::<String>();
    let (_, leaf) = x509_parser::parse_x509_certificate(svid.leaf().as_ref())
        .map_err(|e| format!("leaf certificate: {e}"))?;
    Ok(Material {
        spiffe_id: svid.spiffe_id().to_string(),
        chain_pem,
        key_pem: pem_of("PRIVATE KEY", svid.private_key().as_ref()),
        bundle_pem,
        expires_at: leaf.validity().not_after.timestamp(),
    })
}
