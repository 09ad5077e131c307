# Unit tests of the MCP tool rules (mcp.rego): `actbridge policy test policies`.
package actbridge_test

import rego.v1

import data.actbridge

tool_call(user, chain, tool, arguments) := object.union(
	request(user, chain, "/mcp"),
	{
		"direction": "outbound",
		"route": "mcp-documents",
		"backend": "token_exchange",
		"method": "POST",
		"action": "write",
		"mcp": {"method": "tools/call", "known": true, "tool": tool, "arguments": arguments},
	},
)

call(user, chain, tool, arguments) := d if {
	d := actbridge.decision with input as tool_call(user, chain, tool, arguments)
}

test_read_document_inside_the_grant_is_allowed_with_a_single_use_token if {
	d := call("alice", ["summarizer-tech"], "read_document", {"id": "DOC-002"})
	d.allow
	d.single_use_token
	not d.approval_required
}

test_read_document_outside_the_grant_is_refused if {
	d := call("alice", ["summarizer-tech"], "read_document", {"id": "DOC-004"})
	not d.allow
	d.reason == "DOC-004 needs every one of its departments in the grant"
}

test_read_document_follows_the_all_of_rule if {
	not call("bob", ["summarizer-tech"], "read_document", {"id": "DOC-005"}).allow
	call("alice", ["summarizer-tech"], "read_document", {"id": "DOC-005"}).allow
}

test_read_document_needs_a_known_document_id if {
	call("alice", ["summarizer-tech"], "read_document", {}).reason == "the tool needs a document id"
	call("alice", ["summarizer-tech"], "read_document", {"id": 2}).reason == "the tool needs a document id"
	call("alice", ["summarizer-tech"], "read_document", {"id": "DOC-999"}).reason == "the document is not known"
}

test_delete_document_is_never_allowed if {
	d := call("bob", ["reviewer-general"], "delete_document", {"id": "DOC-002"})
	not d.allow
	d.reason == "deleting documents is not allowed to agents"
}

test_send_message_needs_a_person if {
	d := call("alice", ["summarizer-tech"], "send_message", {"to": "bob", "text": "hi"})
	d.allow
	d.approval_required
	not d.single_use_token
}

test_an_unknown_tool_is_refused if {
	call("alice", ["summarizer-tech"], "format_disk", {}).reason == "the tool is not known"
}

test_the_grant_still_comes_first if {
	d := call("alice", ["summarizer-hr"], "search", {"q": "x"})
	not d.allow
	d.reason == "the user and the agents acting for them share no permission"
}

test_listing_asks_without_arguments_and_keeps_argument_rules_for_the_call if {
	call("alice", ["summarizer-tech"], "read_document", null).allow
	call("alice", ["summarizer-tech"], "search", null).allow
	call("alice", ["summarizer-tech"], "send_message", null).allow
	not call("alice", ["summarizer-tech"], "delete_document", null).allow
}

test_other_mcp_methods_are_judged_on_the_grant if {
	i := object.union(
		request("alice", ["summarizer-tech"], "/mcp"),
		{"mcp": {"method": "initialize", "known": true, "tool": null, "arguments": null}},
	)
	d := actbridge.decision with input as i
	d.allow
	not d.single_use_token
}

# A message whose method MCP does not define for a client (`known: false`, decided by
# actbridge, case-sensitive) has no shape; a client's response (method null) is known.
message(method, known) := object.union(tool_call("alice", ["summarizer-tech"], "search", {}), {"mcp": {
	"method": method,
	"known": known,
	"tool": null,
	"arguments": null,
}})

test_an_mcp_method_that_mcp_does_not_define_is_refused if {
	d := actbridge.decision with input as message("Tools/Call", false)
	not d.allow
	d.reason == "the MCP method is not known"
	list := actbridge.decision with input as message("tools/list", true)
	list.allow
	response := actbridge.decision with input as message(null, true)
	response.allow
}

test_an_unknown_method_is_refused_even_on_a_route_the_world_does_not_list if {
	i := object.union(message("admin/wipe", false), {"route": "other-mcp"})
	d := actbridge.decision with input as i
	d.reason == "the MCP method is not known"
}

# Streamable HTTP's bodyless GET (event stream) and DELETE (end of session) carry no
# message: they pass on the grant on a route world.routes lists as `mcp`, and nothing else
# without a message does.
plain_on_mcp_route(route, method) := object.union(request("alice", ["summarizer-tech"], "/mcp"), {
	"direction": "outbound",
	"route": route,
	"backend": "token_exchange",
	"method": method,
	"action": action_of(method),
})

test_the_mcp_session_stream_and_end_pass_on_a_listed_mcp_route if {
	every method in ["GET", "DELETE"] {
		d := actbridge.decision with input as plain_on_mcp_route("mcp-documents", method)
		d.allow
		d.grant == ["engineering", "finance"]
		not d.single_use_token
	}
}

test_other_requests_without_a_message_on_an_mcp_route_have_no_shape if {
	every method in ["POST", "PUT", "HEAD"] {
		d := actbridge.decision with input as plain_on_mcp_route("mcp-documents", method)
		d.reason == "no rule allows this request shape"
	}
	d := actbridge.decision with input as plain_on_mcp_route("unlisted-mcp", "GET")
	d.reason == "no rule allows this request shape"
}

test_an_empty_grant_is_refused_before_the_session_stream if {
	d := actbridge.decision with input as object.union(
		plain_on_mcp_route("mcp-documents", "GET"),
		{"user": {"sub": "carol", "username": "carol", "groups": ["hr"]}},
	)
	d.reason == "the user and the agents acting for them share no permission"
}
