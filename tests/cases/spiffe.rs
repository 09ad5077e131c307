//! The workload identity against the tests' own Workload API server: actbridge serves
//! the SVID and the bundle over SDS and pushes every rotation; it is not ready, and
//! refuses outbound requests, until an SVID arrives and after the last one expires while
//! the Workload API is away; it recovers when the API returns.

use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{Secret, secret};
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;
use prost::Message;
use tokio::sync::mpsc;

use crate::support::actbridge::Actbridge;
use crate::support::workload_api::WorkloadApi;
use crate::support::world::{AGENT, Sts, World, sidecar_config, with_spiffe};

const SECRET_TYPE: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

fn spiffe_config(sts: &Sts, api: &WorkloadApi) -> String {
    with_spiffe(&sidecar_config(sts), &api.endpoint())
}

fn inline(ds: &Option<envoy_types::pb::envoy::config::core::v3::DataSource>) -> String {
    match ds.as_ref().and_then(|d| d.specifier.as_ref()) {
        Some(Specifier::InlineBytes(b)) => String::from_utf8(b.clone()).unwrap(),
        other => panic!("expected inline bytes, got {other:?}"),
    }
}

/// The SPIFFE ID (URI SAN) of the first certificate in `pem`.
fn uri_san(pem_text: &str) -> String {
    let first = pem::parse_many(pem_text).unwrap().remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(first.contents()).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    san.value
        .general_names
        .iter()
        .find_map(|g| match g {
            x509_parser::extensions::GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .unwrap()
}

/// (svid chain PEM, key PEM, bundle PEM) from one SDS response.
fn secrets(resp: &DiscoveryResponse) -> (String, String, String) {
    assert_eq!(resp.type_url, SECRET_TYPE);
    let mut chain = None;
    let mut bundle = None;
    for any in &resp.resources {
        let s = Secret::decode(any.value.as_slice()).unwrap();
        match s.r#type.unwrap() {
            secret::Type::TlsCertificate(t) => {
                assert_eq!(s.name, "default");
                chain = Some((inline(&t.certificate_chain), inline(&t.private_key)));
            }
            secret::Type::ValidationContext(v) => {
                assert_eq!(s.name, "ROOTCA");
                bundle = Some(inline(&v.trusted_ca));
            }
            other => panic!("unexpected secret {other:?}"),
        }
    }
    let (chain, key) = chain.expect("the SVID");
    (chain, key, bundle.expect("the bundle"))
}

#[tokio::test]
async fn sds_serves_the_svid_and_bundle_and_pushes_every_rotation() {
    let api = WorkloadApi::start(AGENT, Duration::from_secs(30), Duration::from_millis(700)).await;
    let sts = Sts::start().await;
    let actbridge = Actbridge::start(&spiffe_config(&sts, &api)).await;

    // SDS is served on its own port only: the ext_proc port does not hand out the key.
    let mut on_ext_proc = SecretDiscoveryServiceClient::connect(format!(
        "http://127.0.0.1:{}",
        actbridge.ext_proc_port
    ))
    .await
    .unwrap();
    let asked = on_ext_proc
        .fetch_secrets(DiscoveryRequest {
            resource_names: vec!["default".into()],
            type_url: SECRET_TYPE.into(),
            ..Default::default()
        })
        .await;
    assert_eq!(asked.unwrap_err().code(), tonic::Code::Unimplemented);
    let mut client = SecretDiscoveryServiceClient::connect(format!(
        "http://127.0.0.1:{}",
        actbridge.sds_port.expect("listen.sds")
    ))
    .await
    .unwrap();
    let (tx, rx) = mpsc::channel(8);
    let subscribe = DiscoveryRequest {
        resource_names: vec!["default".into(), "ROOTCA".into()],
        type_url: SECRET_TYPE.into(),
        ..Default::default()
    };
    tx.send(subscribe.clone()).await.unwrap();
    let mut stream = client
        .stream_secrets(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    let mut versions = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 4 {
        assert!(
            Instant::now() < deadline,
            "fewer than three rotations pushed"
        );
        let resp = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("a push")
            .unwrap()
            .expect("the stream stays open");
        let (chain, key, bundle) = secrets(&resp);
        assert_eq!(uri_san(&chain), AGENT);
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(bundle.trim(), api.ca.bundle_pem().trim());
        assert!(
            !versions.contains(&resp.version_info),
            "a new version per push"
        );
        versions.push(resp.version_info.clone());
        // ACK, as Envoy does.
        tx.send(DiscoveryRequest {
            version_info: resp.version_info.clone(),
            response_nonce: resp.nonce.clone(),
            ..subscribe.clone()
        })
        .await
        .unwrap();
        if !seen.contains(&chain) {
            seen.push(chain);
        }
    }
    assert!(
        !actbridge.log().contains("PRIVATE KEY"),
        "the key never reaches the log"
    );
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", actbridge.admin_port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("actbridge_svid_expiry_timestamp_seconds "),
        "{metrics}"
    );
}

#[tokio::test]
async fn without_a_valid_svid_the_sidecar_is_not_ready_and_refuses_outbound() {
    // The Workload API is down at start.
    let mut api = WorkloadApi::start(AGENT, Duration::from_secs(3), Duration::from_secs(60)).await;
    api.stop();
    let sts = Sts::start().await;
    let config = spiffe_config(&sts, &api);
    let world = World::builder(sts, &config).unready().start().await;
    let readyz = format!("http://127.0.0.1:{}/readyz", world.actbridge.admin_port);
    let token = world.sts.alice_delegated().await;
    let r = reqwest::get(&readyz).await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("X.509-SVID"));
    let r = world
        .agent_call("document-service", "/documents/DOC-001", &token)
        .await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(world.docs.count(), 0, "nothing leaves without an SVID");

    // It returns: ready, and outbound works.
    api.resume().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while reqwest::get(&readyz).await.unwrap().status() != 200 {
        assert!(
            Instant::now() < deadline,
            "did not become ready:\n{}",
            world.actbridge.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = world
        .agent_call("document-service", "/documents/DOC-001", &token)
        .await;
    assert_eq!(r.status(), 200);

    // It goes away: the last SVID (3 s) is used until it expires, then refused.
    api.stop();
    let r = world
        .agent_call("document-service", "/documents/DOC-002", &token)
        .await;
    assert_eq!(r.status(), 200, "the last SVID is still valid");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(reqwest::get(&readyz).await.unwrap().status(), 503);
    let r = world
        .agent_call("document-service", "/documents/DOC-003", &token)
        .await;
    assert_eq!(r.status(), 503);

    // And it comes back: the source reconnects by itself.
    api.resume().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(&readyz).await.unwrap().status() != 200 {
        assert!(
            Instant::now() < deadline,
            "did not recover:\n{}",
            world.actbridge.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = world
        .agent_call("document-service", "/documents/DOC-004", &token)
        .await;
    assert_eq!(r.status(), 200);
}
