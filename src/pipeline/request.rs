//! The facts of one request, as the decision core sees them.

use std::fmt;

use crate::http_path::{CanonicalPath, PathError};
use crate::text::bounded;

/// Which side of the pod a request crosses. Set per ext_proc filter in the Envoy
/// config (gRPC initial metadata), never taken from the client's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Into the pod, to the app.
    Inbound,
    /// From the agent to a destination.
    Outbound,
}

impl Direction {
    /// `inbound` / `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    /// Parses the direction value; anything else is refused.
    pub fn parse(v: &str) -> Option<Direction> {
        match v {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            _ => None,
        }
    }
}

/// Why a request could not even be described.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The filter instance did not say which direction it serves.
    #[error("direction is missing or unknown")]
    UnknownDirection,
    /// A required pseudo-header is missing or not UTF-8.
    #[error("request has no valid `{0}`")]
    MissingPseudoHeader(&'static str),
    /// The path is spelled so that servers could read it differently
    /// ([`crate::http_path`]): refused before any matcher runs.
    #[error("{0}")]
    AmbiguousPath(#[from] PathError),
}

/// The most of a path a log line or an audit record holds.
pub(super) const RECORDED_PATH_MAX: usize = 512;

/// One request: direction, destination, method, path and headers.
#[derive(Clone)]
pub struct RequestFacts {
    /// Direction.
    pub direction: Direction,
    /// `:authority`, lower case.
    pub authority: String,
    /// `:method`.
    pub method: String,
    /// `:path` including the query string, as Envoy forwards it.
    pub path: String,
    /// `:path` decoded, without its query: what every matcher and the policy judge.
    canonical: CanonicalPath,
    /// The headers end the request (no body follows).
    pub end_of_stream: bool,
    /// The route the proxy chose for this request (Envoy: `xds.route_name`), as the
    /// proxy reports it; `None` when it reported none. Outbound, actbridge refuses unless
    /// it is the route actbridge judged.
    pub proxy_route: Option<String>,
    /// The upstream cluster the proxy chose (Envoy: `xds.cluster_name`).
    pub proxy_cluster: Option<String>,
    /// Regular headers (lower-case names, raw values); pseudo-headers excluded.
    headers: Vec<(String, Vec<u8>)>,
}

impl fmt::Debug for RequestFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may hold credentials: only their names are printed.
        f.debug_struct("RequestFacts")
            .field("direction", &self.direction)
            .field("authority", &self.authority)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("proxy_route", &self.proxy_route)
            .field("proxy_cluster", &self.proxy_cluster)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl RequestFacts {
    /// Builds the facts from a direction value and a header list (names lower case, as
    /// HTTP/2 and Envoy deliver them).
    pub fn new(
        direction: Option<&str>,
        headers: Vec<(String, Vec<u8>)>,
    ) -> Result<RequestFacts, RequestError> {
        let direction = direction
            .and_then(Direction::parse)
            .ok_or(RequestError::UnknownDirection)?;
        let mut authority = None;
        let mut method = None;
        let mut path = None;
        let mut regular = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            match name.as_str() {
                ":authority" => authority = String::from_utf8(value).ok(),
                ":method" => method = String::from_utf8(value).ok(),
                ":path" => path = String::from_utf8(value).ok(),
                n if n.starts_with(':') => {}
                _ => regular.push((name, value)),
            }
        }
        let path = path.ok_or(RequestError::MissingPseudoHeader(":path"))?;
        let canonical = CanonicalPath::parse(&path)?;
        Ok(RequestFacts {
            direction,
            authority: authority
                .filter(|a| !a.is_empty())
                .ok_or(RequestError::MissingPseudoHeader(":authority"))?
                .to_ascii_lowercase(),
            method: method.ok_or(RequestError::MissingPseudoHeader(":method"))?,
            path,
            canonical,
            end_of_stream: false,
            proxy_route: None,
            proxy_cluster: None,
            headers: regular,
        })
    }

    /// All values of header `name` (lower case).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The names of the regular headers (lower case; repeated names repeat).
    pub fn header_names(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().map(|(k, _)| k.as_str())
    }

    /// The single value of header `name` as text; `None` when absent, repeated or not
    /// UTF-8.
    pub fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        let mut values = self.header_values(name);
        let first = values.next()?;
        if values.next().is_some() {
            return None;
        }
        std::str::from_utf8(first).ok()
    }

    /// The trace id of a well-formed W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`),
    /// lower case; an all-zero id is invalid.
    pub fn trace_id(&self) -> Option<String> {
        let tp = self.header("traceparent")?;
        let parts: Vec<&str> = tp.split('-').collect();
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        let ok = parts.len() >= 4
            && hex(parts[0], 2)
            && parts[0] != "ff"
            && hex(parts[1], 32)
            && hex(parts[2], 16)
            && hex(parts[3], 2)
            && parts[1].bytes().any(|b| b != b'0');
        ok.then(|| parts[1].to_ascii_lowercase())
    }

    /// The path without its query string, decoded ([`crate::http_path`]).
    pub fn path_only(&self) -> &str {
        self.canonical.as_str()
    }

    /// The path for logs and audit records: decoded, never the query string (which may
    /// carry `access_token=…`), and at most [`RECORDED_PATH_MAX`] bytes — a longer one
    /// is cut at a character boundary and marked with its length, so one request cannot
    /// fill a disk.
    pub fn path_for_records(&self) -> std::borrow::Cow<'_, str> {
        bounded(self.canonical.as_str(), RECORDED_PATH_MAX)
    }

    /// The request id (`x-request-id`) for logs and records, at most 256 bytes (marked
    /// when cut): a client-chosen value never grows a record.
    pub fn request_id_for_records(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.header("x-request-id").map(|id| bounded(id, 256))
    }

    /// The authority for logs and records, at most 256 bytes (marked when cut).
    pub fn authority_for_records(&self) -> std::borrow::Cow<'_, str> {
        bounded(&self.authority, 256)
    }

    /// The path as every matcher reads it.
    pub fn canonical_path(&self) -> &CanonicalPath {
        &self.canonical
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_path_has_no_query_and_a_bounded_length() {
        let facts = |path: &str| {
            RequestFacts::new(
                Some("inbound"),
                vec![
                    (":authority".into(), b"app".to_vec()),
                    (":method".into(), b"GET".to_vec()),
                    (":path".into(), path.as_bytes().to_vec()),
                ],
            )
            .unwrap()
        };
        assert_eq!(
            facts("/cb?access_token=eyJhbGciOi.x.y").path_for_records(),
            "/cb"
        );
        let long = format!("/{}", "é".repeat(30_000));
        let recorded = facts(&long).path_for_records().into_owned();
        assert!(
            recorded.len() < RECORDED_PATH_MAX + 32,
            "{}",
            recorded.len()
        );
        assert!(recorded.ends_with(&format!("…[{} bytes]", long.len())));
    }
}
