//! `tokens`: bounds on the tokens presented — size, `act` depth — and the sizes of the
//! verified-token cache and the single-use memory.

use serde::Deserialize;

use super::ConfigError;
use super::raw::RawConfig;

/// `tokens`: limits on presented tokens.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTokens {
    /// Largest bearer token accepted, in bytes. Default `8192`.
    #[serde(default)]
    pub max_bytes: Option<usize>,
    /// How many verified tokens are remembered (keyed by a SHA-256 of the token, never
    /// past `exp`), so a repeated token costs a lookup, not a signature check.
    /// Default `10000`; `0` disables the cache.
    #[serde(default)]
    pub verified_cache_entries: Option<u64>,
    /// Longest `act` chain accepted in a token. Default `10`.
    #[serde(default)]
    pub max_actor_chain: Option<usize>,
    /// How many single-use tokens (`inbound.single_use_paths`, routes with `single_use`)
    /// are remembered by `(iss, jti)` until `exp` + 5 min. When full of live entries, new
    /// single-use tokens are refused (503) rather than an old one forgotten. Default
    /// `100000`.
    #[serde(default)]
    pub replay_cache_entries: Option<usize>,
}

/// `tokens`: the bounds on what a token may be.
pub(super) struct Tokens {
    pub max_bytes: usize,
    pub max_actor_chain: usize,
    pub replay_cache_entries: usize,
}

pub(super) fn validate_tokens(raw: &RawConfig) -> Result<Tokens, ConfigError> {
    let max_token_bytes = raw.tokens.max_bytes.unwrap_or(8192);
    if !(256..=1 << 20).contains(&max_token_bytes) {
        return Err(ConfigError::invalid(
            "tokens.max_bytes",
            "must be between 256 and 1048576",
        ));
    }
    let max_actor_chain = raw.tokens.max_actor_chain.unwrap_or(10);
    if !(1..=64).contains(&max_actor_chain) {
        return Err(ConfigError::invalid(
            "tokens.max_actor_chain",
            "must be between 1 and 64",
        ));
    }
    let replay_cache_entries = raw.tokens.replay_cache_entries.unwrap_or(100_000);
    if replay_cache_entries == 0 {
        return Err(ConfigError::invalid(
            "tokens.replay_cache_entries",
            "must be at least 1",
        ));
    }
    Ok(Tokens {
        max_bytes: max_token_bytes,
        max_actor_chain,
        replay_cache_entries,
    })
}
