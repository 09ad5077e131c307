//! Envoy's outbound routes, generated from actbridge's route table, so that Envoy and
//! actbridge cannot disagree on where a request goes.
//!
//! Each actbridge route becomes one Envoy virtual host (its `host` as the domain) holding
//! one route of the same name; no-match falls to the route named [`DEFAULT_ROUTE`]. The
//! outbound ext_proc filter sends Envoy's choice (`request_attributes: xds.route_name,
//! xds.cluster_name`) and keeps it (`route_cache_action: RETAIN`), and actbridge refuses a
//! request whose Envoy route is not the route it judged, or whose cluster is not the
//! route's `cluster` (`pipeline/outbound.rs`). A credential therefore only ever leaves on
//! the route and cluster it was minted for — whatever the spelling of the authority.
//!
//! `actbridge envoy-routes --config FILE` prints the `route_config` for a config; the
//! shipped `envoy/sidecar.yaml` holds the one for `deploy/actbridge.yaml` (a test keeps
//! them equal), and the demo and the tests render theirs from the config they run.

use serde_json::{Value, json};

use crate::config::{RouteAction, RouteConfig, RouteTable};

/// The Envoy route (and virtual host) of requests no actbridge route matches.
pub const DEFAULT_ROUTE: &str = "default";

/// The cluster of Envoy's dynamic forward proxy: `passthrough` without a `cluster`, and
/// a default `passthrough`. Never a credential's.
pub const FORWARD_PROXY_CLUSTER: &str = "egress";

/// Addresses the forward proxy never dials: this host's loopback (Envoy's admin,
/// actbridge, the app), unspecified, link-local (cloud metadata services), and IPv4
/// mapped into IPv6.
pub const FORWARD_PROXY_DENIED: &[(&str, u32)] = &[
    ("0.0.0.0", 8),
    ("127.0.0.0", 8),
    ("169.254.0.0", 16),
    ("::", 128),
    ("::1", 128),
    ("::ffff:0:0", 96),
    ("fe80::", 10),
];

/// The outbound listener's `route_config` for `table`.
pub fn outbound_route_config(table: &RouteTable) -> Value {
    let mut virtual_hosts: Vec<Value> = table.routes.iter().map(virtual_host).collect();
    virtual_hosts.push(json!({
        "name": DEFAULT_ROUTE,
        "domains": ["*"],
        "routes": [route(DEFAULT_ROUTE, &table.default_action, None)],
    }));
    json!({
        "name": "outbound",
        // The port is not part of a destination (actbridge ignores it too).
        "ignore_port_in_host_matching": true,
        "virtual_hosts": virtual_hosts,
    })
}

fn virtual_host(r: &RouteConfig) -> Value {
    json!({
        "name": r.name,
        "domains": [r.host.envoy_domain()],
        "routes": [route(&r.name, &r.action, r.cluster.as_deref())],
    })
}

/// One Envoy route named `name`: to `cluster`, through the forward proxy, or answered
/// by Envoy itself when actbridge never lets the request go on (a `deny` route) or
/// answers it (`vend`).
fn route(name: &str, action: &RouteAction, cluster: Option<&str>) -> Value {
    let matching = json!({ "prefix": "/" });
    match (action, cluster) {
        (RouteAction::Deny, _) => json!({
            "name": name, "match": matching,
            "direct_response": { "status": 403 },
        }),
        (RouteAction::Vend { .. }, _) => json!({
            "name": name, "match": matching,
            "direct_response": { "status": 404 },
        }),
        (_, Some(cluster)) => json!({
            "name": name, "match": matching,
            "route": { "cluster": cluster },
        }),
        (_, None) => json!({
            "name": name, "match": matching,
            "route": { "cluster": FORWARD_PROXY_CLUSTER },
            "typed_per_filter_config": { "envoy.filters.http.rbac": forward_proxy_rbac() },
        }),
    }
}

/// The per-route RBAC of the forward proxy: deny when the address it resolved
/// (`save_upstream_address`) is one of [`FORWARD_PROXY_DENIED`].
fn forward_proxy_rbac() -> Value {
    let rules: Vec<Value> = FORWARD_PROXY_DENIED
        .iter()
        .map(|(prefix, len)| {
            json!({ "matcher": {
                "name": "envoy.rbac.matchers.upstream_ip_port",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.rbac.matchers.upstream_ip_port.v3.UpstreamIpPortMatcher",
                    "upstream_ip": { "address_prefix": prefix, "prefix_len": len },
                },
            }})
        })
        .collect();
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute",
        "rbac": { "rules": {
            "action": "DENY",
            "policies": { "forward-proxy-never-dials-the-pod": {
                "permissions": [{ "or_rules": { "rules": rules } }],
                "principals": [{ "any": true }],
            }},
        }},
    })
}

/// The `route_config` as YAML, for `actbridge envoy-routes`.
pub fn outbound_route_config_yaml(table: &RouteTable) -> String {
    serde_yaml_ng::to_string(&outbound_route_config(table)).unwrap_or_default()
}

#[cfg(test)]
mod tests;
