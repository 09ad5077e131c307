//! The Envoy-facing layer: the tonic `ExternalProcessor` service (ext_proc v3).
//!
//! It turns each ext_proc stream into [`RequestFacts`](crate::pipeline::RequestFacts),
//! asks the [`Pipeline`](crate::pipeline::Pipeline), and renders the
//! [`Decision`](crate::pipeline::Decision) as a header mutation or an immediate
//! response. It knows nothing of JWTs.

mod fail_closed;
mod headers;
mod response;
mod server;
mod stream;

pub(crate) use server::ExtProcService;

#[cfg(test)]
mod tests;
