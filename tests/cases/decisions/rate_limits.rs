//! Rate limits in one process (no Redis): a limit per (user, tool) on the MCP route
//! counts each `tools/call` of a tool, calls in a batch each on their own, and nothing
//! else; another tool has its own bucket; the refusal is 429 with `Retry-After`.

use super::routes::Table;
use super::*;
use crate::support::config_edit::ConfigEdit;

fn mcp(body: &'static str, expect: Expect) -> Row {
    Row {
        method: "POST",
        extra: &[("content-type", "application/json")],
        body: Some(body.to_string()),
        ..row("", "mcp-documents", "/mcp", expect)
    }
}

const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
const SEARCH: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search","arguments":{"q":"budget"}}}"#;
const TWO_SEARCHES: &str = r#"[{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search","arguments":{"q":"a"}}},{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"search","arguments":{"q":"b"}}}]"#;
const READ: &str = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"read_document","arguments":{"id":"DOC-001"}}}"#;

#[tokio::test]
async fn a_tool_limit_counts_each_call_of_that_tool_and_nothing_else() {
    use Expect::*;
    let (table, _dir) = Table::start_edited(|yaml| {
        ConfigEdit::of(&yaml)
            .set(
                "rate_limits",
                "{limits: [{name: tool-calls, per: [user, tool], rate: 3/hour, routes: [mcp-documents]}]}",
            )
            .yaml()
    })
    .await;
    let mut failures = Vec::new();
    let steps = [
        (
            "tools/list is no tool call",
            LIST,
            ForwardWithNewAuthorization,
        ),
        ("tools/list again", LIST, ForwardWithNewAuthorization),
        ("a search", SEARCH, ForwardWithNewAuthorization),
        (
            "two searches in one batch",
            TWO_SEARCHES,
            ForwardWithNewAuthorization,
        ),
        ("a fourth search", SEARCH, Deny(429, "rate_limited")),
        ("another tool", READ, ForwardWithNewAuthorization),
        (
            "tools/list is still served",
            LIST,
            ForwardWithNewAuthorization,
        ),
    ];
    for (name, body, expect) in steps {
        let r = mcp(body, expect);
        let got = table.decide(&r).await;
        let presented = table.authorization(r.token).unwrap();
        if let Err(why) = verdict(&r.expect, &got, &presented) {
            failures.push(format!("{name}: {why}"));
        }
        if name == "a fourth search" {
            match &got {
                Ok(Decision::Deny(d)) | Err(d)
                    if d.retry_after.is_some_and(|s| s > 60 && s <= 1200) => {}
                other => failures.push(format!(
                    "{name}: Retry-After is not the 20 minutes a call takes: {other:?}"
                )),
            }
        }
    }
    all_passed(&failures, "steps");
}
