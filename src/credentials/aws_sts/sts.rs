//! `AssumeRole` through the official SDK: base credentials from the standard AWS chain
//! (environment, shared profile, web-identity token file — so a SPIFFE JWT-SVID written
//! to `AWS_WEB_IDENTITY_TOKEN_FILE` can be the web identity — container and instance
//! metadata), one bounded operation timeout, SDK errors sorted into unavailable (503)
//! and refused (502). The request carries the calling span's `traceparent`.

use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::primitives::{DateTime, DateTimeFormat};
use aws_sdk_sts::types::Tag;

use super::CredentialError;
use crate::config::AwsStsConfig;

/// What one `AssumeRole` asks for.
pub(super) struct AssumeRole<'a> {
    pub session_name: &'a str,
    pub policy: &'a str,
    /// `SourceIdentity` and session tags, when the config sends them.
    pub identity: Option<(String, Vec<(String, String)>)>,
}

/// Longest session accepted from STS: 12 hours (AssumeRole's own maximum, and the
/// longest `duration` the config allows) plus 5 minutes for a clock that differs from
/// AWS's (SigV4's own tolerance). An `Expiration` beyond it, or not after now, is a
/// garbage answer: such a session is never cached nor handed out.
const MAX_SESSION_LIFE: Duration = Duration::from_secs(12 * 3600 + 300);

/// Session credentials as STS issued them.
pub(super) struct Issued {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: SystemTime,
    /// From now until `expiration`: within 0..=`MAX_SESSION_LIFE`, never zero.
    pub life: Duration,
}

/// The STS client.
pub(super) struct StsClient {
    client: aws_sdk_sts::Client,
    role_arn: String,
    duration: Duration,
}

impl StsClient {
    pub(super) async fn new(cfg: &AwsStsConfig) -> StsClient {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(cfg.timeout)
                    .connect_timeout(cfg.timeout.min(Duration::from_secs(1)))
                    .build(),
            )
            // One retry for a transient failure, within the operation timeout.
            .retry_config(RetryConfig::standard().with_max_attempts(2));
        if let Some(url) = &cfg.sts_endpoint {
            loader = loader.endpoint_url(url.as_str().trim_end_matches('/'));
        }
        let sdk = loader.load().await;
        StsClient {
            client: aws_sdk_sts::Client::new(&sdk),
            role_arn: cfg.role_arn.clone(),
            duration: cfg.duration,
        }
    }

    pub(super) async fn assume_role(&self, req: AssumeRole<'_>) -> Result<Issued, CredentialError> {
        let mut call = self
            .client
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(req.session_name)
            .policy(req.policy)
            .duration_seconds(i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX));
        if let Some((source_identity, tags)) = req.identity {
            call = call.source_identity(source_identity);
            for (key, value) in tags {
                let tag =
                    Tag::builder().key(key).value(value).build().map_err(|e| {
                        CredentialError::InvalidResponse(format!("session tag: {e}"))
                    })?;
                call = call.tags(tag);
            }
        }
        // The trace context of the calling span (the `credential` stage), on every attempt.
        let trace = crate::telemetry::propagation::outgoing();
        let call = call.customize().mutate_request(move |req| {
            for (name, value) in &trace {
                let _ = req.headers_mut().try_insert(*name, value.clone());
            }
        });
        let out = crate::telemetry::metrics::timed("aws_sts", call.send())
            .await
            .map_err(classify)?;
        let c = out.credentials().ok_or_else(|| {
            CredentialError::InvalidResponse("AssumeRole answered without credentials".into())
        })?;
        let (expiration, life) = session_life(*c.expiration(), SystemTime::now())?;
        Ok(Issued {
            access_key_id: c.access_key_id().to_string(),
            secret_access_key: c.secret_access_key().to_string(),
            session_token: c.session_token().to_string(),
            expiration,
            life,
        })
    }
}

/// The session's `Expiration` as a time and its life as of `now`: after `now` and at
/// most `MAX_SESSION_LIFE` ahead, or the answer is refused as unusable.
pub(super) fn session_life(
    expiration: DateTime,
    now: SystemTime,
) -> Result<(SystemTime, Duration), CredentialError> {
    let out_of_range = || {
        CredentialError::InvalidResponse(format!(
            "STS Expiration {expiration} is not within {} s from now",
            MAX_SESSION_LIFE.as_secs()
        ))
    };
    let at = SystemTime::try_from(expiration).map_err(|_| out_of_range())?;
    let life = at.duration_since(now).map_err(|_| out_of_range())?;
    if life.is_zero() || life > MAX_SESSION_LIFE {
        return Err(out_of_range());
    }
    Ok((at, life))
}

/// An `<Expiration>` as the SDK reads it from an `AssumeRole` answer (RFC 3339 with an
/// optional offset: `aws-sdk-sts`'s `shape_credentials`), then [`session_life`].
pub(super) fn parse_expiration(text: &str, now: SystemTime) -> Result<Duration, CredentialError> {
    let expiration = DateTime::from_str(text, DateTimeFormat::DateTimeWithOffset)
        .map_err(|_| CredentialError::InvalidResponse("STS Expiration is not a time".into()))?;
    session_life(expiration, now).map(|(_, life)| life)
}

/// Unreachable, timed out or without base credentials → unavailable; STS's own refusal →
/// refused, by its error code (the message may echo request details: logged, never
/// sent to the caller).
fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> CredentialError {
    match &e {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("Unknown").to_string();
            tracing::warn!(
                code,
                message = s.err().message().unwrap_or(""),
                "STS refused AssumeRole"
            );
            if code == "PackedPolicyTooLarge" {
                CredentialError::PolicyTooLarge("STS: PackedPolicyTooLarge".into())
            } else {
                CredentialError::Refused { code }
            }
        }
        SdkError::TimeoutError(_) => CredentialError::Unavailable("STS timed out".into()),
        SdkError::DispatchFailure(_) => {
            CredentialError::Unavailable(format!("STS unreachable: {}", error_chain(&e)))
        }
        SdkError::ResponseError(_) => {
            CredentialError::InvalidResponse("STS answer could not be parsed".into())
        }
        _ => CredentialError::Unavailable(format!("STS call failed: {}", error_chain(&e))),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        parts.push(c.to_string());
        cur = c.source();
    }
    parts.join(": ").chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW as u64)
    }

    fn life(secs: i64) -> Result<Duration, CredentialError> {
        session_life(DateTime::from_secs(secs), now()).map(|(_, life)| life)
    }

    #[test]
    fn an_expiration_outside_now_to_12_hours_is_an_unusable_answer() {
        assert_eq!(life(NOW + 900), Ok(Duration::from_secs(900)));
        assert_eq!(life(NOW + 12 * 3600), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(life(NOW + 12 * 3600 + 300), Ok(MAX_SESSION_LIFE));
        for bad in [
            NOW + 12 * 3600 + 301,
            NOW + 400 * 24 * 3600,
            253_402_300_799, // 9999-12-31T23:59:59Z
            i64::MAX,
            NOW,
            NOW - 1,
            0,
            -62_135_596_800, // 0001-01-01
            i64::MIN,
        ] {
            assert!(
                matches!(life(bad), Err(CredentialError::InvalidResponse(_))),
                "{bad}: {:?}",
                life(bad)
            );
        }
    }

    #[test]
    fn expiration_text_is_read_as_the_sdk_reads_it_then_bounded() {
        let read = |text: &str| parse_expiration(text, now());
        // 1_764_000_000 is 2025-11-24T16:00:00Z.
        assert_eq!(read("2025-11-24T17:00:00Z"), Ok(Duration::from_secs(3600)));
        assert_eq!(
            read("2025-11-24T18:00:00+01:00"),
            Ok(Duration::from_secs(3600))
        );
        for bad in [
            "9999-12-31T23:59:59Z",
            "99999-01-01T00:00:00Z",
            "2025-11-24T15:00:00Z",
            "1764003600",
            "",
            "tomorrow",
            "2025-13-45T99:99:99Z",
        ] {
            assert!(
                matches!(read(bad), Err(CredentialError::InvalidResponse(_))),
                "{bad}: {:?}",
                read(bad)
            );
        }
    }
}
