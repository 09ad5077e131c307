//! Test harness: starts the real Envoy, the actbridge binary, the embedded token service
//! and echo upstreams on free loopback ports, and tears them down on drop.

#![allow(dead_code)]

pub mod actbridge;
pub mod chat;
pub mod config_edit;
pub mod echo;
pub mod envoy;
pub mod faulty;
pub mod github;
pub mod keycloak;
pub mod mcp;
pub mod ministack;
pub mod mtls_client;
pub mod net;
pub mod netns;
pub mod opa;
pub mod otlp;
pub mod postgres;
pub mod redis;
pub mod sshd;
pub mod tls_echo;
pub mod tls_front;
pub mod workload_api;
pub mod world;

/// `der` as PEM with this label, LF line endings (the text a key file holds).
pub fn pem(label: &str, der: &[u8]) -> String {
    let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(label, der.to_vec()), lf)
}
