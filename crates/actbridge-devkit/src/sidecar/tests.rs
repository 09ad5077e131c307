//! The renderer on the shipped envoy/sidecar.yaml: plain HTTP takes out exactly the
//! SPIFFE mTLS; mTLS keeps the SDS secrets, the pinned peer ID and the inbound chains.

use super::*;

const SHIPPED: &str = include_str!("../../../../envoy/sidecar.yaml");

fn ports() -> SidecarPorts {
    SidecarPorts {
        sds: None,
        admin: 1,
        inbound: 2,
        outbound: 3,
        ext_proc: ExtProcEndpoint::Tcp(4),
        app: 5,
        document_service: 6,
        aws_s3: 7,
        github_api: 8,
    }
}

fn parse(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap()
}

fn listener<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["static_resources"]["listeners"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|l| l["name"].as_str() == Some(name))
        .unwrap()
}

fn cluster<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["static_resources"]["clusters"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str() == Some(name))
        .unwrap()
}

#[test]
fn plain_takes_out_the_spiffe_mtls_and_nothing_else() {
    let doc = parse(&render(SHIPPED, &ports()).unwrap());
    let text = serde_yaml_ng::to_string(&doc).unwrap();
    assert!(!text.contains("sds_config"), "no SDS left:\n{text}");
    let inbound = listener(&doc, "inbound");
    let chains = inbound["filter_chains"].as_sequence().unwrap();
    assert_eq!(chains.len(), 1);
    assert_eq!(chains[0]["name"].as_str(), Some("inbound_plain"));
    assert!(chains[0].get("transport_socket").is_none());
    assert!(inbound.get("listener_filters").is_none());
    assert!(
        cluster(&doc, "document_service")
            .get("transport_socket")
            .is_none()
    );
    // The outbound listener keeps its TLS inspection and passthrough chain.
    let outbound = listener(&doc, "outbound");
    assert_eq!(outbound["filter_chains"].as_sequence().unwrap().len(), 2);
    assert_eq!(
        outbound["address"]["socket_address"]["port_value"].as_u64(),
        Some(3)
    );
}

#[test]
fn mtls_keeps_the_sds_secrets_the_pinned_id_and_the_inbound_chains() {
    let doc = parse(&render_with(SHIPPED, &ports(), Transport::Mtls).unwrap());
    let ctx = &cluster(&doc, "document_service")["transport_socket"]["typed_config"]["common_tls_context"];
    assert_eq!(
        ctx["tls_certificate_sds_secret_configs"][0]["name"].as_str(),
        Some("default")
    );
    let validation = &ctx["combined_validation_context"];
    assert_eq!(
        validation["validation_context_sds_secret_config"]["name"].as_str(),
        Some("ROOTCA")
    );
    let san = &validation["default_validation_context"]["match_typed_subject_alt_names"][0];
    assert_eq!(san["san_type"].as_str(), Some("URI"));
    assert_eq!(
        san["matcher"]["exact"].as_str(),
        Some("spiffe://demo.example.com/service/document-service")
    );
    assert_eq!(
        ctx["tls_certificate_sds_secret_configs"][0]["sds_config"]["api_config_source"]
            ["grpc_services"][0]["envoy_grpc"]["cluster_name"]
            .as_str(),
        Some("actbridge_sds")
    );
    let chains = listener(&doc, "inbound")["filter_chains"]
        .as_sequence()
        .unwrap();
    let names: Vec<_> = chains.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["inbound_mtls", "inbound_probe"]);
    assert_eq!(
        chains[0]["transport_socket"]["typed_config"]["require_client_certificate"].as_bool(),
        Some(true)
    );
}

#[test]
fn without_mtls_keeps_the_shipped_addresses() {
    let doc = parse(&without_mtls(SHIPPED).unwrap());
    assert_eq!(
        listener(&doc, "inbound")["address"]["socket_address"]["port_value"].as_u64(),
        Some(15006)
    );
    assert!(
        cluster(&doc, "document_service")
            .get("transport_socket")
            .is_none()
    );
}
