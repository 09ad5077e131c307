# The decision actbridge asks for (`data.actbridge.decision`):
#   {allow, reason, grant, approval_required, exclude}
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

decision := {
	"allow": true,
	"reason": "allowed: the grant is the user's permissions and every agent's",
	"grant": sort([d | some d in grant]),
	"approval_required": false,
	"exclude": sort([k | some k in exclude]),
} if not refusal
