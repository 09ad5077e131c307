//! Validation of `credentials[].ssh_cert` (the raw type is in [`super::credentials`]).

use std::time::Duration;

use super::ConfigError;
use super::credentials::{RawSshCert, SshCertConfig};
use super::sources::Sources;

/// Extensions a certificate may carry (OpenSSH PROTOCOL.certkeys).
const KNOWN_EXTENSIONS: [&str; 5] = [
    "permit-pty",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-X11-forwarding",
    "permit-user-rc",
];

pub(super) fn validate(
    key: &str,
    s: &RawSshCert,
    env: &Sources<'_>,
) -> Result<SshCertConfig, ConfigError> {
    let k = format!("{key}.ca_key_file");
    let ca_key = match env.secret_file(&k, &s.ca_key_file)? {
        Some(text) => ssh_key::PrivateKey::from_openssh(text).map_err(|e| {
            ConfigError::invalid(&k, format_args!("not an OpenSSH private key: {e}"))
        })?,
        // Offline: a key made for the check, never used.
        None => {
            ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
                .map_err(|e| ConfigError::invalid(&k, e))?
        }
    };
    if ca_key.is_encrypted() || ca_key.algorithm() != ssh_key::Algorithm::Ed25519 {
        return Err(ConfigError::invalid(
            &k,
            "the CA key must be an unencrypted Ed25519 key",
        ));
    }
    if s.principals.is_empty() {
        return Err(ConfigError::invalid(
            format!("{key}.principals"),
            "map at least one grant entry to principals",
        ));
    }
    for (entry, list) in &s.principals {
        for (i, p) in list.iter().enumerate() {
            let ok = !p.is_empty()
                && p.len() <= 64
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
            if !ok {
                return Err(ConfigError::invalid(
                    format!("{key}.principals.{entry}[{i}]"),
                    "a principal is 1–64 letters, digits, `.`, `_`, `-` or `@`",
                ));
            }
        }
    }
    let validity = s.validity.unwrap_or(Duration::from_secs(300));
    if validity < Duration::from_secs(1) || validity > Duration::from_secs(24 * 3600) {
        return Err(ConfigError::invalid(
            format!("{key}.validity"),
            "must be between 1s and 24h",
        ));
    }
    let extensions = s
        .extensions
        .clone()
        .unwrap_or_else(|| vec!["permit-pty".to_string()]);
    for (i, e) in extensions.iter().enumerate() {
        if !KNOWN_EXTENSIONS.contains(&e.as_str()) {
            return Err(ConfigError::invalid(
                format!("{key}.extensions[{i}]"),
                format_args!("`{e}`: expected one of {}", KNOWN_EXTENSIONS.join(", ")),
            ));
        }
    }
    let source_addresses = s
        .source_addresses
        .iter()
        .enumerate()
        .map(|(i, a)| {
            a.parse::<ipnet::IpNet>()
                .or_else(|_| a.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError::invalid(
                        format!("{key}.source_addresses[{i}]"),
                        format_args!("`{a}` is not an IP address or CIDR block"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cache_entries = s.cache_entries.unwrap_or(10_000);
    if cache_entries == 0 {
        return Err(ConfigError::invalid(
            format!("{key}.cache_entries"),
            "must be at least 1",
        ));
    }
    Ok(SshCertConfig {
        ca_key,
        principals: s.principals.clone(),
        validity,
        extensions,
        source_addresses,
        cache_entries,
    })
}
