# The decision actbridge asks for (`data.actbridge.decision`):
#   {allow, reason, grant, approval_required, exclude, single_use_token}
# The first refusal that applies wins; otherwise the request is allowed with the grant.
package actbridge

import rego.v1

refusal := "an agent in the delegation chain is not registered" if {
	count(unknown_agents) > 0
} else := "the user has no permissions" if {
	count(user_permissions) == 0
} else := "the user and the agents acting for them share no permission" if {
	count(grant) == 0
} else := shape_refusal if {
	shape_refusal
} else := document_refusal if {
	document_refusal
} else := mcp_refusal if {
	mcp_refusal
} else := object_refusal

default decision := {
	"allow": false,
	"reason": "no rule allows this request",
	"grant": [],
	"approval_required": false,
}

decision := {
	"allow": false,
	"reason": refusal,
	"grant": [],
	"approval_required": false,
}

default approval_required := false

default single_use_token := false

decision := {
	"allow": true,
	"reason": allowed_reason,
	"grant": sort([d | some d in grant]),
	"approval_required": approval_required,
	"exclude": sort([k | some k in exclude]),
	"single_use_token": single_use_token,
} if not refusal

allowed_reason := "a person must approve this tool call" if {
	approval_required
} else := "allowed: the grant is the user's permissions and every agent's"

# Request shapes: a request is allowed only in a shape one of the rules below knows.
# The first line that matches says which rules judge it:
#
#   an MCP message (input.mcp)         mcp: mcp.rego, per method, tool and arguments
#   an A2A message (input.a2a)         a2a: the grant alone (no A2A rules in this world)
#   a credential backend's request     credential: what the backend read from it (it
#                                      refuses what it cannot scope); objects.rego for
#                                      aws_sts, the grant alone for the others
#   inbound, a path under /documents   documents: documents.rego, in any spelling
#   inbound, any other path            app: the app's own endpoint, on the grant alone;
#                                      what the app fetches is judged again on its way out
#   outbound, on a route world.routes lists as
#     documents                        documents: documents.rego (any other path there
#                                      is refused)
#     mcp, with GET or DELETE          mcp_session: the grant alone (MCP's event stream
#                                      and session end carry no message; actbridge lets
#                                      them through bodyless only)
#     a2a, with GET                    agent_card: the grant alone (bodyless only)
#
# Anything else — an exchange route this world does not list, another method on a listed
# route, a backend the policy does not know — has no shape: "no rule allows this request
# shape".
credential_backends := {"aws_sts", "github_app", "filter", "ssh_cert", "postgres"}

route_kind := world.routes[input.route] if input.direction == "outbound"

request_shape := "mcp" if {
	is_object(input.mcp)
} else := "a2a" if {
	is_object(input.a2a)
} else := "credential" if {
	input.backend in credential_backends
} else := "documents" if {
	input.direction == "inbound"
	documents_namespace
} else := "app" if {
	input.direction == "inbound"
} else := "documents" if {
	route_kind == "documents"
} else := "mcp_session" if {
	route_kind == "mcp"
	input.method in {"GET", "DELETE"}
} else := "agent_card" if {
	route_kind == "a2a"
	input.method == "GET"
}

shape_refusal := "no rule allows this request shape" if {
	not request_shape
} else := documents_shape_refusal if {
	request_shape == "documents"
	documents_shape_refusal
}
