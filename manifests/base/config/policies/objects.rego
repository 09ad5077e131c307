# Objects in the document bucket, reached through a credential backend (`aws_sts`): the
# request names an object key (`input.resource` = its segments) or a list prefix.
#
# The same all-of rule as documents.rego, so the two paths agree: a document's object
# may be read only when every one of its departments is in the grant. The grant gives
# the prefixes a session may reach (the department is the first path segment); the
# documents under those prefixes that the grant still cannot read are `exclude`d, and the
# session policy denies them explicitly, so AWS enforces the all-of rule too.
package actbridge

import rego.v1

object_backend if input.backend == "aws_sts"

object_key := concat("/", input.resource) if {
	object_backend
	input.action == "read"
	count(input.resource) > 0
}

object_document := id if {
	some id, doc in world.documents
	doc.key == object_key
}

readable(doc) if {
	every d in doc.departments {
		d in grant
	}
}

object_refusal := sprintf("%s needs every one of its departments in the grant", [object_document]) if {
	not readable(world.documents[object_document])
}

# The documents this grant cannot read, as object keys.
exclude contains doc.key if {
	object_backend
	some doc in world.documents
	not readable(doc)
}
