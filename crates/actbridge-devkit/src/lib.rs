//! actbridge's one-machine tooling, apart from the sidecar: `actbridge demo`
//! ([`demo`]), the shipped `envoy/sidecar.yaml` rendered for local ports
//! ([`sidecar`]), MiniStack as the demo's and the tests' AWS ([`ministack`]),, and the
//! demo's stand-in services.
//!
//! It uses nothing of the sidecar's library: the demo runs actbridge as the process
//! users run (`actbridge serve`, and `actbridge envoy-routes` for Envoy's outbound
//! routes), next to the embedded token service (`actbridge-sts`) and the real Envoy.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
// `pub` is what other crates (the tests, the benches, the fuzz harness, the devkit) use;
// the rest is `pub(crate)`.
#![warn(unreachable_pub)]

pub mod demo;
pub mod ministack;
mod services;
pub mod sidecar;

pub use demo::{DemoOptions, run};
