//! actbridge: the zero-trust ext_proc sidecar for AI agents.
//!
//! # Layout
//!
//! The workspace: this crate (the sidecar library and the one binary, every subcommand)
//! and three leaf crates it uses, which use nothing of it: `actbridge-sts` (the
//! embedded token service: `actbridge sts`, the demo's and the tests' issuer),
//! `actbridge-inject` (`actbridge inject`) and `actbridge-devkit` (`actbridge demo`, the
//! `envoy/sidecar.yaml` renderer, MiniStack; it runs the sidecar as a process).
//!
//! Dependency direction: `main → serve → extproc → pipeline → {state, jwt, introspect,
//! exchange, policy, credentials, audit}`; `admin → {pipeline, state, audit}`. `config`
//! uses only the readings it validates with (`authority`, `http_path`, `envoy_routes`);
//! `clock` and `text` use nothing. Nothing below `pipeline` knows Envoy.
//!
//! - [`config`]: the one YAML config, typed and validated at start; errors name the key.
//! - [`extproc`]: the tonic `ExternalProcessor` service — the ext_proc stream state
//!   machine, header mutations and immediate responses. Knows Envoy, not JWTs.
//! - [`pipeline`]: the protocol-free decision flow: [`pipeline::RequestFacts`] in,
//!   [`pipeline::Decision`] out. Knows JWTs and token exchange, not Envoy.
//! - [`state`]: the stores the decisions consult — single-use memory, custody, the deny
//!   list, held approvals — reached by the admin API directly.
//! - [`jwt`]: token verification — JWKS fetch, cache and refresh, claim model with
//!   the nested `act` chain, a cache of verified tokens.
//! - [`introspect`]: the live check of a verified token at its issuer (RFC 7662), with
//!   an optional short cache of active answers.
//! - [`exchange`]: the RFC 8693 client (Keycloak dialect), client authentication,
//!   the actor token and the exchanged-token cache with single-flight.
//! - [`policy`]: Rego decisions (regorus in process, or a remote OPA) over the verified
//!   chain and the route.
//! - [`credentials`]: credential backends (AWS STS session credentials, …) for
//!   destinations that do not accept actbridge's JWTs: one seam, one module per backend.
//! - [`agentproto`]: MCP and A2A over JSON-RPC — strict parsing, the tool a call names,
//!   `tools/list` results narrowed; pure, used by the pipeline's agent-protocol routes.
//! - [`spiffe`]: the pod's workload identity (X.509-SVIDs from the SPIFFE Workload API)
//!   and the SDS server that hands it to Envoy.
//! - [`serve`]: running the sidecar — listeners, background tasks, shutdown and drain.
//! - [`admin`]: the admin HTTP listener (`/healthz`, `/readyz`, `/metrics`, and the
//!   admin API: `/revocations`, `/approvals`).
//! - [`audit`]: the tamper-evident audit log (hash chain, signed checkpoints, rotation,
//!   `actbridge audit verify`).
//! - [`telemetry`]: logging set-up, the OTLP trace exporter and W3C trace context
//!   propagation (docs/observability.md).
//! - [`http_path`], [`authority`]: the one reading of a request's path and of an
//!   outbound authority, that every matcher uses; ambiguous spellings are refused.
//! - [`envoy_routes`]: Envoy's outbound routes generated from the route table
//!   (`actbridge envoy-routes`), so Envoy and actbridge agree on every destination.
//! - [`fault`]: the test-only fault switch (feature `fault-injection`).
//! - [`http_client`], [`clock`], [`text`]: the shared outgoing HTTP client, the wall
//!   clock, and text bounded for records.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
// `pub` is what other crates (the tests, the benches, the fuzz harness, the devkit) use;
// the rest is `pub(crate)`.
#![warn(unreachable_pub)]

/// mimalloc: per-thread heaps with cheap cross-thread frees (the audit writer frees what
/// the request path allocated) and faster small allocations than glibc's malloc on the
/// request path (`make bench-observability`, docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod admin;
pub mod agentproto;
pub mod audit;
pub(crate) mod authority;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod envoy_routes;
pub mod exchange;
pub(crate) mod extproc;
pub(crate) mod fault;
pub(crate) mod http_client;
pub(crate) mod http_path;
pub mod introspect;
pub mod jwt;
pub(crate) mod percent;
pub mod pipeline;
pub mod policy;
pub mod serve;
pub mod spiffe;
pub mod state;
pub mod telemetry;
pub(crate) mod text;
