//! `bench-tools`: the bench-only programs `bench/run` starts next to the real Envoy,
//! the token service and actbridge (see docs/performance.md).
//!
//! - `upstream`: the fast HTTP/1.1 responder behind every Envoy (the floor), which also
//!   serves a JWKS file for the cache-fill issuer.
//! - `noop-extproc`: an ext_proc server that answers CONTINUE and nothing else (case B):
//!   the cost of the ext_proc hop itself.
//! - `keygen`, `mint`: signing keys, and pools of distinct tokens copied from a real one
//!   (a fresh `jti`, `iat`, `exp`), for the cold and cache-fill cases.
//! - `envoy-config`: the shipped `envoy/sidecar.yaml` rendered for local ports, with the
//!   inbound filter kept (actbridge, no-op), removed (plain Envoy) or replaced by Envoy's
//!   own `jwt_authn`.
//! - `load`: an open-loop load generator sending a different bearer token per request
//!   (oha sends one fixed header set), for the cases that need one.

mod envoy_config;
mod load;
mod noop;
mod tokens;
mod upstream;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bench-tools", about = "Bench-only programs for `make bench`")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A fast HTTP/1.1 responder: 200 `ok` to everything, the JWKS file at `/jwks.json`.
    Upstream(upstream::Args),
    /// An ext_proc server that answers CONTINUE to every phase and does nothing else.
    NoopExtproc(noop::Args),
    /// Writes a fresh signing key (PKCS#8 PEM), and for Ed25519 its JWKS.
    Keygen(tokens::KeygenArgs),
    /// Writes N distinct tokens, one per line, copied from a template token.
    Mint(tokens::MintArgs),
    /// Renders `envoy/sidecar.yaml` for one bench case.
    EnvoyConfig(envoy_config::Args),
    /// Open-loop (fixed rate) or closed-loop (max throughput) load, one token per request.
    Load(load::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Upstream(a) => upstream::run(a),
        Command::NoopExtproc(a) => noop::run(a),
        Command::Keygen(a) => tokens::keygen(a),
        Command::Mint(a) => tokens::mint(a),
        Command::EnvoyConfig(a) => envoy_config::run(a),
        Command::Load(a) => load::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-tools: {e:#}");
            ExitCode::FAILURE
        }
    }
}
