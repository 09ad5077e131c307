# Unit tests of the MCP tool rules (mcp.rego): `actbridge policy test policies`.
package actbridge_test

import rego.v1

import data.actbridge

tool_call(user, chain, tool, arguments) := object.union(
	request(user, chain, "/mcp"),
	{
		"direction": "outbound",
		"route": "mcp-documents",
		"method": "POST",
		"action": "write",
		"mcp": {"method": "tools/call", "tool": tool, "arguments": arguments},
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
		{"mcp": {"method": "initialize", "tool": null, "arguments": null}},
	)
	d := actbridge.decision with input as i
	d.allow
	not d.single_use_token
}
