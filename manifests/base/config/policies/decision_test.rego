# Unit tests of the demo world's policy: `actbridge policy test policies`.
package actbridge_test

import rego.v1

import data.actbridge

agent(name) := {"client_id": sprintf("spiffe://demo.example.com/agent/%s", [name])}

groups := {
	"alice": ["engineering", "finance"],
	"bob": ["finance", "admin"],
	"carol": ["hr"],
	"david": ["engineering"],
}

# An inbound GET of `path` (the segments as actbridge gives them: empty ones dropped).
request(user, chain, path) := {
	"direction": "inbound",
	"route": "inbound",
	"backend": "app",
	"method": "GET",
	"action": "read",
	"path": path,
	"resource": [s | some s in split(path, "/"); s != ""],
	"user": {"sub": user, "username": user, "groups": groups[user]},
	"actors": [agent(n) | some n in chain],
}

decide(user, chain, path) := d if {
	d := actbridge.decision with input as request(user, chain, path)
}

# DEMO.md's table: user × agent → grant ([] = refused).
matrix := {
	["alice", "summarizer-hr"]: [],
	["alice", "summarizer-tech"]: ["engineering", "finance"],
	["alice", "reviewer-ops"]: ["engineering"],
	["alice", "reviewer-general"]: ["engineering", "finance"],
	["bob", "summarizer-hr"]: [],
	["bob", "summarizer-tech"]: ["finance"],
	["bob", "reviewer-ops"]: ["admin"],
	["bob", "reviewer-general"]: ["admin", "finance"],
	["carol", "summarizer-hr"]: ["hr"],
	["carol", "summarizer-tech"]: [],
	["carol", "reviewer-ops"]: [],
	["carol", "reviewer-general"]: ["hr"],
	["david", "summarizer-hr"]: [],
	["david", "summarizer-tech"]: ["engineering"],
	["david", "reviewer-ops"]: ["engineering"],
	["david", "reviewer-general"]: ["engineering"],
}

test_the_sixteen_pairs_of_the_demo_matrix if {
	every pair, want in matrix {
		d := decide(pair[0], [pair[1]], "/summaries")
		d.grant == want
		d.allow == (count(want) > 0)
	}
}

test_an_empty_intersection_is_refused_with_its_reason if {
	d := decide("alice", ["summarizer-hr"], "/summaries")
	not d.allow
	d.reason == "the user and the agents acting for them share no permission"
}

test_two_hops_multiply_the_restriction if {
	d := decide("alice", ["reviewer-ops", "reviewer-general"], "/summaries")
	d.allow
	d.grant == ["engineering"]
}

test_the_users_own_token_gets_the_users_permissions if {
	decide("bob", [], "/summaries").grant == ["admin", "finance"]
}

test_an_unknown_agent_has_no_capabilities if {
	d := actbridge.decision with input as object.union(
		request("alice", [], "/summaries"),
		{"actors": [{"client_id": "spiffe://demo.example.com/agent/summarizer-everything"}]},
	)
	not d.allow
	d.reason == "an agent in the delegation chain is not registered"
}

test_an_unknown_agent_anywhere_in_the_chain_refuses if {
	d := actbridge.decision with input as object.union(
		request("alice", [], "/summaries"),
		{"actors": [agent("reviewer-general"), {"client_id": "spiffe://demo.example.com/agent/nobody"}]},
	)
	not d.allow
}

test_a_foreign_trust_domain_is_another_identity if {
	d := actbridge.decision with input as object.union(
		request("alice", [], "/summaries"),
		{"actors": [{"client_id": "spiffe://evil.example.com/agent/reviewer-general"}]},
	)
	not d.allow
}

test_an_actor_without_client_id_is_unknown if {
	d := actbridge.decision with input as object.union(
		request("alice", [], "/summaries"),
		{"actors": [{"sub": "reviewer-general"}]},
	)
	not d.allow
}

test_groups_that_are_not_departments_grant_nothing if {
	d := actbridge.decision with input as object.union(
		request("alice", [], "/summaries"),
		{"user": {"sub": "x", "username": "mallory", "groups": ["everything", "root"]}},
	)
	not d.allow
	d.reason == "the user has no permissions"
}

test_with_data_permissions_an_unknown_user_has_none if {
	d := actbridge.decision with input as object.union(
		request("alice", [], "/summaries"),
		{"user": {"sub": "x", "username": "mallory", "groups": ["engineering"]}},
	)
		with data.world.settings.user_permissions as "data"
	not d.allow
}

test_with_data_permissions_the_token_groups_are_ignored if {
	d := actbridge.decision with input as object.union(
		request("david", [], "/summaries"),
		{"user": {"sub": "x", "username": "david", "groups": ["engineering", "finance", "hr"]}},
	)
		with data.world.settings.user_permissions as "data"
	d.grant == ["engineering"]
}

# Multi-department documents are all-of: DOC-005 (finance, engineering).
test_doc_005_needs_both_departments if {
	decide("alice", ["summarizer-tech"], "/documents/DOC-005").allow
	not decide("alice", ["reviewer-ops"], "/documents/DOC-005").allow
	not decide("bob", ["summarizer-tech"], "/documents/DOC-005").allow
}

test_doc_006_needs_admin_and_finance if {
	decide("bob", ["reviewer-general"], "/documents/DOC-006").allow
	not decide("bob", ["reviewer-ops"], "/documents/DOC-006").allow
	not decide("alice", ["reviewer-general"], "/documents/DOC-006").allow
}

test_the_public_document_needs_a_non_empty_grant if {
	decide("david", ["reviewer-ops"], "/documents/DOC-007").allow
	decide("carol", ["summarizer-hr"], "/documents/DOC-007").allow
	not decide("carol", ["summarizer-tech"], "/documents/DOC-007").allow
}

test_single_department_documents if {
	decide("carol", ["summarizer-hr"], "/documents/DOC-004").allow
	not decide("alice", ["reviewer-general"], "/documents/DOC-004").allow
	d := decide("david", ["reviewer-general"], "/documents/DOC-002")
	not d.allow
	d.reason == "DOC-002 needs every one of its departments in the grant"
}

test_an_unknown_document_is_refused if {
	not decide("alice", ["summarizer-tech"], "/documents/DOC-999").allow
}

test_documents_are_read_only if {
	d := actbridge.decision with input as object.union(
		request("alice", ["summarizer-tech"], "/documents/DOC-001"),
		{"method": "DELETE", "action": "delete"},
	)
	not d.allow
	d.reason == "documents can only be read (GET or HEAD)"
}

# Objects through the aws_sts backend: the same all-of rule, and the exclusions the
# session policy turns into explicit denies.
object_request(user, chain, action, key) := object.union(request(user, chain, "/"), {
	"direction": "outbound",
	"route": "documents-s3",
	"backend": "aws_sts",
	"action": action,
	"resource": split(key, "/"),
})

decide_object(user, chain, action, key) := d if {
	d := actbridge.decision with input as object_request(user, chain, action, key)
}

test_an_object_is_read_under_the_all_of_rule if {
	decide_object("alice", ["summarizer-tech"], "read", "engineering/budget.md").allow
	d := decide_object("alice", ["reviewer-ops"], "read", "engineering/budget.md")
	not d.allow
	d.reason == "DOC-005 needs every one of its departments in the grant"
	decide_object("alice", ["reviewer-ops"], "read", "engineering/roadmap.md").allow
}

test_objects_that_are_not_documents_are_left_to_the_prefixes if {
	decide_object("david", ["reviewer-ops"], "read", "engineering/notes/new.md").allow
	decide_object("david", ["reviewer-ops"], "list", "engineering").allow
}

test_exclude_lists_the_documents_the_grant_cannot_read if {
	decide_object("alice", ["reviewer-ops"], "read", "engineering/roadmap.md").exclude == [
		"admin/compliance-audit.md",
		"admin/policies.md",
		"engineering/budget.md",
		"finance/q4-report.md",
		"hr/guidelines.md",
	]
	decide_object("alice", ["summarizer-tech"], "read", "finance/q4-report.md").exclude == [
		"admin/compliance-audit.md",
		"admin/policies.md",
		"hr/guidelines.md",
	]
}

test_exclude_is_empty_for_other_backends if {
	decide("alice", ["reviewer-ops"], "/summaries").exclude == []
}

test_an_empty_object_grant_is_refused_before_any_backend if {
	d := decide_object("carol", ["summarizer-tech"], "read", "hr/guidelines.md")
	not d.allow
	d.reason == "the user and the agents acting for them share no permission"
}

# Request shapes (decision.rego, documents.rego): the documents namespace is default-deny,
# inbound and on the document route alike; a shape no rule knows is refused.
action_of(method) := "read" if {
	method in {"GET", "HEAD", "OPTIONS"}
} else := "delete" if {
	method == "DELETE"
} else := "write"

# `method path` inbound, as the document service's (or the agent's) sidecar asks.
inbound(user, chain, method, path) := object.union(request(user, chain, path), {
	"method": method,
	"action": action_of(method),
})

# `method path` on the outbound exchange route `route`.
outbound(user, chain, route, method, path) := object.union(inbound(user, chain, method, path), {
	"direction": "outbound",
	"route": route,
	"backend": "token_exchange",
})

decide_in(method, path) := d if {
	d := actbridge.decision with input as inbound("alice", ["summarizer-tech"], method, path)
}

decide_out(route, method, path) := d if {
	d := actbridge.decision with input as outbound("alice", ["summarizer-tech"], route, method, path)
}

refused_with(d, reason) if {
	not d.allow
	d.reason == reason
	d.grant == []
}

test_the_two_documents_shapes_are_allowed_with_get_and_head if {
	every method in ["GET", "HEAD"] {
		every path in ["/documents", "/documents/DOC-001", "/documents/DOC-005", "/documents/"] {
			d := decide_in(method, path)
			d.allow
			d.grant == ["engineering", "finance"]
			decide_out("document-service", method, path).allow
		}
	}
}

test_the_list_needs_only_a_grant if {
	decide("carol", ["summarizer-hr"], "/documents").allow
	refused_with(
		decide("carol", ["summarizer-tech"], "/documents"),
		"the user and the agents acting for them share no permission",
	)
}

test_the_namespace_spelled_another_way_is_refused if {
	every path in [
		"/Documents/DOC-004",
		"/DOCUMENTS/DOC-004",
		"/Documents/DOC-001",
		"/documentS",
		"/documents./DOC-004",
		"/documents /DOC-004",
		"/documents.json",
		"/documents.json/DOC-004",
		"/documentſ/DOC-004",
	] {
		refused_with(decide_in("GET", path), "the documents path must be spelled exactly /documents")
		refused_with(
			decide_out("document-service", "GET", path),
			"the documents path must be spelled exactly /documents",
		)
	}
}

test_extra_segments_under_documents_are_refused if {
	every path in [
		"/documents/DOC-004/content",
		"/documents/DOC-001/content",
		"/documents/DOC-001/DOC-004",
		"/documents/engineering/roadmap.md",
	] {
		refused_with(decide_in("GET", path), "documents are served only at /documents and /documents/<id>")
		refused_with(
			decide_out("document-service", "GET", path),
			"documents are served only at /documents and /documents/<id>",
		)
	}
}

test_every_method_but_get_and_head_is_refused_on_documents if {
	every case in [
		["DELETE", "/Documents/DOC-001"],
		["DELETE", "/documents/DOC-001"],
		["POST", "/documents"],
		["POST", "/documents/DOC-001"],
		["PUT", "/documents/DOC-001"],
		["PATCH", "/documents/DOC-001"],
		["OPTIONS", "/documents/DOC-001"],
	] {
		refused_with(decide_in(case[0], case[1]), "documents can only be read (GET or HEAD)")
		refused_with(
			decide_out("document-service", case[0], case[1]),
			"documents can only be read (GET or HEAD)",
		)
	}
}

test_only_exact_known_ids_are_documents if {
	every path in ["/documents/DOC-999", "/documents/doc-001", "/documents/DOC-001.", "/documents/DOC-001.json"] {
		refused_with(decide_in("GET", path), "the document is not known")
		refused_with(decide_out("document-service", "GET", path), "the document is not known")
	}
}

test_the_document_route_carries_only_the_documents_shapes if {
	every path in ["/", "/DOC-003", "/admin", "/api/documents/DOC-004"] {
		refused_with(decide_out("document-service", "GET", path), "no rule allows this request shape")
	}
}

test_an_exchange_route_the_world_does_not_list_has_no_shape if {
	refused_with(decide_out("paste-service", "GET", "/documents/DOC-001"), "no rule allows this request shape")
	refused_with(decide_out("paste-service", "POST", "/exfiltrate"), "no rule allows this request shape")
}

test_a_backend_the_policy_does_not_know_has_no_shape if {
	d := actbridge.decision with input as object.union(
		outbound("alice", ["summarizer-tech"], "ftp", "GET", "/x"),
		{"backend": "ftp"},
	)
	refused_with(d, "no rule allows this request shape")
}

test_inbound_paths_outside_documents_are_the_apps_own_endpoints if {
	every path in ["/summaries", "/summarize/DOC-004", "/tool/run", "/", "/documentsearch", "/api/documents/DOC-004"] {
		d := decide_in("GET", path)
		d.allow
		d.grant == ["engineering", "finance"]
	}
	decide_in("POST", "/tool/run").allow
}

test_an_empty_grant_is_still_the_first_reason if {
	d := actbridge.decision with input as inbound("carol", ["summarizer-tech"], "DELETE", "/Documents/DOC-004")
	refused_with(d, "the user and the agents acting for them share no permission")
}

test_credential_backends_are_not_judged_as_document_paths if {
	# S3 object keys are keys: "documents/DOC-004" is no document's key.
	decide_object("david", ["reviewer-ops"], "read", "documents/DOC-004").allow
	# A GitHub repository named like the namespace.
	github := object.union(
		outbound("alice", ["summarizer-tech"], "github", "GET", "/repos/demo-org/Documents/contents/README.md"),
		{"backend": "github_app", "resource": ["Documents", "contents", "README.md"]},
	)
	d := actbridge.decision with input as github
	d.allow
}

test_vend_requests_are_judged_on_the_grant if {
	every backend in ["aws_sts", "github_app", "ssh_cert", "postgres"] {
		vend := object.union(
			outbound("alice", ["summarizer-tech"], "credentials", "POST", "/credentials"),
			{"backend": backend, "action": "read", "resource": []},
		)
		d := actbridge.decision with input as vend
		d.allow
		d.grant == ["engineering", "finance"]
	}
}

test_an_a2a_agent_card_passes_only_on_a_route_listed_as_a2a if {
	card := outbound("alice", ["summarizer-tech"], "reviewer-ops", "GET", "/.well-known/agent-card.json")
	unlisted := actbridge.decision with input as card
	refused_with(unlisted, "no rule allows this request shape")
	listed := actbridge.decision with input as card with data.world.routes as {"reviewer-ops": "a2a"}
	listed.allow
	post := object.union(card, {"method": "POST", "action": "write"})
	no_message := actbridge.decision with input as post with data.world.routes as {"reviewer-ops": "a2a"}
	refused_with(no_message, "no rule allows this request shape")
}

test_a_route_kind_applies_outbound_only if {
	# An inbound request is never judged by a route's kind, whatever its route field says.
	d := actbridge.decision with input as object.union(
		inbound("alice", ["summarizer-tech"], "GET", "/DOC-003"),
		{"route": "document-service"},
	)
	d.allow
}

test_a2a_messages_are_judged_on_the_grant if {
	d := actbridge.decision with input as object.union(
		outbound("alice", ["summarizer-tech"], "reviewer-ops", "POST", "/"),
		{"a2a": {"method": "message/send", "known": true, "agent": "spiffe://demo.example.com/agent/reviewer-ops"}},
	)
	d.allow
}
