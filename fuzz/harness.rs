//! The fuzz entry points, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and by
//! the seed replay in `cargo test` (`tests/cases/fuzz_seeds.rs`), so that every committed
//! seed — and every crash found and committed — runs through exactly the same code.
//!
//! One process-wide world: the embedded token service (the demo realm, a fixed test key
//! in `fuzz/issuer-key.pem`, issuer `http://idp.fuzz.local/realms/actbridge`) served on a free
//! loopback port, and a pipeline configured as summarizer-tech's sidecar with the demo
//! policy, its keys loaded from that service. Only the public library API is used.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use actbridge::config::Config;
use actbridge::credentials::Credentials;
use actbridge::jwt::AudienceProfile;
use actbridge::pipeline::{Decision, Pipeline, RequestFacts};
use actbridge::policy::PolicyEngine;
use actbridge::state::{DenyList, State};
use actbridge_sts::{Realm, TokenService};
use serde_json::{Value, json};

/// The agent whose sidecar is fuzzed.
pub const AGENT: &str = "spiffe://demo.example.com/agent/summarizer-tech";
/// The issuer of every token the harness signs.
pub const ISSUER: &str = "http://idp.fuzz.local/realms/actbridge";
/// In a `request` input, replaced by a valid token of alice delegated to the agent.
pub const GOOD_TOKEN_MARK: &[u8] = b"$GOOD";

/// The process-wide world (built on first use).
pub struct World {
    rt: tokio::runtime::Runtime,
    sts: Arc<TokenService>,
    pipeline: Pipeline,
    good_token: String,
}

/// The repository root (this file is `fuzz/harness.rs`; the including crate is either
/// the repository's own or the `fuzz/` crate).
pub fn repo_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    if dir.ends_with("fuzz") {
        dir.parent().unwrap().to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

fn sidecar_yaml(sts_port: u16, policies: &Path) -> String {
    let base = format!("http://127.0.0.1:{sts_port}/realms/actbridge/protocol/openid-connect");
    format!(
        r#"
listen:
  ext_proc: tcp://127.0.0.1:1
issuers:
  - issuer: {ISSUER}
    jwks_uri: {base}/certs
    audiences: ["{AGENT}"]
    jwks_min_refetch_interval: 1h
tokens:
  verified_cache_entries: 0
inbound:
  bypass_paths:
    - exact: /healthz
outbound:
  token_endpoint: {base}/token
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_basic, secret: summarizer-tech-demo-secret}}
  token_timeout: 2s
  routes:
    - name: document-service
      host: document-service
      cluster: document_service
      action: exchange
      audience: "spiffe://demo.example.com/service/document-service"
      scopes: [documents.read]
    - name: blocked
      host: blocked.example
      action: deny
    - name: plain
      host: plain.example
      action: passthrough
policy:
  dir: "{policies}"
"#,
        policies = policies.display()
    )
}

/// The world, built once per process.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let root = repo_root();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let realm = std::fs::read_to_string(root.join("demo/realm.yaml")).unwrap();
        let key = std::fs::read(root.join("fuzz/issuer-key.pem")).unwrap();
        let sts = TokenService::new(
            Realm::from_yaml_str(&realm).unwrap(),
            "http://idp.fuzz.local",
            Some(&key),
        )
        .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = sts.router();
        rt.spawn(async move { axum::serve(listener, app).await });
        let cfg = Config::from_yaml(
            &sidecar_yaml(port, &root.join("policies")),
            &HashMap::<String, String>::new(),
        )
        .unwrap();
        let policy = PolicyEngine::load_configured(cfg.policy.as_ref()).unwrap();
        let credentials = Arc::new(rt.block_on(Credentials::load(&cfg.credentials)));
        let revocations = Arc::new(DenyList::load(None).unwrap());
        let pipeline =
            Pipeline::new(&cfg, policy, credentials, &State::new(&cfg, revocations)).unwrap();
        rt.block_on(async {
            for store in pipeline.verifier().jwks_stores() {
                store.refresh().await.unwrap();
            }
        });
        let good_token = sts.sign_claims(&claims_with(json!({
            "act": {"sub": "sa-tech", "client_id": AGENT},
        })));
        World {
            rt,
            sts,
            pipeline,
            good_token,
        }
    })
}

fn now() -> u64 {
    actbridge::clock::now_secs()
}

/// alice's claims for the agent, valid for an hour, with `extra` merged over them.
fn claims_with(extra: Value) -> Value {
    let mut c = json!({
        "iss": ISSUER, "sub": "835414c6-012e-4647-8369-a9f46e3b9cad",
        "preferred_username": "alice", "groups": ["engineering", "finance"],
        "aud": AGENT, "azp": AGENT, "scope": "openid documents.read",
        "iat": now(), "exp": now() + 3600,
    });
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            c[&k] = v;
        }
    }
    c
}

/// Target `token`: the bytes as a presented bearer token (`$GOOD` stands for a valid
/// one, so mutations of a real token are explored), verified for each profile.
pub fn token(data: &[u8]) {
    let w = world();
    let Ok(token) = String::from_utf8(replace_mark(data, w.good_token.as_bytes())) else {
        return;
    };
    let verifier = w.pipeline.verifier();
    for profile in [AudienceProfile::Inbound, AudienceProfile::Outbound] {
        if let Ok(v) = w.rt.block_on(verifier.verify(&token, profile)) {
            assert_eq!(v.issuer, ISSUER);
            assert!(
                v.expires_at >= now().saturating_sub(60),
                "an expired token passed"
            );
        }
    }
}

/// Target `claims`: the bytes as JSON claims (an object is merged over alice's valid
/// claims; any other value becomes her `act`), signed by the issuer and verified: the
/// claim model and the `act` chain parser behind a valid signature.
pub fn claims(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let claims = match value {
        Value::Object(_) => claims_with(value),
        other => claims_with(json!({ "act": other })),
    };
    let w = world();
    let token = w.sts.sign_claims(&claims);
    if let Ok(v) = w.rt.block_on(
        w.pipeline
            .verifier()
            .verify(&token, AudienceProfile::Inbound),
    ) {
        assert!(v.actors.len() <= 10, "a chain over max_actor_chain passed");
        assert_eq!(v.issuer, ISSUER);
    }
}

/// Target `request`: the bytes as one request's headers, as Envoy would deliver them,
/// judged by the decision core. The first byte picks the direction (even: inbound, odd:
/// outbound); the rest is `name: value` lines (`\n`-separated; `:authority`, `:method`
/// and `:path` get defaults when absent); `$GOOD` stands for a valid delegated token.
/// Asserts that an outbound request that goes on never carries the caller's
/// `authorization` unchanged, and that a client's identity header never survives inbound.
pub fn request(data: &[u8]) {
    let _ = decide(data);
}

/// What [`request`] checks, returning the decision (`None`: not a request).
pub fn decide(data: &[u8]) -> Option<Decision> {
    let (&first, rest) = data.split_first()?;
    let w = world();
    let direction = if first % 2 == 0 {
        "inbound"
    } else {
        "outbound"
    };
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for line in rest.split(|b| *b == b'\n') {
        let split = line.iter().skip(1).position(|b| *b == b':').map(|i| i + 1);
        let Some(i) = split else { continue };
        let name = String::from_utf8_lossy(&line[..i])
            .trim()
            .to_ascii_lowercase();
        let mut value = line[i + 1..].to_vec();
        if value.first() == Some(&b' ') {
            value.remove(0);
        }
        headers.push((name, replace_mark(&value, w.good_token.as_bytes())));
    }
    for (name, default) in [
        (":authority", "document-service"),
        (":method", "GET"),
        (":path", "/documents/DOC-001"),
    ] {
        if !headers.iter().any(|(n, _)| n == name) {
            headers.push((name.to_string(), default.as_bytes().to_vec()));
        }
    }
    let authorization: Vec<Vec<u8>> = headers
        .iter()
        .filter(|(n, _)| n == "authorization")
        .map(|(_, v)| v.clone())
        .collect();
    let forged_identity = headers.iter().any(|(n, _)| n == "x-actbridge-subject");
    // A request that cannot even be described (an ambiguous path, a missing
    // pseudo-header) is refused as the ext_proc layer refuses it.
    let facts = match RequestFacts::new(Some(direction), headers) {
        Ok(mut f) => {
            // What Envoy reports with the generated routes: the route named for the
            // host (the port ignored), else `default`.
            let host = f.authority.split(':').next().unwrap_or("").to_string();
            let (route, cluster) = match host.as_str() {
                "document-service" => ("document-service", Some("document_service")),
                "blocked.example" => ("blocked", None),
                "plain.example" => ("plain", Some("egress")),
                _ => ("default", None),
            };
            f.proxy_route = Some(route.to_string());
            f.proxy_cluster = cluster.map(str::to_string);
            f
        }
        Err(e) => {
            let denial = actbridge::pipeline::Refusal::from(e).denial(None);
            assert!(
                (400..600).contains(&denial.status),
                "deny with {}",
                denial.status
            );
            return Some(Decision::Deny(denial));
        }
    };
    let decision = w.rt.block_on(w.pipeline.decide(&facts));
    let mutations = match &decision {
        Decision::Continue(m)
        | Decision::ReadBody { mutations: m, .. }
        | Decision::Watch { mutations: m, .. }
        | Decision::Narrow { mutations: m, .. } => m,
        Decision::Deny(d) => {
            assert!((400..600).contains(&d.status), "deny with {}", d.status);
            return Some(decision);
        }
        Decision::Respond(_) => return Some(decision),
    };
    let touched = |name: &str| {
        mutations.remove.iter().any(|h| h.as_str() == name)
            || mutations.set.iter().any(|(h, _)| h.as_str() == name)
    };
    if direction == "outbound" && !authorization.is_empty() {
        assert!(
            touched("authorization"),
            "outbound: the caller's authorization went on untouched"
        );
        for (h, v) in &mutations.set {
            assert!(
                !authorization.iter().any(|a| a == v.as_bytes()),
                "outbound: the caller's authorization set again as {h}"
            );
        }
    }
    if direction == "inbound" && forged_identity {
        assert!(
            touched("x-actbridge-subject"),
            "inbound: a client's x-actbridge-subject survived"
        );
    }
    Some(decision)
}

fn replace_mark(value: &[u8], good: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i..].starts_with(GOOD_TOKEN_MARK) {
            out.extend_from_slice(good);
            i += GOOD_TOKEN_MARK.len();
        } else {
            out.push(value[i]);
            i += 1;
        }
    }
    out
}

/// Target `config`: the bytes as the YAML config, parsed and validated (no I/O).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Config::from_yaml(text, &HashMap::<String, String>::new());
}

/// Agent-protocol bodies: a request body through the JSON-RPC parser and the MCP tool
/// reader, and the same bytes as a `tools/list` response (JSON and event stream) through
/// narrowing. Invariants: a parsed envelope is never empty; narrowing never adds a tool,
/// keeps every tool it is told to keep, and what it writes parses again with the kept
/// tools only.
pub fn jsonrpc(data: &[u8]) {
    use actbridge::agentproto::{jsonrpc, mcp};
    if let Ok(envelope) = jsonrpc::parse(data) {
        assert!(!envelope.messages.is_empty());
        assert!(envelope.messages.len() <= jsonrpc::MAX_BATCH);
        for m in &envelope.messages {
            if m.method.as_deref() == Some(mcp::TOOLS_CALL) {
                let _ = mcp::tool_call(m);
            }
        }
    }
    for content_type in ["application/json", "text/event-stream"] {
        let ids = vec![serde_json::Value::from(1), serde_json::Value::from("l")];
        let Ok(mut list) = mcp::ToolsList::parse(data, content_type, ids.clone()) else {
            continue;
        };
        let Ok(names) = list.names() else { continue };
        let keep = |n: &str| n.len().is_multiple_of(2);
        let removed = list.retain(keep);
        assert_eq!(removed, names.iter().filter(|n| !keep(n)).count());
        let body = list.into_body();
        let mut again =
            mcp::ToolsList::parse(&body, content_type, ids).expect("narrowed output parses again");
        let kept = again.names().expect("kept tools have names");
        assert!(kept.iter().all(|n| keep(n)), "a refused tool survived");
        assert_eq!(kept.len(), names.len() - removed);
    }
}

/// The fixed "now" of target `peer` (2025-11-24T16:00:00Z), so its seeds mean the same
/// on every run.
pub const PEER_NOW: u64 = 1_764_000_000;

/// Target `peer`: the bytes as an answer from one of actbridge's peers, read by the very
/// function actbridge reads it with (no I/O, no world). The first byte picks the peer:
///
/// ```text
/// t  token endpoint (RFC 8693 token response)      exchange::parse_token_response
/// i  introspection endpoint (RFC 7662 answer)      introspect::parse_introspection_response
/// j  JWKS document                                 jwt::JwksStore::parse_jwks_document
/// d  OIDC discovery document                       jwt::JwksStore::parse_discovery_document
/// s  AWS STS AssumeRole <Expiration> text          credentials::parse_sts_expiration
/// g  GitHub installation-token answer              credentials::parse_github_token_response
/// ```
///
/// Lower case: the peer answered success (200; GitHub 201) and the rest is the body.
/// Upper case: the next two bytes are the HTTP status (big-endian), then the body. Any
/// other first byte picks a peer by its value. Invariants: no panic at any "now" (each
/// answer is also read at the ends of the clock), and an accepted answer's times lie
/// within the documented bounds.
pub fn peer(data: &[u8]) {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use actbridge::credentials::{parse_github_token_response, parse_sts_expiration};
    use actbridge::exchange::{MAX_EXPIRES_IN_SECS, parse_token_response};
    use actbridge::introspect::parse_introspection_response;
    use actbridge::jwt::JwksStore;

    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let peer = match first.to_ascii_lowercase() {
        p @ (b't' | b'i' | b'j' | b'd' | b's' | b'g') => p,
        other => b"tijdsg"[usize::from(other) % 6],
    };
    let success = if peer == b'g' { 201 } else { 200 };
    let (status, body) = match (first.is_ascii_uppercase(), rest) {
        (true, [hi, lo, body @ ..]) => (u16::from_be_bytes([*hi, *lo]), body),
        (true, _) => return,
        (false, body) => (success, body),
    };
    let now = PEER_NOW;
    match peer {
        b't' => {
            if let Ok(t) = parse_token_response(status, body, now) {
                assert!(!t.access_token.is_empty(), "an empty access_token passed");
                assert!(
                    t.expires_at > now && t.expires_at <= now + MAX_EXPIRES_IN_SECS,
                    "expires_at {} outside the bound",
                    t.expires_at
                );
                assert!(t.cache_for() <= Duration::from_secs(t.expires_at - now));
            }
            for end in [0, u64::MAX] {
                let _ = parse_token_response(status, body, end);
            }
        }
        b'i' => {
            let mut verified = peer_verified(now + 300);
            if let Ok(reuse) = parse_introspection_response(status, body, &verified, now) {
                assert!(
                    reuse <= Duration::from_secs(300),
                    "reused past the token's exp"
                );
            }
            verified.expires_at = u64::MAX;
            for end in [0, u64::MAX] {
                let _ = parse_introspection_response(status, body, &verified, end);
            }
        }
        b'j' => {
            if let Ok(n) = JwksStore::parse_jwks_document(body) {
                assert!(n <= body.len(), "more keys than bytes");
            }
        }
        b'd' => {
            if let Ok(uri) = JwksStore::parse_discovery_document(body, ISSUER) {
                let _ = uri.len();
            }
        }
        b's' => {
            let Ok(text) = std::str::from_utf8(body) else {
                return;
            };
            let at = UNIX_EPOCH + Duration::from_secs(now);
            if let Ok(life) = parse_sts_expiration(text, at) {
                assert!(
                    !life.is_zero() && life <= Duration::from_secs(12 * 3600 + 300),
                    "session life {life:?} outside the bound"
                );
            }
            for end in [
                UNIX_EPOCH,
                SystemTime::UNIX_EPOCH + Duration::from_secs(i64::MAX as u64),
            ] {
                let _ = parse_sts_expiration(text, end);
            }
        }
        _ => {
            let repositories = ["docs".to_string()];
            let permissions =
                std::collections::BTreeMap::from([("contents".to_string(), "read".to_string())]);
            let at = UNIX_EPOCH + Duration::from_secs(now);
            if let Ok(life) =
                parse_github_token_response(status, body, &repositories, &permissions, at)
            {
                assert!(
                    !life.is_zero() && life <= Duration::from_secs(3600 + 300),
                    "token life {life:?} outside the bound"
                );
            }
            let _ =
                parse_github_token_response(status, body, &repositories, &permissions, UNIX_EPOCH);
        }
    }
}

/// alice's token as verified, expiring at `exp` (what an introspection answer is about).
fn peer_verified(exp: u64) -> actbridge::jwt::VerifiedToken {
    actbridge::jwt::VerifiedToken {
        issuer: ISSUER.into(),
        subject: Some("alice-id".into()),
        username: Some("alice".into()),
        audiences: vec![AGENT.into()],
        authorized_party: Some(AGENT.into()),
        scopes: Vec::new(),
        groups: Vec::new(),
        roles: Vec::new(),
        expires_at: exp,
        issued_at: None,
        token_id: None,
        actors: Vec::new(),
        actors_nest: true,
        fingerprint: String::new(),
    }
}

/// One fuzz entry point.
pub type Target = fn(&[u8]);

/// Every target, by name (for the seed replay).
pub const TARGETS: [(&str, Target); 6] = [
    ("token", token),
    ("claims", claims),
    ("request", request),
    ("config", config),
    ("jsonrpc", jsonrpc),
    ("peer", peer),
];
