# MCP tools (`protocol: mcp` routes): every JSON-RPC message reaches the policy with
# `input.mcp` = {method, known, tool, arguments}. A method MCP does not define for a
# client (`known: false`) is refused. A tool call is judged per tool and, where the tool
# reads a document, per argument, under the same all-of rule as documents.rego. Other
# known methods (initialize, tools/list, …) and a client's responses are judged on the
# grant.
#
# `world.tools` says what each tool is:
#   document_argument — the argument naming a document; the call is allowed only for a
#                       document every one of whose departments is in the grant.
#   refused           — the reason the tool is never allowed to agents.
#   approval          — a person approves every call (the request waits).
#   single_use        — the call goes out with a single-use tool token.
# A tool not listed is refused. When a `tools/list` result is narrowed, each tool is
# asked with `arguments: null`: argument rules wait for the call itself.
package actbridge

import rego.v1

mcp_tool_call if input.mcp.method == "tools/call"

mcp_tool := world.tools[input.mcp.tool] if mcp_tool_call

mcp_document_id := input.mcp.arguments[mcp_tool.document_argument] if mcp_tool_call

mcp_refusal := "the MCP method is not known" if {
	input.mcp.known == false
} else := "the tool is not known" if {
	mcp_tool_call
	not mcp_tool
} else := mcp_tool.refused if {
	mcp_tool_call
	mcp_tool.refused
} else := "the tool needs a document id" if {
	mcp_tool.document_argument
	is_object(input.mcp.arguments)
	not is_string(mcp_document_id)
} else := "the document is not known" if {
	is_string(mcp_document_id)
	not world.documents[mcp_document_id]
} else := sprintf("%s needs every one of its departments in the grant", [mcp_document_id]) if {
	not readable(world.documents[mcp_document_id])
}

# A person approves the call.
approval_required if mcp_tool.approval

# The call goes out with a single-use tool token.
single_use_token if mcp_tool.single_use
