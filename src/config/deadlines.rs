//! Every peer actbridge calls while Envoy waits for a decision must time out first.
//!
//! Envoy gives up on an ext_proc message after its `message_timeout` and answers the
//! request itself (504, or 500 with `failure_mode_allow: false`), without
//! `Retry-After` and without actbridge's audit record of why. A peer that hangs must
//! instead hit actbridge's own timeout, early enough for actbridge to refuse with its
//! documented 503 and `Retry-After`: each such timeout must end [`HEADROOM`] before
//! `listen.envoy_message_timeout`.

use std::time::Duration;

use super::{BackendConfig, Config, ConfigError};

/// Room left after a peer's timeout for actbridge to refuse, audit and answer.
pub(super) const HEADROOM: Duration = Duration::from_millis(500);

/// Checks every in-request timeout of `config` against its Envoy's message timeout.
pub(super) fn check(config: &Config) -> Result<(), ConfigError> {
    let limit = config.envoy_message_timeout;
    for (key, timeout) in in_request_timeouts(config) {
        if timeout + HEADROOM > limit {
            return Err(ConfigError::invalid(
                key,
                format_args!(
                    "{} does not end {} ms before Envoy's ext_proc message_timeout (listen.envoy_message_timeout: {}): a hung peer would get Envoy's error instead of actbridge's 503 with Retry-After",
                    humantime::format_duration(timeout),
                    HEADROOM.as_millis(),
                    humantime::format_duration(limit),
                ),
            ));
        }
    }
    Ok(())
}

/// Each timeout of a call made while a request waits, with its key.
fn in_request_timeouts(config: &Config) -> Vec<(String, Duration)> {
    let mut out = Vec::new();
    for (i, issuer) in config.issuers.iter().enumerate() {
        out.push((format!("issuers[{i}].jwks_timeout"), issuer.jwks_timeout));
        if let Some(x) = &issuer.introspection {
            out.push((format!("issuers[{i}].introspection.timeout"), x.timeout));
        }
    }
    if let Some(o) = &config.outbound {
        out.push(("outbound.token_timeout".into(), o.token_timeout));
    }
    if let Some(p) = &config.policy {
        out.push(("policy.eval_timeout".into(), p.eval_timeout));
    }
    for (i, c) in config.credentials.iter().enumerate() {
        let timeout = match &c.backend {
            BackendConfig::AwsSts(a) => a.timeout,
            BackendConfig::GithubApp(g) => g.timeout,
            BackendConfig::Postgres(p) => p.timeout,
            BackendConfig::SshCert(_) | BackendConfig::Filter(_) => continue,
        };
        out.push((
            format!("credentials[{i}].{}.timeout", c.backend.kind()),
            timeout,
        ));
    }
    out
}
