//! `aws_sts`: AWS session credentials whose inline session policy is the grant.
//!
//! The sidecar holds the only base credential. For each (user, agent chain, grant) it
//! calls `AssumeRole` on the configured role with a session policy allowing reads under
//! the granted prefixes only, so AWS itself enforces the intersection on every request
//! made with the session. Sessions are cached until 80 % of their life. In `sign` mode
//! the agent's plain S3 request is signed here (SigV4); `vend` hands the session to the
//! caller.

mod names;
mod s3_request;
mod session_policy;
mod sign;
mod sts;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials as AwsCredentials;
use aws_sdk_sts::primitives::{DateTime, DateTimeFormat};
use http::HeaderName;
use http::header::{AUTHORIZATION, PROXY_AUTHORIZATION};
use sha2::{Digest, Sha256};

use super::{CredentialError, Grantee, HeaderChanges, HttpRequest, Scope, Vended};
use crate::config::AwsStsConfig;
use s3_request::S3Read;

/// A cached session.
struct Session {
    credentials: AwsCredentials,
    expiration: SystemTime,
    session_name: String,
    prefixes: Vec<String>,
    cache_for: Duration,
}

struct CacheFor;

impl<K> moka::Expiry<K, Arc<Session>> for CacheFor {
    fn expire_after_create(&self, _: &K, v: &Arc<Session>, _: Instant) -> Option<Duration> {
        Some(v.cache_for)
    }
}

/// The `aws_sts` backend.
pub struct AwsSts {
    cfg: AwsStsConfig,
    sts: sts::StsClient,
    sessions: moka::future::Cache<[u8; 32], Arc<Session>>,
    /// Hits and misses of `sessions`; a miss is one mint.
    stats: Arc<crate::telemetry::metrics::CacheStats>,
}

impl AwsSts {
    pub(super) async fn new(cfg: &AwsStsConfig) -> AwsSts {
        AwsSts {
            cfg: cfg.clone(),
            sts: sts::StsClient::new(cfg).await,
            stats: crate::telemetry::metrics::CacheStats::shared(),
            sessions: moka::future::Cache::builder()
                .max_capacity(cfg.cache_entries)
                .expire_after(CacheFor)
                .build(),
        }
    }

    pub(super) fn scope(&self, req: &HttpRequest<'_>) -> Result<Scope, CredentialError> {
        let (action, object) =
            match s3_request::parse(req, &self.cfg.bucket, &self.cfg.s3_endpoints)? {
                S3Read::Object(key) => ("read", key),
                S3Read::List(prefix) => ("list", prefix),
            };
        Ok(Scope {
            action,
            resource: object
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            object,
        })
    }

    pub(super) fn vend_scope(&self, action: &str) -> Result<Scope, CredentialError> {
        if action != "read" {
            return Err(CredentialError::BadVendRequest(
                "`action` must be `read` for S3".into(),
            ));
        }
        Ok(Scope {
            action: "read",
            resource: Vec::new(),
            object: String::new(),
        })
    }

    pub(super) async fn sign(
        &self,
        who: &Grantee<'_>,
        req: &HttpRequest<'_>,
        scope: &Scope,
    ) -> Result<HeaderChanges, CredentialError> {
        // The request must lie inside the grant before STS is asked for anything.
        let prefixes =
            session_policy::prefixes(who.grant, &self.cfg.prefixes, &self.cfg.public_prefixes)?;
        let inside = prefixes
            .iter()
            .any(|p| scope.object.starts_with(p.as_str()));
        if !inside {
            return Err(CredentialError::OutsideGrant(format!(
                "`{}` is under no granted prefix",
                scope.object
            )));
        }
        if scope.action == "read" && who.exclude.contains(&scope.object) {
            return Err(CredentialError::OutsideGrant(format!(
                "`{}` is excluded by the policy",
                scope.object
            )));
        }
        let session = self.session(who, prefixes).await?;
        let set = sign::s3_headers(
            &session.credentials,
            &self.cfg.region,
            req.method,
            req.authority,
            req.path,
            SystemTime::now(),
        )?;
        // The agent's own credential and any signing header it sent are removed; the
        // ones set here replace them.
        let mut remove = vec![PROXY_AUTHORIZATION];
        for name in req.header_names {
            if name.starts_with("x-amz-") && !set.iter().any(|(k, _)| k == name) {
                remove.extend(HeaderName::from_bytes(name.as_bytes()).ok());
            }
        }
        debug_assert!(set.iter().any(|(k, _)| k == AUTHORIZATION));
        Ok(HeaderChanges {
            set,
            remove,
            on_rejected: None,
        })
    }

    pub(super) fn forget_cached(&self) {
        self.sessions.invalidate_all();
    }

    pub(super) fn cache_stats(&self) -> &Arc<crate::telemetry::metrics::CacheStats> {
        &self.stats
    }

    pub(super) async fn vend(&self, who: &Grantee<'_>) -> Result<Vended, CredentialError> {
        let prefixes =
            session_policy::prefixes(who.grant, &self.cfg.prefixes, &self.cfg.public_prefixes)?;
        let s = self.session(who, prefixes).await?;
        let expiration = DateTime::from(s.expiration)
            .fmt(DateTimeFormat::DateTime)
            .map_err(|e| CredentialError::InvalidResponse(format!("expiration: {e}")))?;
        Ok(Vended(serde_json::json!({
            "access_key_id": s.credentials.access_key_id(),
            "secret_access_key": s.credentials.secret_access_key(),
            "session_token": s.credentials.session_token(),
            "expiration": expiration,
            "session_name": s.session_name,
            "bucket": self.cfg.bucket,
            "region": self.cfg.region,
            "scoped_prefixes": s.prefixes,
        })))
    }

    /// The session for `who`, from the cache or from STS (concurrent identical requests
    /// share one call). The session policy is built only on a miss: it is a function of
    /// the key's prefixes and exclusions.
    async fn session(
        &self,
        who: &Grantee<'_>,
        prefixes: Vec<String>,
    ) -> Result<Arc<Session>, CredentialError> {
        let key = cache_key(who, &prefixes);
        self.stats
            .get_or_mint(&self.sessions, key, async {
                let policy = session_policy::build(&self.cfg.bucket, &prefixes, who.exclude)?;
                let session_name = names::session_name(who);
                let issued = self
                    .sts
                    .assume_role(sts::AssumeRole {
                        session_name: &session_name,
                        policy: &policy,
                        identity: self
                            .cfg
                            .session_tags
                            .then(|| (names::source_identity(who), names::tags(who))),
                    })
                    .await?;
                let life = issued.life;
                tracing::info!(
                    session_name,
                    role = self.cfg.role_arn,
                    expires_in_s = life.as_secs(),
                    prefixes = prefixes.join(","),
                    "AWS session issued"
                );
                Ok(Arc::new(Session {
                    credentials: AwsCredentials::new(
                        issued.access_key_id,
                        issued.secret_access_key,
                        Some(issued.session_token),
                        Some(issued.expiration),
                        "actbridge-sts",
                    ),
                    expiration: issued.expiration,
                    session_name,
                    prefixes,
                    cache_for: life - life / 5,
                }))
            })
            .await
            .map_err(|e: Arc<CredentialError>| (*e).clone())
    }
}

/// An AWS STS `<Expiration>` read as the backend reads an `AssumeRole` answer, as of
/// `now`: the session's life, or why the answer is unusable.
pub(super) fn parse_expiration(text: &str, now: SystemTime) -> Result<Duration, CredentialError> {
    sts::parse_expiration(text, now)
}

/// SHA-256 over everything that shapes a session: the grantee's identity (issuer,
/// subject, chain), the prefixes and the exclusions (the session policy is a function of
/// the last two), each part length-prefixed so no two lists hash alike.
fn cache_key(who: &Grantee<'_>, prefixes: &[String]) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut part = |tag: u8, s: &str| {
        h.update([tag]);
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    part(0, &hex::encode(who.identity()));
    prefixes.iter().for_each(|p| part(2, p));
    who.exclude.iter().for_each(|x| part(3, x));
    h.finalize().into()
}
