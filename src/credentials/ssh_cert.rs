//! `ssh_cert`: SSH user certificates for the public key an agent sends, with principals
//! derived from the grant.
//!
//! actbridge holds the SSH user CA key. A vending request carries the agent's public key;
//! actbridge signs a user certificate for it whose principals are the ones the grant maps
//! to, valid for minutes, with key id `<user>-via-<agent>+<identity digest>` (see
//! `Grantee::credential_name`) and no forwarding extensions
//! unless configured, and, where `source_addresses` is set, the `source-address` critical
//! option. Servers that trust the CA (`TrustedUserCAKeys`) and list allowed
//! principals per account (`AuthorizedPrincipalsFile`) enforce the intersection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ssh_key::certificate::{Builder, CertType};
use ssh_key::{HashAlg, PublicKey};

use super::{CredentialError, Grantee, Scope, VendAsk, Vended};
use crate::clock::now_secs;
use crate::config::SshCertConfig;

/// `valid_after` is set this far in the past, against clock skew between hosts.
const BACKDATE_SECS: u64 = 30;

struct Issued {
    certificate: String,
    principals: Vec<String>,
    key_id: String,
    serial: u64,
    valid_after: u64,
    valid_before: u64,
    cache_for: Duration,
}

struct CacheFor;

impl<K> moka::Expiry<K, Arc<Issued>> for CacheFor {
    fn expire_after_create(&self, _: &K, v: &Arc<Issued>, _: Instant) -> Option<Duration> {
        Some(v.cache_for)
    }
}

/// What a certificate is cached by: the public key's fingerprint, the grantee's
/// identity (issuer, subject, chain) and the principals.
type CertKey = (String, [u8; 32], Vec<String>);

/// The `ssh_cert` backend.
pub struct SshCert {
    cfg: SshCertConfig,
    issued: moka::future::Cache<CertKey, Arc<Issued>>,
    /// Hits and misses of `issued`; a miss is one mint.
    stats: Arc<crate::telemetry::metrics::CacheStats>,
}

impl SshCert {
    pub(super) fn new(cfg: &SshCertConfig) -> SshCert {
        SshCert {
            cfg: cfg.clone(),
            stats: crate::telemetry::metrics::CacheStats::shared(),
            issued: moka::future::Cache::builder()
                .max_capacity(cfg.cache_entries)
                .expire_after(CacheFor)
                .build(),
        }
    }

    /// A vending request must be `action: login` with an Ed25519 `public_key` in OpenSSH
    /// form; the policy sees `action: login` and no resource.
    pub(super) fn vend_scope(&self, ask: &VendAsk<'_>) -> Result<Scope, CredentialError> {
        if ask.action != "login" {
            return Err(CredentialError::BadVendRequest(
                "`action` must be `login` for SSH".into(),
            ));
        }
        let key = parse_public_key(ask.public_key)?;
        Ok(Scope {
            action: "login",
            resource: Vec::new(),
            object: key.fingerprint(HashAlg::Sha256).to_string(),
        })
    }

    pub(super) fn forget_cached(&self) {
        self.issued.invalidate_all();
    }

    pub(super) fn cache_stats(&self) -> &Arc<crate::telemetry::metrics::CacheStats> {
        &self.stats
    }

    pub(super) async fn vend(
        &self,
        who: &Grantee<'_>,
        ask: &VendAsk<'_>,
    ) -> Result<Vended, CredentialError> {
        let key = parse_public_key(ask.public_key)?;
        let principals = super::mapped(who.grant, &self.cfg.principals)?;
        let cache_key = (
            key.fingerprint(HashAlg::Sha256).to_string(),
            who.identity(),
            principals.clone(),
        );
        let issued = self
            .stats
            .get_or_mint(&self.issued, cache_key, async {
                self.sign(who, &key, principals)
            })
            .await
            .map_err(|e: Arc<CredentialError>| (*e).clone())?;
        Ok(Vended(serde_json::json!({
            "certificate": issued.certificate,
            "principals": issued.principals,
            "key_id": issued.key_id,
            "serial": issued.serial,
            "valid_after": rfc3339(issued.valid_after)?,
            "valid_before": rfc3339(issued.valid_before)?,
        })))
    }

    fn sign(
        &self,
        who: &Grantee<'_>,
        key: &PublicKey,
        principals: Vec<String>,
    ) -> Result<Arc<Issued>, CredentialError> {
        let now = now_secs();
        let valid_after = now.saturating_sub(BACKDATE_SECS);
        let valid_before = now.saturating_add(self.cfg.validity.as_secs());
        let key_id = who.credential_name();
        let serial: u64 = rand::random();
        let nonce: [u8; 16] = rand::random();
        let cert = (|| {
            let mut b = Builder::new(
                nonce.to_vec(),
                key.key_data().clone(),
                valid_after,
                valid_before,
            )?;
            b.serial(serial)?
                .cert_type(CertType::User)?
                .key_id(&key_id)?;
            for p in &principals {
                b.valid_principal(p)?;
            }
            for e in &self.cfg.extensions {
                b.extension(e, "")?;
            }
            if !self.cfg.source_addresses.is_empty() {
                let list: Vec<String> = self
                    .cfg
                    .source_addresses
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                b.critical_option("source-address", list.join(","))?;
            }
            b.sign(&self.cfg.ca_key)?.to_openssh()
        })()
        .map_err(|e| {
            CredentialError::InvalidResponse(format!("certificate signing failed: {e}"))
        })?;
        tracing::info!(
            key_id,
            serial,
            principals = principals.join(","),
            valid_before,
            "SSH certificate issued"
        );
        Ok(Arc::new(Issued {
            certificate: cert,
            principals,
            key_id,
            serial,
            valid_after,
            valid_before,
            cache_for: self.cfg.validity - self.cfg.validity / 5,
        }))
    }
}

/// The agent's public key: one OpenSSH line, Ed25519 only.
fn parse_public_key(text: Option<&str>) -> Result<PublicKey, CredentialError> {
    let text = text.ok_or_else(|| {
        CredentialError::BadVendRequest("`public_key` (OpenSSH format) is required".into())
    })?;
    let key = PublicKey::from_openssh(text.trim()).map_err(|_| {
        CredentialError::BadVendRequest("`public_key` is not an OpenSSH public key".into())
    })?;
    if key.algorithm() != ssh_key::Algorithm::Ed25519 {
        return Err(CredentialError::BadVendRequest(
            "`public_key` must be an Ed25519 key".into(),
        ));
    }
    Ok(key)
}

fn rfc3339(secs: u64) -> Result<String, CredentialError> {
    crate::clock::rfc3339(secs)
        .ok_or_else(|| CredentialError::InvalidResponse(format!("time {secs} out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_beyond_the_calendar_is_an_error_not_a_panic() {
        assert_eq!(rfc3339(1_764_000_000).unwrap(), "2025-11-24T16:00:00Z");
        for secs in [253_402_300_800, i64::MAX as u64, u64::MAX] {
            assert!(rfc3339(secs).is_err(), "{secs}");
        }
    }
}
