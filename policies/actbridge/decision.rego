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
