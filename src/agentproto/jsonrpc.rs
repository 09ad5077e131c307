//! JSON-RPC 2.0 messages as MCP and A2A send them over HTTP POST: a single message or a
//! batch (an array). Parsed strictly — an envelope actbridge cannot read with certainty
//! is refused, never forwarded on a guess — and bounded (batch size, nesting depth).
//!
//! Written over `serde_json::Value` rather than a JSON-RPC crate: the crates on
//! crates.io (jsonrpsee, jsonrpc-core) are client/server frameworks whose request types
//! reject what a policy layer must see and refuse precisely (a response in a request
//! body, a batch mixing kinds), and none bounds nesting.

use serde_json::Value;

/// The most messages a batch may hold.
pub const MAX_BATCH: usize = 64;
/// The deepest nesting of arrays and objects accepted in a message.
pub const MAX_DEPTH: usize = 32;

/// JSON-RPC 2.0 §5.1 error codes actbridge sends.
pub mod code {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid Request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Implementation-defined server error (-32000 to -32099): refused by actbridge.
    pub const REFUSED: i64 = -32001;
}

/// One message of the body: a request or notification (`method` set) or a response to
/// a server's request (`method` absent: a client answering an elicitation or sampling).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `id`: a string, a number or null; absent for a notification.
    pub id: Option<Value>,
    /// `method`; `None` for a response.
    pub method: Option<String>,
    /// `params` (an object or an array), when present.
    pub params: Option<Value>,
}

/// The body: one message or a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Whether the body was an array.
    pub batch: bool,
    /// The messages, in order (one when not a batch).
    pub messages: Vec<Message>,
}

impl Envelope {
    /// The id to answer an error with: the single message's id, else null (JSON-RPC
    /// §5: a batch refused as a whole is answered with one error object).
    pub fn reply_id(&self) -> Value {
        match (self.batch, self.messages.first()) {
            (false, Some(m)) => m.id.clone().unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }
}

/// Why a body is not an acceptable JSON-RPC 2.0 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// Not JSON (or not UTF-8).
    #[error("the body is not JSON")]
    Parse,
    /// JSON, but not a JSON-RPC 2.0 request, notification or response.
    #[error("not a JSON-RPC 2.0 message: {0}")]
    Invalid(&'static str),
}

impl RpcError {
    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        match self {
            RpcError::Parse => code::PARSE_ERROR,
            RpcError::Invalid(_) => code::INVALID_REQUEST,
        }
    }
}

/// Parses a POST body. An object with a key twice, anywhere in the body, is refused:
/// parsers disagree on which copy wins, and the policy must judge what the server reads.
pub fn parse(body: &[u8]) -> Result<Envelope, RpcError> {
    let value = strict_json(body)?;
    if depth(&value) > MAX_DEPTH {
        return Err(RpcError::Invalid("nested too deeply"));
    }
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(RpcError::Invalid("an empty batch"));
            }
            if items.len() > MAX_BATCH {
                return Err(RpcError::Invalid("a batch of more than 64 messages"));
            }
            let messages = items
                .into_iter()
                .map(message)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Envelope {
                batch: true,
                messages,
            })
        }
        other => Ok(Envelope {
            batch: false,
            messages: vec![message(other)?],
        }),
    }
}

fn message(v: Value) -> Result<Message, RpcError> {
    let Value::Object(mut o) = v else {
        return Err(RpcError::Invalid("a message is not an object"));
    };
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(RpcError::Invalid("`jsonrpc` is not \"2.0\""));
    }
    let id = match o.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => return Err(RpcError::Invalid("`id` is not a string, number or null")),
    };
    let method = match o.remove("method") {
        None => None,
        Some(Value::String(m)) if !m.is_empty() => Some(m),
        Some(_) => return Err(RpcError::Invalid("`method` is not a non-empty string")),
    };
    let params = match o.remove("params") {
        None => None,
        Some(p @ (Value::Object(_) | Value::Array(_))) => Some(p),
        Some(_) => return Err(RpcError::Invalid("`params` is not an object or array")),
    };
    if method.is_none() && !(o.contains_key("result") ^ o.contains_key("error")) {
        return Err(RpcError::Invalid(
            "neither a request (`method`) nor a response (`result` or `error`)",
        ));
    }
    if method.is_some() && (o.contains_key("result") || o.contains_key("error")) {
        return Err(RpcError::Invalid("a request carrying `result` or `error`"));
    }
    Ok(Message { id, method, params })
}

/// Nesting depth of arrays and objects (a scalar is 0), computed without recursion so a
/// hostile body cannot exhaust the stack here (serde_json already caps its own at 128).
fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            Value::Object(o) => stack.extend(o.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    deepest
}

const DUPLICATE: &str = "duplicate key";

/// JSON text to a value, refusing an object with a key twice (`Invalid`) as well as
/// anything that is not one JSON value (`Parse`).
pub fn strict_json(body: &[u8]) -> Result<Value, RpcError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde::Deserialize::deserialize(&mut de).and_then(|v: Strict| {
        de.end()?;
        Ok(v)
    }) {
        Ok(Strict(v)) => Ok(v),
        Err(e) if e.to_string().starts_with(DUPLICATE) => {
            Err(RpcError::Invalid("an object has a key twice"))
        }
        Err(_) => Err(RpcError::Parse),
    }
}

/// A JSON value whose objects have no repeated key. Written by hand because
/// `serde_json::Value` keeps the last copy silently and no well-kept crate offers a
/// strict variant; the recursion depth is bounded by serde_json's own limit (128).
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if out.insert(key, v).is_some() {
                return Err(serde::de::Error::custom(DUPLICATE));
            }
        }
        Ok(Value::Object(out))
    }
}

/// A JSON-RPC error response body: `{"jsonrpc":"2.0","id":…,"error":{"code":…,"message":…}}`.
pub fn error_body(id: &Value, code: i64, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_request_is_read_with_its_id_method_and_params() {
        let e =
            parse(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search"}}"#)
                .unwrap();
        assert!(!e.batch);
        assert_eq!(e.messages[0].id, Some(Value::from(7)));
        assert_eq!(e.messages[0].method.as_deref(), Some("tools/call"));
        assert_eq!(e.reply_id(), Value::from(7));
    }

    #[test]
    fn a_batch_keeps_order_and_is_answered_with_a_null_id() {
        let e = parse(
            br#"[{"jsonrpc":"2.0","id":"a","method":"tools/list"},
                 {"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
        )
        .unwrap();
        assert!(e.batch);
        assert_eq!(e.messages.len(), 2);
        assert_eq!(e.messages[1].id, None);
        assert_eq!(e.reply_id(), Value::Null);
    }

    #[test]
    fn a_client_response_to_a_server_request_is_a_message_without_method() {
        let e = parse(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#).unwrap();
        assert_eq!(e.messages[0].method, None);
    }

    #[test]
    fn malformed_bodies_are_refused_with_the_right_code() {
        let cases: &[(&[u8], i64)] = &[
            (b"{not json", code::PARSE_ERROR),
            (b"\xff\xfe", code::PARSE_ERROR),
            (b"", code::PARSE_ERROR),
            (b"[]", code::INVALID_REQUEST),
            (b"42", code::INVALID_REQUEST),
            (br#"{"id":1,"method":"x"}"#, code::INVALID_REQUEST),
            (
                br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
                code::INVALID_REQUEST,
            ),
            (
                br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
                code::INVALID_REQUEST,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":5}"#,
                code::INVALID_REQUEST,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":""}"#,
                code::INVALID_REQUEST,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"x","params":"s"}"#,
                code::INVALID_REQUEST,
            ),
            (br#"{"jsonrpc":"2.0","id":1}"#, code::INVALID_REQUEST),
            (
                br#"{"jsonrpc":"2.0","id":1,"result":1,"error":{}}"#,
                code::INVALID_REQUEST,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"x","result":1}"#,
                code::INVALID_REQUEST,
            ),
            (
                br#"[{"jsonrpc":"2.0","id":1,"method":"x"}, 3]"#,
                code::INVALID_REQUEST,
            ),
        ];
        for (body, want) in cases {
            let got = parse(body).unwrap_err();
            assert_eq!(got.code(), *want, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn oversized_batches_and_deep_nesting_are_refused() {
        let one = r#"{"jsonrpc":"2.0","method":"ping"}"#;
        let batch = format!("[{}]", vec![one; MAX_BATCH + 1].join(","));
        assert!(matches!(parse(batch.as_bytes()), Err(RpcError::Invalid(_))));
        let ok = format!("[{}]", vec![one; MAX_BATCH].join(","));
        assert_eq!(parse(ok.as_bytes()).unwrap().messages.len(), MAX_BATCH);
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{}1{}}}"#,
            "[".repeat(40),
            "]".repeat(40)
        );
        assert_eq!(
            parse(deep.as_bytes()),
            Err(RpcError::Invalid("nested too deeply"))
        );
    }

    #[test]
    fn a_key_given_twice_anywhere_is_refused() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","name":"delete_document"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_document","arguments":{"id":"DOC-002","id":"DOC-004"}}}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"x"},{"jsonrpc":"2.0","id":2,"id":3,"method":"x"}]"#,
        ] {
            assert_eq!(
                parse(body.as_bytes()),
                Err(RpcError::Invalid("an object has a key twice")),
                "{body}"
            );
        }
        // Trailing garbage is not JSON; numbers, escapes and nesting survive the strict path.
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","method":"x"} {}"#),
            Err(RpcError::Parse)
        );
        let e =
            parse(br#"{"jsonrpc":"2.0","id":-1.5e3,"method":"a\u00e9","params":[[1,true,null]]}"#)
                .unwrap();
        assert_eq!(e.messages[0].method.as_deref(), Some("a\u{e9}"));
        assert_eq!(
            e.messages[0].params,
            Some(serde_json::json!([[1, true, null]]))
        );
    }

    #[test]
    fn error_bodies_carry_the_id_code_and_message() {
        let b: Value =
            serde_json::from_slice(&error_body(&Value::from("x"), -32700, "bad")).unwrap();
        assert_eq!(
            b,
            serde_json::json!({"jsonrpc":"2.0","id":"x","error":{"code":-32700,"message":"bad"}})
        );
    }
}
