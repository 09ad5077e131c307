//! `actbridge demo`: the whole picture on one machine. The embedded token service, an
//! agent app and a document service (small servers of the project's own), actbridge and
//! the real Envoy; alice's request walks alice → summarizer-tech → document service, and
//! what each hop saw is printed, followed by refused cases.

pub mod ministack;
mod run;
mod services;
pub mod sidecar;

pub use run::{DemoOptions, run};
