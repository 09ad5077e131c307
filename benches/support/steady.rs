//! The steady state both request-path benches measure: the embedded token service on
//! loopback, alice's token for summarizer-tech, and one inbound request carrying it (and
//! a `traceparent`).

use std::sync::Arc;

use actbridge::pipeline::RequestFacts;
use actbridge_sts::{Realm, TokenService};

pub const AGENT: &str = "spiffe://demo.example.com/agent/summarizer-tech";

/// The embedded token service on loopback, and alice's token for summarizer-tech.
pub fn token_service(rt: &tokio::runtime::Runtime) -> (Arc<TokenService>, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let realm = Realm::from_yaml_file(std::path::Path::new(&format!("{root}/demo/realm.yaml")))
        .expect("demo realm");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let sts = TokenService::new(realm, &url, None).unwrap();
        tokio::spawn(
            sts.clone()
                .serve(listener, tokio_util::sync::CancellationToken::new()),
        );
        let body: serde_json::Value = reqwest::Client::new()
            .post(sts.token_endpoint())
            .form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice123"),
                // The demo's front end: no agent's client logs a user in.
                ("client_id", "agent-portal"),
                ("client_secret", "agent-portal-demo-secret"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = body["access_token"].as_str().expect("a token").to_string();
        (sts, token)
    })
}

/// alice's GET of DOC-001 into summarizer-tech's pod, with `token`.
#[allow(dead_code)] // not every bench uses it
pub fn inbound_request(token: &str) -> RequestFacts {
    inbound_request_traced(
        token,
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
}

/// As [`inbound_request`], carrying `traceparent`.
#[allow(dead_code)] // not every bench uses it
pub fn inbound_request_traced(token: &str, traceparent: &str) -> RequestFacts {
    let bearer = format!("Bearer {token}");
    RequestFacts::new(
        Some("inbound"),
        [
            (":authority", "summarizer-tech"),
            (":method", "GET"),
            (":path", "/documents/DOC-001"),
            ("authorization", bearer.as_str()),
            ("traceparent", traceparent),
        ]
        .into_iter()
        .map(|(k, v): (&str, &str)| (k.to_string(), v.as_bytes().to_vec()))
        .collect(),
    )
    .unwrap()
}
