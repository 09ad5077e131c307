# Documents: the document service's namespace, default-deny. Exactly two request shapes
# are documents' (request_shape "documents", decision.rego says which requests get it):
#
#   GET|HEAD /documents        the list (on the grant alone: the service lists what the
#                              grant covers)
#   GET|HEAD /documents/<id>   one document, judged per document: <id> is a key of
#                              world.documents, spelled exactly
#
# Anything else there is refused with its reason: another method, the namespace spelled
# another way (`/Documents`, `/DOCUMENTS`, `/documents.json`: a case-insensitive or
# suffix-stripping server would serve them), extra segments (`/documents/DOC-004/content`),
# an unknown id — and, on a document route, a path outside the namespace.
#
# A document is readable when every one of its departments is in the grant (all-of):
# DOC-005 (finance, engineering) needs both, so a finance-only grant cannot read the
# engineering budget it sits next to. A public document (no departments) needs only a
# non-empty grant — every request does, since an empty grant is refused before this.
package actbridge

import rego.v1

# A first path segment that a lenient server could read as "documents": any case (the
# upper-then-lower fold also catches `ſ`, which upper-cases to `S`), and any suffix that
# does not continue the word (`documents.`, `documents ` as Windows servers drop them,
# `documents.json` as format suffixes are read).
documents_namespace if {
	count(input.resource) > 0
	folded := lower(upper(input.resource[0]))
	regex.match(`^documents([^a-z0-9_-]|$)`, folded)
}

documents_shape_refusal := "no rule allows this request shape" if {
	not documents_namespace
} else := "documents can only be read (GET or HEAD)" if {
	not input.method in {"GET", "HEAD"}
} else := "the documents path must be spelled exactly /documents" if {
	input.resource[0] != "documents"
} else := "documents are served only at /documents and /documents/<id>" if {
	count(input.resource) > 2
}

# GET|HEAD /documents/<id>, once the shape is known to be a documents one.
document_request if {
	request_shape == "documents"
	count(input.resource) == 2
	input.resource[0] == "documents"
}

document_id := input.resource[1] if document_request

document := world.documents[document_id]

document_refusal := "the document is not known" if {
	document_request
	not document
} else := sprintf("%s needs every one of its departments in the grant", [document_id]) if {
	document_request
	not readable(document)
}
