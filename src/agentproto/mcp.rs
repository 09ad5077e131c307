//! MCP over Streamable HTTP (specification 2025-11-25, "Transports"): what a
//! `tools/call` names, and a `tools/list` result narrowed to the tools the caller may
//! call. The server answers a POST with `application/json` or with a
//! `text/event-stream` whose events carry the JSON-RPC messages; both are read.

use serde_json::Value;

use super::jsonrpc::{Message, strict_json};

/// `tools/call`.
pub const TOOLS_CALL: &str = "tools/call";
/// `tools/list`.
pub const TOOLS_LIST: &str = "tools/list";

/// What a client sends a server in MCP (specification 2025-11-25): requests,
/// notifications, and `null` for a response to a server's request. JSON-RPC method names
/// are case-sensitive: `Tools/Call` is none of these.
const CLIENT_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/list",
    "tasks/result",
    "tasks/cancel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "notifications/tasks/status",
];

/// Whether `method` is one a client sends in MCP.
pub fn is_method(method: &str) -> bool {
    CLIENT_METHODS.contains(&method)
}

/// Why an MCP message or response cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpError {
    /// A `tools/call` without a tool name, or with arguments that are not an object.
    #[error("`tools/call` needs `params.name` (a string) and object `params.arguments`")]
    BadToolCall,
    /// A `tools/list` response actbridge cannot read with certainty.
    #[error("the tools/list response cannot be read: {0}")]
    BadListResponse(&'static str),
}

/// The tool a `tools/call` names and its arguments (an empty object when none).
pub fn tool_call(m: &Message) -> Result<(String, Value), McpError> {
    let params = m.params.as_ref().and_then(Value::as_object);
    let name = params
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or(McpError::BadToolCall)?;
    let arguments = match params.and_then(|p| p.get("arguments")) {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(a @ Value::Object(_)) => a.clone(),
        Some(_) => return Err(McpError::BadToolCall),
    };
    Ok((name.to_string(), arguments))
}

/// A server's answer to `tools/list`, parsed: JSON (one message or a batch) or an event
/// stream. Narrow it with [`ToolsList::retain`], then write it back with
/// [`ToolsList::into_body`].
#[derive(Debug)]
pub struct ToolsList {
    form: Form,
    /// The ids of the `tools/list` requests: only their responses are narrowed.
    ids: Vec<Value>,
}

#[derive(Debug)]
enum Form {
    Json(Value),
    /// Events in order; each is its non-data lines and its data (parsed when JSON).
    Events(Vec<Event>),
}

#[derive(Debug)]
struct Event {
    other_lines: Vec<String>,
    data: Option<Value>,
    raw_data: Vec<String>,
}

impl ToolsList {
    /// Parses `body` as served with `content_type`; `ids` are the ids of the `tools/list`
    /// requests it answers.
    pub fn parse(body: &[u8], content_type: &str, ids: Vec<Value>) -> Result<Self, McpError> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let form = match media.as_str() {
            "application/json" => Form::Json(
                strict_json(body).map_err(|_| McpError::BadListResponse("not strict JSON"))?,
            ),
            "text/event-stream" => Form::Events(events(body)?),
            _ => {
                return Err(McpError::BadListResponse(
                    "neither JSON nor an event stream",
                ));
            }
        };
        Ok(ToolsList { form, ids })
    }

    /// Calls `f` on every response answering one of the `tools/list` requests.
    fn each_answer(&mut self, mut f: impl FnMut(&mut Value)) {
        let ids = &self.ids;
        let mut visit = |v: &mut Value| match v {
            Value::Array(items) => items
                .iter_mut()
                .filter(|i| answers(i, ids))
                .for_each(&mut f),
            v if answers(v, ids) => f(v),
            _ => {}
        };
        match &mut self.form {
            Form::Json(v) => visit(v),
            Form::Events(evs) => evs
                .iter_mut()
                .filter_map(|e| e.data.as_mut())
                .for_each(visit),
        }
    }

    /// The names of the tools listed, in order. A listed tool without a string `name` is
    /// an error: it could not be judged.
    pub fn names(&mut self) -> Result<Vec<String>, McpError> {
        let mut names = Vec::new();
        let mut bad = false;
        self.each_answer(|resp| {
            let Some(tools) = resp.pointer("/result/tools") else {
                return;
            };
            match tools.as_array() {
                Some(list) => {
                    for t in list {
                        match t.get("name").and_then(Value::as_str) {
                            Some(n) => names.push(n.to_string()),
                            None => bad = true,
                        }
                    }
                }
                None => bad = true,
            }
        });
        if bad {
            return Err(McpError::BadListResponse("a tool without a name"));
        }
        Ok(names)
    }

    /// Keeps the tools for which `keep(name)` holds; returns how many were removed.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) -> usize {
        let mut removed = 0;
        self.each_answer(|resp| {
            if let Some(Value::Array(list)) = resp.pointer_mut("/result/tools") {
                let before = list.len();
                list.retain(|t| t.get("name").and_then(Value::as_str).is_some_and(&keep));
                removed += before - list.len();
            }
        });
        removed
    }

    /// The body to send on: JSON re-serialized, or the events with their data rewritten
    /// (other lines — `event:`, `id:`, `retry:`, comments — kept as they were).
    pub fn into_body(self) -> Vec<u8> {
        match self.form {
            Form::Json(v) => serde_json::to_vec(&v).unwrap_or_default(),
            Form::Events(evs) => {
                let mut out = String::new();
                for e in evs {
                    for l in &e.other_lines {
                        out.push_str(l);
                        out.push('\n');
                    }
                    match &e.data {
                        Some(d) => {
                            out.push_str("data: ");
                            out.push_str(&d.to_string());
                            out.push('\n');
                        }
                        None => {
                            for d in &e.raw_data {
                                out.push_str("data: ");
                                out.push_str(d);
                                out.push('\n');
                            }
                        }
                    }
                    out.push('\n');
                }
                out.into_bytes()
            }
        }
    }
}

fn answers(v: &Value, ids: &[Value]) -> bool {
    v.get("id").is_some_and(|id| ids.contains(id))
}

/// Splits an event stream (the WHATWG "server-sent events" format) into events.
fn events(body: &[u8]) -> Result<Vec<Event>, McpError> {
    let text =
        std::str::from_utf8(body).map_err(|_| McpError::BadListResponse("not UTF-8 text"))?;
    let text = text.replace("\r\n", "\n");
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut other_lines = Vec::new();
        let mut raw_data = Vec::new();
        for line in block.lines() {
            match line.strip_prefix("data:") {
                Some(d) => raw_data.push(d.strip_prefix(' ').unwrap_or(d).to_string()),
                None => other_lines.push(line.to_string()),
            }
        }
        // Data that is not JSON is no JSON-RPC message and passes as it is; data that is
        // JSON with a key twice cannot be narrowed with certainty and is an error.
        let data = match strict_json(raw_data.join("\n").as_bytes()) {
            _ if raw_data.is_empty() => None,
            Ok(v) => Some(v),
            Err(super::jsonrpc::RpcError::Parse) => None,
            Err(_) => return Err(McpError::BadListResponse("an object has a key twice")),
        };
        out.push(Event {
            other_lines,
            data,
            raw_data,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agentproto::jsonrpc::parse;

    fn call(body: &str) -> Result<(String, Value), McpError> {
        tool_call(&parse(body.as_bytes()).unwrap().messages[0])
    }

    #[test]
    fn a_tool_call_names_its_tool_and_arguments() {
        let (name, args) = call(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_document","arguments":{"id":"DOC-002"}}}"#,
        )
        .unwrap();
        assert_eq!(name, "read_document");
        assert_eq!(args, serde_json::json!({"id":"DOC-002"}));
        let (_, none) =
            call(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"}}"#)
                .unwrap();
        assert_eq!(none, serde_json::json!({}));
    }

    #[test]
    fn a_tool_call_without_a_name_or_with_odd_arguments_is_refused() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":""}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":3}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["read_document"]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":[1]}}"#,
        ] {
            assert_eq!(call(body), Err(McpError::BadToolCall), "{body}");
        }
    }

    const LIST: &str = r#"{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"read_document","inputSchema":{}},{"name":"delete_document"},{"name":"search"}]}}"#;

    #[test]
    fn a_json_tools_list_is_narrowed_and_keeps_everything_else() {
        let mut l = ToolsList::parse(LIST.as_bytes(), "application/json", vec![4.into()]).unwrap();
        assert_eq!(
            l.names().unwrap(),
            ["read_document", "delete_document", "search"]
        );
        assert_eq!(l.retain(|n| n != "delete_document"), 1);
        let v: Value = serde_json::from_slice(&l.into_body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"jsonrpc":"2.0","id":4,"result":{"tools":[
                {"name":"read_document","inputSchema":{}},{"name":"search"}]}})
        );
    }

    #[test]
    fn only_the_answers_to_the_list_requests_are_touched() {
        let mut l = ToolsList::parse(LIST.as_bytes(), "application/json", vec![5.into()]).unwrap();
        assert!(l.names().unwrap().is_empty());
        assert_eq!(l.retain(|_| false), 0);
    }

    #[test]
    fn an_event_stream_is_narrowed_event_by_event() {
        let body = format!(
            ": comment\r\nevent: message\r\nid: e1\r\ndata: {LIST}\r\n\r\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}}\n\n"
        );
        let mut l = ToolsList::parse(
            body.as_bytes(),
            "text/event-stream; charset=utf-8",
            vec![4.into()],
        )
        .unwrap();
        assert_eq!(l.retain(|n| n == "search"), 2);
        let out = String::from_utf8(l.into_body()).unwrap();
        let events: Vec<&str> = out.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 2);
        assert!(events[0].starts_with(": comment\nevent: message\nid: e1\ndata: "));
        let data: Value = serde_json::from_str(events[0].rsplit("data: ").next().unwrap()).unwrap();
        assert_eq!(
            data["result"]["tools"],
            serde_json::json!([{"name":"search"}])
        );
        assert!(events[1].contains("notifications/progress"));
    }

    #[test]
    fn unreadable_list_responses_are_errors() {
        assert!(ToolsList::parse(b"<html>", "text/html", vec![]).is_err());
        assert!(ToolsList::parse(b"{", "application/json", vec![]).is_err());
        assert!(ToolsList::parse(b"\xff\n\n", "text/event-stream", vec![]).is_err());
        let twice = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search","name":"delete_document"}]}}"#;
        assert!(ToolsList::parse(twice.as_bytes(), "application/json", vec![1.into()]).is_err());
        let sse = format!("data: {twice}\n\n");
        assert!(ToolsList::parse(sse.as_bytes(), "text/event-stream", vec![1.into()]).is_err());
        let nameless = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"title":"x"}]}}"#;
        let mut l =
            ToolsList::parse(nameless.as_bytes(), "application/json", vec![1.into()]).unwrap();
        assert!(l.names().is_err());
    }
}
