//! SDS (`envoy.service.secret.v3.SecretDiscoveryService`) on actbridge's gRPC server:
//! the SVID as a `tls_certificate` secret and the trust bundle as a
//! `validation_context` secret, under the configured names (SPIRE's `default` and
//! `ROOTCA` by default), pushed to Envoy on every rotation (state-of-the-world xDS:
//! each response carries every requested secret, with a new version and nonce).
//!
//! Nothing is answered before the first SVID: Envoy keeps the clusters that need it
//! warming, so no connection is ever made without mTLS.

use std::pin::Pin;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::DataSource;
use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, Secret, TlsCertificate, secret,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::{
    SecretDiscoveryService, SecretDiscoveryServiceServer,
};
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::{Material, WorkloadIdentity};

/// The xDS type of a secret.
pub const SECRET_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// The SDS service.
#[derive(Clone)]
pub struct SdsService {
    identity: Arc<WorkloadIdentity>,
}

impl SdsService {
    /// Serves `identity`.
    pub fn new(identity: Arc<WorkloadIdentity>) -> Self {
        SdsService { identity }
    }

    /// The tonic server wrapper.
    pub fn into_server(self) -> SecretDiscoveryServiceServer<Self> {
        SecretDiscoveryServiceServer::new(self)
    }

    /// The response for `names` (unknown names are left out) at `version`.
    fn response(&self, names: &[String], version: u64, m: &Material) -> DiscoveryResponse {
        let cfg = self.identity.config();
        let resources = names
            .iter()
            .filter_map(|n| secret(n, &cfg.svid_secret, &cfg.bundle_secret, m))
            .map(|s| Any {
                type_url: SECRET_TYPE.to_string(),
                value: s.encode_to_vec(),
            })
            .collect();
        DiscoveryResponse {
            version_info: version.to_string(),
            resources,
            type_url: SECRET_TYPE.to_string(),
            nonce: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        }
    }
}

fn inline(text: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::InlineBytes(text.as_bytes().to_vec())),
        ..Default::default()
    })
}

/// The secret `name` is, if it is one of ours.
fn secret(name: &str, svid: &str, bundle: &str, m: &Material) -> Option<Secret> {
    let r#type = if name == svid {
        secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: inline(&m.chain_pem),
            private_key: inline(&m.key_pem),
            ..Default::default()
        })
    } else if name == bundle {
        secret::Type::ValidationContext(CertificateValidationContext {
            trusted_ca: inline(&m.bundle_pem),
            ..Default::default()
        })
    } else {
        return None;
    };
    Some(Secret {
        name: name.to_string(),
        r#type: Some(r#type),
    })
}

type SotwStream = Pin<Box<dyn Stream<Item = Result<DiscoveryResponse, Status>> + Send>>;
type DeltaStream = Pin<Box<dyn Stream<Item = Result<DeltaDiscoveryResponse, Status>> + Send>>;

#[tonic::async_trait]
impl SecretDiscoveryService for SdsService {
    type DeltaSecretsStream = DeltaStream;
    type StreamSecretsStream = SotwStream;

    async fn delta_secrets(
        &self,
        _: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<DeltaStream>, Status> {
        Err(Status::unimplemented(
            "actbridge serves state-of-the-world SDS (StreamSecrets)",
        ))
    }

    async fn stream_secrets(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<SotwStream>, Status> {
        let mut requests = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let service = self.clone();
        let mut versions = self.identity.subscribe();
        tokio::spawn(async move {
            let mut names: Vec<String> = Vec::new();
            let mut sent: Option<u64> = None;
            loop {
                tokio::select! {
                    req = requests.message() => match req {
                        Ok(Some(r)) => {
                            if let Some(status) = r.error_detail.as_ref() {
                                tracing::warn!(message = %status.message, "Envoy rejected an SDS response");
                            }
                            // A new subscription (names changed) gets an answer at once;
                            // an ACK of what was sent needs none.
                            if r.resource_names != names {
                                names = r.resource_names;
                                sent = None;
                            }
                        }
                        _ => return,
                    },
                    changed = versions.changed() => if changed.is_err() { return },
                }
                let version = *versions.borrow();
                let Some(m) = service.identity.material() else {
                    continue;
                };
                if names.is_empty() || sent == Some(version) {
                    continue;
                }
                if tx
                    .send(Ok(service.response(&names, version, &m)))
                    .await
                    .is_err()
                {
                    return;
                }
                sent = Some(version);
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn fetch_secrets(
        &self,
        request: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        let m = self
            .identity
            .material()
            .ok_or_else(|| Status::unavailable("no X.509-SVID yet"))?;
        let version = *self.identity.subscribe().borrow();
        Ok(Response::new(self.response(
            &request.into_inner().resource_names,
            version,
            &m,
        )))
    }
}
