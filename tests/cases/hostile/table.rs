//! The table's rows: where each is sent, its raw request head, what it must get; and
//! the runner that sends them and collects every mismatch.

use serde_json::Value;

use crate::support::net::raw_http;
use crate::support::world::World;

/// Where a row is sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum To {
    /// The inbound listener, path `/data` unless the row sets one.
    In,
    /// The outbound listener with `host: document-service` (an `exchange` route).
    Out,
}

/// What a row must get.
#[derive(Debug)]
pub enum Expect {
    /// Refused with this status; the upstream sees nothing. For actbridge's own refusals
    /// the body's `error_description` must contain the text (`None`: Envoy's refusal).
    Refused(u16, Option<&'static str>),
    /// Passes (200) to the upstream, which must not see any of these strings in any
    /// header value (forged identity headers stripped, the user's token exchanged).
    PassesWithout(Vec<String>),
}

pub struct Row {
    pub name: &'static str,
    pub to: To,
    /// Raw bytes of the request head: request line and headers, without the final
    /// `connection: close` and empty line (added when sent).
    pub head: Vec<u8>,
    pub expect: Expect,
}

/// A request head: `GET path`, `host`, then each header line as given (raw bytes).
pub fn head(to: To, path: &str, headers: &[&[u8]]) -> Vec<u8> {
    let host = match to {
        To::In => "app.pod.local",
        To::Out => "document-service",
    };
    let mut h = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\n").into_bytes();
    for line in headers {
        h.extend_from_slice(line);
        h.extend_from_slice(b"\r\n");
    }
    h
}

pub fn auth_line(value: &str) -> Vec<u8> {
    format!("authorization: {value}").into_bytes()
}

pub fn row(name: &'static str, to: To, auth: &[&str], expect: Expect) -> Row {
    let lines: Vec<Vec<u8>> = auth.iter().map(|a| auth_line(a)).collect();
    let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let path = if to == To::In { "/data" } else { "/documents" };
    Row {
        name,
        to,
        head: head(to, path, &refs),
        expect,
    }
}

pub fn raw_row(name: &'static str, to: To, head: Vec<u8>, expect: Expect) -> Row {
    Row {
        name,
        to,
        head,
        expect,
    }
}

pub fn refused(status: u16, description: &'static str) -> Expect {
    Expect::Refused(status, Some(description))
}

pub fn envoy_refuses(status: u16) -> Expect {
    Expect::Refused(status, None)
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Sends every row to its listener and returns what went otherwise than the row says.
pub async fn run(world: &World, rows: &[Row]) -> Vec<String> {
    let mut failures = Vec::new();
    for r in rows {
        let (port, upstream) = match r.to {
            To::In => (world.envoy.inbound_port, &world.app),
            To::Out => (world.envoy.outbound_port, &world.docs),
        };
        let before = upstream.count();
        let mut request = r.head.clone();
        if !request.ends_with(b"\r\n\r\n0\r\n\r\n") {
            request.extend_from_slice(b"connection: close\r\n\r\n");
        }
        let answer = raw_http(port, &request).await;
        let after = upstream.count();
        let got = answer.as_ref().map(|(s, _)| *s);
        match &r.expect {
            Expect::Refused(status, description) => {
                if got != Some(*status) {
                    failures.push(format!("{}: expected {status}, got {answer:?}", r.name));
                }
                if let (Some(d), Some((_, body))) = (description, &answer) {
                    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
                    let text = v["error_description"].as_str().unwrap_or("");
                    if v.is_null() || !text.contains(d) {
                        failures.push(format!(
                            "{}: expected actbridge's refusal \"{d}\", got {body}",
                            r.name
                        ));
                    }
                }
                if after != before {
                    failures.push(format!("{}: refused, but the upstream saw it", r.name));
                }
            }
            Expect::PassesWithout(forbidden) => {
                if got != Some(200) || after != before + 1 {
                    failures.push(format!("{}: expected to pass, got {answer:?}", r.name));
                    continue;
                }
                let seen = upstream.seen().pop().unwrap();
                for f in forbidden {
                    if seen.headers.iter().any(|(_, v)| v.contains(f.as_str())) {
                        failures.push(format!("{}: the upstream saw {f:?}", r.name));
                    }
                }
            }
        }
    }
    failures
}

/// How many rows to `to` pass.
pub fn passing(rows: &[Row], to: To) -> usize {
    rows.iter()
        .filter(|r| r.to == to && matches!(r.expect, Expect::PassesWithout(_)))
        .count()
}
