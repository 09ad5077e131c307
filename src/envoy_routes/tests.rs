use super::*;
use crate::config::route_table_from_yaml;

const CONFIG: &str = r#"
listen: {ext_proc: "tcp://127.0.0.1:9001"}
issuers: [{issuer: "http://idp/realms/demo", audiences: [a]}]
outbound:
  token_endpoint: http://idp/realms/demo/protocol/openid-connect/token
  client: {client_id: a, auth: {method: client_secret_post, secret_env: UNSET}}
  routes:
    - {name: docs, host: Document-Service, cluster: document_service, action: exchange, audience: d}
    - {name: s3-buckets, host: "*.s3.example.com", cluster: aws_s3, action: credential, credential: s3, mode: sign}
    - {name: out, host: paste.example, action: passthrough}
    - {name: nope, host: blocked.example, action: deny}
    - {name: credentials, host: credentials.local, action: vend, services: {s3: s3}}
credentials:
  - name: s3
    aws_sts: {role_arn: "arn:aws:iam::1:role/r", region: us-east-1, bucket: b}
"#;

fn generated(yaml: &str) -> Value {
    outbound_route_config(&route_table_from_yaml(yaml).unwrap().unwrap())
}

#[test]
fn every_route_is_one_virtual_host_with_one_route_of_its_name() {
    // Only the routes are read: the unset secret variable does not matter here.
    let yaml = CONFIG.to_string();
    let rc = generated(&yaml);
    assert_eq!(rc["ignore_port_in_host_matching"], true);
    let hosts = rc["virtual_hosts"].as_array().unwrap();
    let summary: Vec<(String, String, String)> = hosts
        .iter()
        .map(|v| {
            let route = &v["routes"][0];
            assert_eq!(route["name"], v["name"]);
            (
                v["name"].as_str().unwrap().to_string(),
                v["domains"][0].as_str().unwrap().to_string(),
                route["route"]["cluster"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("direct {}", route["direct_response"]["status"])),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        summary,
        vec![
            s("docs", "document-service", "document_service"),
            s("s3-buckets", "*.s3.example.com", "aws_s3"),
            s("out", "paste.example", FORWARD_PROXY_CLUSTER),
            s("nope", "blocked.example", "direct 403"),
            s("credentials", "credentials.local", "direct 404"),
            s(DEFAULT_ROUTE, "*", "direct 403"),
        ]
    );
    // Only the forward proxy route carries the deny list, and it holds loopback.
    assert!(
        hosts[0]["routes"][0]
            .get("typed_per_filter_config")
            .is_none()
    );
    let rbac = &hosts[2]["routes"][0]["typed_per_filter_config"]["envoy.filters.http.rbac"];
    let rules = rbac["rbac"]["rules"]["policies"]["forward-proxy-never-dials-the-pod"]
        ["permissions"][0]["or_rules"]["rules"]
        .as_array()
        .unwrap();
    assert!(
        rules.iter().any(|r| {
            r["matcher"]["typed_config"]["upstream_ip"]["address_prefix"] == "127.0.0.0"
        })
    );
    assert_eq!(rbac["rbac"]["rules"]["action"], "DENY");
}

#[test]
fn a_default_passthrough_goes_through_the_guarded_forward_proxy() {
    let yaml = CONFIG
        .replace(", key_file_never_read: x", "")
        .replace("  routes:", "  default_action: passthrough\n  routes:");
    let rc = generated(&yaml);
    let default = rc["virtual_hosts"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        default["routes"][0]["route"]["cluster"],
        FORWARD_PROXY_CLUSTER
    );
    assert!(default["routes"][0]["typed_per_filter_config"].is_object());
}

#[test]
fn route_tables_that_could_disagree_with_envoy_are_refused() {
    let base = CONFIG.to_string();
    for (from, to, key) in [
        (
            "host: Document-Service,",
            "host: \"document-service*\",",
            "outbound.routes[0].host",
        ),
        (
            "host: Document-Service,",
            "host: \"document-service:8080\",",
            "outbound.routes[0].host",
        ),
        (
            "cluster: document_service, ",
            "",
            "outbound.routes[0].cluster",
        ),
        (
            "cluster: document_service",
            "cluster: egress",
            "outbound.routes[0].cluster",
        ),
        ("name: out,", "name: docs,", "outbound.routes[2].name"),
        ("name: out,", "name: default,", "outbound.routes[2].name"),
        (
            "host: paste.example",
            "host: DOCUMENT-SERVICE",
            "outbound.routes[2].host",
        ),
        (
            "action: deny}",
            "action: deny, cluster: x}",
            "outbound.routes[3].cluster",
        ),
    ] {
        let yaml = base.replace(from, to);
        assert_ne!(yaml, base, "{from}");
        let err = route_table_from_yaml(&yaml).unwrap_err();
        assert_eq!(err.key(), Some(key), "{to}: {err}");
    }
}
