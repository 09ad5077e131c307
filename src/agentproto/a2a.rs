//! A2A (Agent2Agent protocol, JSON-RPC 2.0 binding): the methods recognised on
//! `protocol: a2a` routes. The policy sees the method and the agent called; an unknown
//! method is still judged (`known: false`), never guessed at.

/// Where an agent publishes its Agent Card (A2A specification §5.3, "well-known URI");
/// public by design, so actbridge lets it in without a token when configured.
pub const AGENT_CARD_PATH: &str = "/.well-known/agent-card.json";

/// The JSON-RPC methods of the A2A specification (v0.3).
pub const METHODS: &[&str] = &[
    "message/send",
    "message/stream",
    "tasks/get",
    "tasks/list",
    "tasks/cancel",
    "tasks/resubscribe",
    "tasks/pushNotificationConfig/set",
    "tasks/pushNotificationConfig/get",
    "tasks/pushNotificationConfig/list",
    "tasks/pushNotificationConfig/delete",
    "agent/getAuthenticatedExtendedCard",
];

/// Whether `method` is an A2A method.
pub fn is_method(method: &str) -> bool {
    METHODS.contains(&method)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_specification_methods_are_known_and_others_are_not() {
        assert!(super::is_method("message/send"));
        assert!(super::is_method("tasks/get"));
        assert!(!super::is_method("tools/call"));
        assert!(!super::is_method("message/Send"));
    }
}
