# Documents: a request for /documents/<id> is judged per document, not per prefix.
#
# A document is readable when every one of its departments is in the grant (all-of):
# DOC-005 (finance, engineering) needs both, so a finance-only grant cannot read the
# engineering budget it sits next to. A public document (no departments) needs only a
# non-empty grant — every request does, since an empty grant is refused before this.
package actbridge

import rego.v1

document_request if {
	count(input.resource) == 2
	input.resource[0] == "documents"
}

document_id := input.resource[1] if document_request

document := world.documents[document_id]

document_readable if {
	every d in document.departments {
		d in grant
	}
}

document_refusal := "the document is not known" if {
	document_request
	not document
} else := "documents can only be read" if {
	document_request
	input.action != "read"
} else := sprintf("%s needs every one of its departments in the grant", [document_id]) if {
	document_request
	not document_readable
}
