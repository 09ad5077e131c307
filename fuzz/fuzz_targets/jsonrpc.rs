//! Fuzz target `jsonrpc`: see `harness::jsonrpc`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::jsonrpc(data));
