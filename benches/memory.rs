//! What one entry of each in-process store costs in memory, measured the way the kernel
//! counts it: the process' resident set (`/proc/self/statm`, through `procfs`) before
//! and after filling a store with N entries, with actbridge's allocator (mimalloc, the
//! library's global allocator). The
//! figures behind the sizing guide (docs/sizing.md):
//!
//! - the single-use memory (`ReplayGuard`): one entry per single-use token seen;
//! - token custody (`Custody`): one entry per token held back from the app, keyed twice
//!   (by placeholder and by token), holding the token (~1 KiB here, as a Keycloak access
//!   token) and the caller's verified claims;
//! - the verified claims themselves (`VerifiedToken`, shared by the verified-token cache
//!   and custody), measured as a `Vec` of N.
//!
//! `cargo bench --bench memory [-- ENTRIES]` (default 100000; 1000 when `cargo test`
//! runs it). Prints one line per store: bytes per entry, and MiB for the N entries.

use std::sync::Arc;

use actbridge::clock::Clock;
use actbridge::jwt::VerifiedToken;
use actbridge::state::{Custody, ReplayGuard};

/// The resident set now, in bytes.
fn rss() -> u64 {
    let me = procfs::process::Process::myself().expect("/proc/self");
    me.statm().expect("statm").resident * procfs::page_size()
}

/// Claims shaped like a delegated Keycloak token's: user, one agent, a few groups and
/// roles, with `jti` and `sub` made distinct by `i`.
fn claims(i: usize) -> VerifiedToken {
    serde_json::from_value(serde_json::json!({
        "issuer": "https://keycloak.example.com/realms/demo",
        "subject": format!("7f3e2a1c-0000-4000-8000-{i:012}"),
        "username": format!("user{i}"),
        "audiences": ["spiffe://demo.example.com/agent/summarizer-tech"],
        "authorized_party": "spiffe://demo.example.com/agent/reviewer-general",
        "scopes": ["openid", "documents.read"],
        "groups": ["engineering", "finance"],
        "roles": ["default-roles-demo", "offline_access"],
        "expires_at": 4_000_000_000u64,
        "issued_at": 1_800_000_000u64,
        "token_id": format!("jti-{i:020}"),
        "actors": [{"client_id": "spiffe://demo.example.com/agent/reviewer-general", "sub": "3c0f9a2e-0000-4000-8000-000000000002"}],
        "actors_nest": false,
        "fingerprint": format!("{i:016x}"),
    }))
    .expect("claims")
}

/// Bytes per entry, printed, for `fill` adding `n` entries.
fn measure(what: &str, n: usize, fill: impl FnOnce()) {
    let before = rss();
    fill();
    let after = rss();
    let grown = after.saturating_sub(before);
    println!(
        "{what}: {} bytes per entry ({:.1} MiB for {n})",
        grown / n as u64,
        grown as f64 / (1 << 20) as f64
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this as a smoke
    // test, with few entries.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benching = args.iter().any(|a| a == "--bench");
    let n: usize = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benching { 100_000 } else { 1_000 });
    let tokens: Vec<Arc<VerifiedToken>> = (0..n).map(|i| Arc::new(claims(i))).collect();
    // What was built above is counted here, approximately: claims are measured alone.
    measure("verified claims (VerifiedToken)", n, || {
        let more: Vec<Arc<VerifiedToken>> = (0..n).map(|i| Arc::new(claims(n + i))).collect();
        std::hint::black_box(&more);
        std::mem::forget(more);
    });
    let replay = ReplayGuard::new(n * 2, Clock::default());
    measure("single use (ReplayGuard)", n, || {
        for t in &tokens {
            replay.first_use(t).expect("first use");
        }
    });
    let custody = Custody::new(n as u64 * 2, Clock::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // A 1 KiB token, as a Keycloak access token with one `act` level is.
    let body = "x".repeat(1000);
    measure("custody (Custody, 1 KiB tokens)", n, || {
        rt.block_on(async {
            for (i, t) in tokens.iter().enumerate() {
                let token = format!("{body}{i:024}");
                custody
                    .placeholder_for(&token, 4_000_000_000, t)
                    .await
                    .expect("placeholder");
            }
        });
    });
    std::hint::black_box((&replay, &custody, &tokens));
}
