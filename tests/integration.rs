//! Integration tests through the real Envoy: one binary, the harness in `support/`,
//! the cases in `cases/`.

mod cases;
mod support;
