//! SigV4 over the agent's request with the session credentials (`aws-sigv4`), S3
//! flavour: the path is signed as sent (single encoding, no normalisation, as S3
//! expects), the payload is `UNSIGNED-PAYLOAD` (actbridge never sees the body), and
//! only `host` is signed besides the `x-amz-*` headers the signer adds.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderName, HeaderValue};

use super::CredentialError;

/// The headers that carry the signature: `authorization`, `x-amz-date`,
/// `x-amz-security-token`, `x-amz-content-sha256`.
pub(super) fn s3_headers(
    creds: &Credentials,
    region: &str,
    method: &str,
    authority: &str,
    path: &str,
    now: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>, CredentialError> {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| signing(&e))?
        .into();
    let url = format!("http://{authority}{path}");
    let signable = SignableRequest::new(
        method,
        &url,
        std::iter::once(("host", authority)),
        SignableBody::UnsignedPayload,
    )
    .map_err(|e| signing(&e))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| signing(&e))?
        .into_parts();
    instructions
        .headers()
        .map(|(name, value)| {
            Ok((
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| signing(&e))?,
                HeaderValue::from_str(value).map_err(|e| signing(&e))?,
            ))
        })
        .collect()
}

fn signing(e: &dyn std::fmt::Display) -> CredentialError {
    CredentialError::InvalidResponse(format!("SigV4 signing failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signature of a fixed request at a fixed time is stable and covers what S3
    /// checks: the scope (date, region, service), the signed headers and the token.
    #[test]
    fn signs_for_s3_with_the_session_token() {
        let creds = Credentials::new("ASIAEXAMPLE", "secret", Some("token".into()), None, "test");
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_764_000_000);
        let sign_it = || {
            s3_headers(
                &creds,
                "us-east-1",
                "GET",
                "s3.us-east-1.amazonaws.com",
                "/docs/finance/a%20b.md",
                at,
            )
            .unwrap()
        };
        let headers = sign_it();
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.to_str().unwrap().to_string())
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        let auth = get("authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20251124/us-east-1/s3/aws4_request"
            ),
            "{auth}"
        );
        assert!(
            auth.contains(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token"
            ),
            "{auth}"
        );
        assert_eq!(get("x-amz-security-token"), "token");
        assert_eq!(get("x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
        assert_eq!(get("x-amz-date"), "20251124T160000Z");
        assert_eq!(headers, sign_it());
    }
}
