//! Agent protocols carried over HTTP: JSON-RPC 2.0 as MCP (Streamable HTTP transport)
//! and A2A use it. Pure parsing and rewriting, no I/O and no policy: the decision core
//! (`pipeline::rpc`) asks these what a request says and what a response may show.
//!
//! - [`jsonrpc`]: one message or a batch, strictly parsed and bounded; error objects.
//! - [`mcp`]: the tool a `tools/call` names, and a `tools/list` result narrowed to the
//!   tools the caller may call (JSON or `text/event-stream` bodies).
//! - [`a2a`]: the A2A methods recognised on `protocol: a2a` routes.

pub mod a2a;
pub mod jsonrpc;
pub mod mcp;
