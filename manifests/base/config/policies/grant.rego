# The permission intersection: what the user may do ∩ what every agent in the delegation
# chain may do. Agents can only reduce a user's permissions, never expand them.
package actbridge

import rego.v1

world := data.world

# The user's permissions, from the one source `world.settings.user_permissions` names.
user_permissions contains d if {
	world.settings.user_permissions == "token"
	some d in input.user.groups
	d in world.departments
}

user_permissions contains d if {
	world.settings.user_permissions == "data"
	some d in world.users[input.user.username].departments
}

# An agent is known only by its exact client_id (its SPIFFE ID, trust domain included).
agent_record(actor) := world.agents[actor.client_id]

unknown_agents := [a | some a in input.actors; not agent_record(a)]

# Each department the user has and every agent in the chain has. With no agent in the
# chain (the user's own token) it is the user's permissions.
grant contains d if {
	some d in user_permissions
	every actor in input.actors {
		d in agent_record(actor).capabilities
	}
}
