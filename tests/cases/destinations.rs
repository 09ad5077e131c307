//! The destination actbridge judges is the destination Envoy sends to: a differential
//! test through the real Envoy. The agent sends a generated corpus of authority spellings
//! (case, ports, trailing dots, userinfo, commas, two `Host` headers, absolute-form URIs,
//! IP literals, `localhost` names, Envoy's admin port; over HTTP/1.1 and as HTTP/2
//! `:authority` with a `host` header) to its outbound listener. Recording listeners stand
//! in for the document service (the one credential route's cluster) and for an attacker
//! on loopback; the sidecar's default is `passthrough`, so the forward proxy is in play.
//! For every request: the attacker receives nothing, the document service receives only
//! a token exchanged for it (never the agent's own), and nothing reaches Envoy's admin.

use std::collections::BTreeMap;

use crate::support::echo::Echo;
use crate::support::net::raw_http;
use crate::support::world::{AGENT, DOCUMENT_SERVICE, Sts, World, claims_of, sidecar_head};

fn config(sts: &Sts) -> String {
    sidecar_head(sts, AGENT)
        + &format!(
            r#"outbound:
  token_endpoint: {token}
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_basic, secret: summarizer-tech-demo-secret}}
  default_action: passthrough
  routes:
    - name: document-service
      host: document-service
      cluster: document_service
      action: exchange
      audience: "{DOCUMENT_SERVICE}"
      scopes: [documents.read]
    - name: open
      host: open.example
      action: passthrough
      forward_authorization: true
"#,
            token = sts.service.token_endpoint(),
        )
}

/// Authority spellings aimed at the document service, the attacker and Envoy's admin.
fn authorities(attacker: u16, docs: u16, admin: u16) -> Vec<String> {
    let mut out = Vec::new();
    for host in [
        "document-service",
        "Document-Service",
        "DOCUMENT-SERVICE",
        "document-service.",
        "document-servicex",
        "xdocument-service",
        "document-service.localhost",
        "document-service-evil.localhost",
        "localhost",
        "127.0.0.1",
        "127.1",
        "0.0.0.0",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "169.254.169.254",
        "open.example",
        "open.example.localhost",
    ] {
        out.push(host.to_string());
        for port in [attacker, docs, admin, 80] {
            out.push(format!("{host}:{port}"));
        }
    }
    for odd in [
        format!("document-service@127.0.0.1:{attacker}"),
        format!("user:pw@document-service:{attacker}"),
        format!("document-service,127.0.0.1:{attacker}"),
        format!("127.0.0.1:{attacker},document-service"),
        "document-service:".to_string(),
        "document-service:http".to_string(),
        "document-service:99999".to_string(),
        format!("document-service:+{attacker}"),
        format!("document-service:{attacker}/x"),
        format!("document-service%2elocalhost:{attacker}"),
        format!("document-service\t:{attacker}"),
    ] {
        out.push(odd);
    }
    out
}

/// Everything a request could look like on the wire, for one authority.
fn requests(authority: &str, attacker: u16, token: &str) -> Vec<Vec<u8>> {
    let auth = format!("authorization: Bearer {token}\r\n");
    let tail = format!("{auth}connection: close\r\n\r\n");
    vec![
        format!("GET /steal HTTP/1.1\r\nhost: {authority}\r\n{tail}"),
        // Two Host headers, both orders.
        format!("GET /steal HTTP/1.1\r\nhost: {authority}\r\nhost: 127.0.0.1:{attacker}\r\n{tail}"),
        format!("GET /steal HTTP/1.1\r\nhost: 127.0.0.1:{attacker}\r\nhost: {authority}\r\n{tail}"),
        // Absolute-form URIs, with the Host header agreeing or not.
        format!("GET http://{authority}/steal HTTP/1.1\r\nhost: document-service\r\n{tail}"),
        format!("GET http://127.0.0.1:{attacker}/steal HTTP/1.1\r\nhost: {authority}\r\n{tail}"),
        format!("GET http://{authority}/steal HTTP/1.1\r\nhost: {authority}\r\n{tail}"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

/// One HTTP/2 request with `:authority` = `authority` and a `host` header = `host`.
async fn h2(outbound: u16, authority: &str, host: &str, token: &str) -> Option<u16> {
    let Ok(url) = reqwest::Url::parse(&format!("http://{authority}/steal")) else {
        return None;
    };
    let target = url.host_str()?.trim_matches(['[', ']']).to_string();
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .resolve(&target, ([127, 0, 0, 1], outbound).into())
        .build()
        .ok()?;
    // The URL's port (if any) is replaced by the listener's: the :authority keeps it.
    let mut to = url.clone();
    to.set_port(Some(outbound)).ok()?;
    let mut req = client.get(to).bearer_auth(token);
    if !host.is_empty() {
        req = req.header("host", host);
    }
    req.send().await.ok().map(|r| r.status().as_u16())
}

async fn admin_requests(world: &World) -> u64 {
    world.envoy.stat("http.admin.downstream_rq_total").await
}

#[tokio::test]
async fn a_credential_goes_only_where_the_judged_route_leads_whatever_the_authority() {
    let sts = Sts::start().await;
    let config = config(&sts);
    let world = World::start_with(sts, &config).await;
    let attacker = Echo::start().await;
    let token = world.sts.alice_delegated().await;
    let admin = world.envoy.admin_port;
    let outbound = world.envoy.outbound_port;
    let admin_before = admin_requests(&world).await;

    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut sent = 0;
    for authority in authorities(attacker.port, world.docs.port, admin) {
        for req in requests(&authority, attacker.port, &token) {
            let status = raw_http(outbound, &req).await.map(|(s, _)| s);
            *statuses.entry(format!("{status:?}")).or_default() += 1;
            sent += 1;
        }
        for host in ["", "127.0.0.1", "document-service"] {
            let status = h2(outbound, &authority, host, &token).await;
            *statuses.entry(format!("h2 {status:?}")).or_default() += 1;
            sent += 1;
        }
    }
    eprintln!("{sent} requests: {statuses:?}");

    // The attacker received nothing at all: not a credential, not even the request.
    assert_eq!(
        attacker.seen().len(),
        0,
        "the attacker received: {:?}",
        attacker
            .seen()
            .iter()
            .map(|s| (s.path.clone(), s.header("authorization").is_some()))
            .collect::<Vec<_>>()
    );
    // Envoy's admin was never reached (the one request after is this read).
    assert!(admin_requests(&world).await <= admin_before + 1);
    // The document service received only tokens exchanged for it, never the agent's.
    let seen = world.docs.seen();
    assert!(
        !seen.is_empty(),
        "no spelling reached the document service: vacuous"
    );
    for s in &seen {
        let Some(auth) = s.header("authorization") else {
            continue;
        };
        let issued = auth.strip_prefix("Bearer ").unwrap();
        assert_ne!(
            issued, token,
            "the agent's own token reached the document service"
        );
        assert_eq!(claims_of(issued)["aud"], DOCUMENT_SERVICE, "{s:?}");
    }
    // The forward proxy refused loopback itself (the RBAC rule, not a failed lookup).
    assert!(world.envoy.stat("http.outbound.rbac.denied").await > 0);
}
