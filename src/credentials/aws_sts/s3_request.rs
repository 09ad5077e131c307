//! Reading an S3 request: which bucket, and which object it reads or which prefix it
//! lists. Only reads are recognised (GetObject, HeadObject, ListObjects v1/v2); every
//! other operation, a sub-resource query (`?acl`, `?tagging`, …) or a presigned URL is
//! refused, so nothing is signed that the grant was not judged for.

use super::CredentialError;
use crate::credentials::HttpRequest;

/// A recognised S3 read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum S3Read {
    /// GetObject / HeadObject of this key (percent-decoded).
    Object(String),
    /// ListObjects (v1 or v2) under this prefix (percent-decoded; may be empty).
    List(String),
}

/// Query parameters an object read may carry.
const OBJECT_PARAMS: [&str; 2] = ["versionId", "partNumber"];
/// Query parameters a list may carry.
const LIST_PARAMS: [&str; 9] = [
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "continuation-token",
    "start-after",
    "fetch-owner",
    "encoding-type",
    "marker",
];

/// Parses `req` as a read on `bucket`, addressed path-style (`ENDPOINT/BUCKET/KEY`) or
/// virtual-hosted (`BUCKET.ENDPOINT/KEY`) for one of `endpoints`. S3 takes the bucket
/// from the host whenever the host names one, so the host decides the style: a host
/// that is neither an endpoint nor the bucket's virtual host is refused (signing
/// `/BUCKET/KEY` for `other-bucket.ENDPOINT` would write into `other-bucket`).
pub(super) fn parse(
    req: &HttpRequest<'_>,
    bucket: &str,
    endpoints: &[String],
) -> Result<S3Read, CredentialError> {
    if !matches!(req.method, "GET" | "HEAD") {
        return Err(unsupported(format!(
            "method {} (only reads are signed)",
            req.method
        )));
    }
    let (raw_path, query) = req.path.split_once('?').unwrap_or((req.path, ""));
    let authority = crate::authority::Authority::parse(req.authority)
        .map_err(|_| unsupported("a malformed host".into()))?;
    let host = authority.host.as_str();
    let vhost = match host.strip_prefix(bucket).and_then(|r| r.strip_prefix('.')) {
        Some(endpoint) if endpoints.iter().any(|e| e == endpoint) => true,
        _ if endpoints.iter().any(|e| e == host) => false,
        _ => {
            return Err(unsupported(
                "a host that is neither an S3 endpoint nor the bucket's virtual host".into(),
            ));
        }
    };
    let raw_key = if vhost {
        raw_path.strip_prefix('/').unwrap_or(raw_path)
    } else {
        let rest = raw_path.strip_prefix('/').unwrap_or(raw_path);
        let (first, key) = rest.split_once('/').unwrap_or((rest, ""));
        if first != bucket {
            return Err(unsupported("another bucket".into()));
        }
        key
    };
    let key = decode(raw_key)?;
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    if params
        .iter()
        .any(|(k, _)| k.to_ascii_lowercase().starts_with("x-amz-"))
    {
        return Err(unsupported("a presigned URL".into()));
    }
    if key.is_empty() {
        if req.method != "GET" {
            return Err(unsupported("HEAD on the bucket".into()));
        }
        only(&params, &LIST_PARAMS)?;
        let prefix = params
            .iter()
            .find(|(k, _)| k == "prefix")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        check_segments(&prefix)?;
        return Ok(S3Read::List(prefix));
    }
    only(&params, &OBJECT_PARAMS)?;
    check_segments(&key)?;
    Ok(S3Read::Object(key))
}

/// Refuses any parameter outside `allowed` (`response-*` overrides are allowed on
/// object reads: they only change response headers).
fn only(params: &[(String, String)], allowed: &[&str]) -> Result<(), CredentialError> {
    let object_read = allowed == OBJECT_PARAMS;
    let accepted = |k: &str| allowed.contains(&k) || (object_read && k.starts_with("response-"));
    match params.iter().find(|(k, _)| !accepted(k)) {
        Some((k, _)) => Err(unsupported(format!("query parameter `{k}`"))),
        None => Ok(()),
    }
}

/// S3 keys are percent-decoded paths (`crate::percent`, strict: a malformed escape is
/// refused, not passed through); a key must be valid UTF-8 without control characters.
fn decode(raw: &str) -> Result<String, CredentialError> {
    let decoded = crate::percent::decode(raw).map_err(|e| match e {
        crate::percent::PercentError::BadEscape => unsupported("a malformed `%` escape".into()),
        crate::percent::PercentError::NotUtf8 => unsupported("a key that is not UTF-8".into()),
    })?;
    if decoded.chars().any(char::is_control) {
        return Err(unsupported("a key with control characters".into()));
    }
    Ok(decoded)
}

/// `.`, `..` and empty segments are refused: S3 takes them literally, but other
/// layers may not, and a prefix check must mean the same thing to everyone.
fn check_segments(key: &str) -> Result<(), CredentialError> {
    let body = key.strip_suffix('/').unwrap_or(key);
    if key.starts_with('/')
        || (!body.is_empty()
            && body
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == ".."))
    {
        return Err(unsupported("a key with empty, `.` or `..` segments".into()));
    }
    Ok(())
}

fn unsupported(what: String) -> CredentialError {
    CredentialError::Unsupported(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(method: &str, authority: &str, path: &str) -> Result<S3Read, CredentialError> {
        parse(
            &HttpRequest::bare(method, authority, path),
            "docs",
            &[
                "s3.us-east-1.amazonaws.com".into(),
                "s3.amazonaws.com".into(),
            ],
        )
    }

    #[test]
    fn path_style_and_virtual_hosted_objects() {
        let want = Ok(S3Read::Object("finance/q4 report.md".into()));
        assert_eq!(
            read(
                "GET",
                "s3.us-east-1.amazonaws.com",
                "/docs/finance/q4%20report.md"
            ),
            want
        );
        assert_eq!(
            read(
                "HEAD",
                "docs.s3.us-east-1.amazonaws.com:443",
                "/finance/q4%20report.md"
            ),
            want
        );
        assert_eq!(
            read(
                "GET",
                "s3.amazonaws.com",
                "/docs/a.md?versionId=3&response-content-type=text%2Fplain"
            ),
            Ok(S3Read::Object("a.md".into()))
        );
    }

    #[test]
    fn lists_with_their_prefix() {
        assert_eq!(
            read(
                "GET",
                "s3.amazonaws.com",
                "/docs?list-type=2&prefix=engineering%2F"
            ),
            Ok(S3Read::List("engineering/".into()))
        );
        assert_eq!(
            read("GET", "docs.s3.amazonaws.com", "/?list-type=2"),
            Ok(S3Read::List(String::new()))
        );
    }

    #[test]
    fn refuses_what_it_cannot_scope() {
        for (method, authority, path) in [
            ("PUT", "s3.amazonaws.com", "/docs/finance/x"),
            ("DELETE", "s3.amazonaws.com", "/docs/finance/x"),
            ("GET", "s3.amazonaws.com", "/other/finance/x"),
            ("GET", "docsx.s3.amazonaws.com", "/finance/x"),
            // Another bucket's virtual host, with this bucket's name as the key's start.
            ("GET", "other.s3.us-east-1.amazonaws.com", "/docs/finance/x"),
            ("GET", "other.docs.s3.amazonaws.com", "/finance/x"),
            ("GET", "docs.s3.evil.example", "/finance/x"),
            ("GET", "s3.evil.example", "/docs/finance/x"),
            ("GET", "docs.s3.amazonaws.com.", "/finance/x"),
            ("GET", "s3.amazonaws.com", "/docs/finance/x?acl"),
            ("GET", "s3.amazonaws.com", "/docs?policy"),
            (
                "GET",
                "s3.amazonaws.com",
                "/docs/finance/x?X-Amz-Signature=abc",
            ),
            ("GET", "s3.amazonaws.com", "/docs/finance/../hr/x"),
            ("GET", "s3.amazonaws.com", "/docs/finance/%2E%2E/hr/x"),
            ("GET", "s3.amazonaws.com", "/docs/finance//x"),
            ("GET", "s3.amazonaws.com", "/docs/finance/%0Ax"),
            ("GET", "s3.amazonaws.com", "/docs?prefix=finance/../hr/"),
            ("HEAD", "s3.amazonaws.com", "/docs"),
        ] {
            assert!(
                matches!(
                    read(method, authority, path),
                    Err(CredentialError::Unsupported(_))
                ),
                "{method} {authority}{path} was accepted"
            );
        }
    }
}
