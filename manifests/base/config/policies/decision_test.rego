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

request(user, chain, path) := {
	"direction": "inbound",
	"route": "inbound",
	"method": "GET",
	"action": "read",
	"path": path,
	"resource": [s | some s in split(trim_prefix(path, "/"), "/")],
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
	d.reason == "documents can only be read"
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
