//! The agent-protocol keys: `protocol`, `max_body_bytes`, `tool_scope` on routes, and
//! inbound `protected_resource`, `public_agent_card`, `single_use_scopes`.

use super::{MINIMAL, env, err, outbound};
use crate::config::{Config, RouteAction, RouteProtocol};

fn route(extra: &str) -> String {
    outbound(&format!(
        "  routes:\n    - {{host: 'mcp', cluster: mcp, action: exchange, audience: mcp{extra}}}\n"
    ))
}

fn protocol(extra: &str) -> RouteProtocol {
    let c = Config::from_yaml(&route(extra), &env()).unwrap();
    match &c.outbound.unwrap().routes[0].action {
        RouteAction::Exchange { protocol, .. } => protocol.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn routes_speak_http_unless_told_and_mcp_gets_safe_defaults() {
    assert_eq!(protocol(""), RouteProtocol::Http);
    assert_eq!(
        protocol(", protocol: mcp"),
        RouteProtocol::Mcp {
            max_body_bytes: 1 << 20,
            tool_scope: "mcp:{tool}".into()
        }
    );
    assert_eq!(
        protocol(", protocol: a2a, max_body_bytes: 4096"),
        RouteProtocol::A2a {
            max_body_bytes: 4096
        }
    );
}

#[test]
fn agent_protocol_mistakes_name_their_key() {
    let cases = [
        (route(", protocol: grpc"), "outbound.routes[0].protocol"),
        (
            route(", max_body_bytes: 10"),
            "outbound.routes[0].max_body_bytes",
        ),
        (
            route(", protocol: mcp, max_body_bytes: 0"),
            "outbound.routes[0].max_body_bytes",
        ),
        (
            route(", protocol: mcp, max_body_bytes: 9000000000"),
            "outbound.routes[0].max_body_bytes",
        ),
        (
            route(", protocol: a2a, tool_scope: 'x:{tool}'"),
            "outbound.routes[0].tool_scope",
        ),
        (
            route(", protocol: mcp, tool_scope: fixed"),
            "outbound.routes[0].tool_scope",
        ),
        (
            outbound("  routes:\n    - {host: 'x', action: passthrough, protocol: mcp}\n"),
            "outbound.routes[0].protocol",
        ),
        (
            format!(
                "{MINIMAL}inbound:\n  protected_resource: {{resource: 'http://mcp.example.com/mcp', authorization_servers: [https://as]}}\n"
            ),
            "inbound.protected_resource.resource",
        ),
        (
            format!(
                "{MINIMAL}inbound:\n  protected_resource: {{resource: 'https://mcp.example.com/mcp', authorization_servers: []}}\n"
            ),
            "inbound.protected_resource.authorization_servers",
        ),
        (
            format!("{MINIMAL}inbound:\n  single_use_scopes: ['mcp:[']\n"),
            "inbound.single_use_scopes[0]",
        ),
    ];
    for (yaml, key) in cases {
        assert_eq!(err(&yaml).key(), Some(key), "{yaml}");
    }
}

#[test]
fn protected_resource_metadata_follows_rfc_9728() {
    let c = Config::from_yaml(
        &format!("{MINIMAL}inbound:\n  protected_resource:\n    resource: https://mcp.example.com/tools/mcp/\n    authorization_servers: [https://sso.example.com/realms/demo]\n"),
        &env(),
    )
    .unwrap();
    let pr = c.inbound.protected_resource.unwrap();
    assert_eq!(
        pr.paths,
        [
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/tools/mcp"
        ]
    );
    assert_eq!(
        pr.metadata_url,
        "https://mcp.example.com/.well-known/oauth-protected-resource/tools/mcp"
    );
    assert_eq!(
        pr.document,
        serde_json::json!({
            "resource": "https://mcp.example.com/tools/mcp/",
            "authorization_servers": ["https://sso.example.com/realms/demo"],
            "bearer_methods_supported": ["header"],
        })
    );
    assert!(!c.inbound.public_agent_card);
}
