//! Every route action, one row a rule, on one sidecar config; and the wiring a route
//! needs, checked when the pipeline is built.

use super::*;

fn config(sts: &Sts, ca_key: &std::path::Path) -> String {
    format!(
        r#"
listen:
  ext_proc: tcp://127.0.0.1:1
issuers:
  - issuer: {issuer}
    audiences: ["{AGENT}"]
    jwks_min_refetch_interval: 1h
inbound:
  bypass_paths: [{{exact: /healthz}}]
outbound:
  token_endpoint: {token}
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_post, secret: summarizer-tech-demo-secret}}
  routes:
    - {{name: document-service, host: document-service, cluster: document_service, action: exchange, audience: "{DOCS_AUDIENCE}", scopes: [documents.read]}}
    - {{name: mcp-documents, host: mcp-documents, cluster: mcp, action: exchange, audience: "{MCP}", scopes: [mcp], protocol: mcp, max_body_bytes: 256}}
    - {{name: blocked, host: blocked.example, action: deny}}
    - {{name: plain, host: plain.example, cluster: plain, action: passthrough}}
    - {{name: chat, host: chat.example, cluster: chat, action: credential, credential: chat, mode: filter}}
    - {{name: credentials, host: credentials.actbridge.local, action: vend, services: {{ssh: ssh}}}}
credentials:
  - name: chat
    filter:
      token_env: CHAT_TOKEN
      max_body_bytes: 128
      rules:
        - {{method: POST, path: /api/chat.postMessage, body_field: channel, allow: {{finance: [finance-general], hr: [hr-private]}}}}
  - name: ssh
    ssh_cert: {{ca_key_file: {ca}, principals: {{finance: [finance], engineering: [engineering]}}}}
policy:
  dir: {policies}
"#,
        issuer = sts.service.issuer(),
        token = sts.service.token_endpoint(),
        ca = ca_key.display(),
        policies = policies_dir().display(),
    )
}

/// The sidecar of [`config`] and the tokens its rows present.
pub(super) struct Table {
    sts: Sts,
    pub(super) pipeline: Pipeline,
    alice: String,
    alice_own: String,
    alice_mcp: String,
    carol: String,
}

impl Table {
    pub(super) async fn start() -> (Table, tempfile::TempDir) {
        Table::start_edited(|yaml| yaml).await
    }

    /// [`Table::start`] with `edit` applied to [`config`].
    pub(super) async fn start_edited(
        edit: impl FnOnce(String) -> String,
    ) -> (Table, tempfile::TempDir) {
        let (dir, ca) = ssh_ca();
        let sts = Sts::start().await;
        let revocations = Arc::new(DenyList::load(None).unwrap());
        let pipeline = pipeline(&edit(config(&sts, &ca)), revocations).await;
        let alice = sts.delegated("alice", "summarizer-tech", AGENT).await;
        let alice_own = sts.alice().await;
        let carol = sts.delegated("carol", "summarizer-tech", AGENT).await;
        let own = sts
            .login_scoped(
                "alice",
                "alice123",
                (PORTAL, PORTAL_SECRET),
                "openid mcp mcp:read_document mcp:search",
            )
            .await;
        let alice_mcp = sts
            .exchange_as("summarizer-tech", &own, AGENT, true)
            .await
            .unwrap();
        let table = Table {
            sts,
            pipeline,
            alice,
            alice_own,
            alice_mcp,
            carol,
        };
        (table, dir)
    }

    pub(super) fn authorization(&self, token: Token) -> Option<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let signed = |aud: &str, exp: u64| {
            self.sts.sign(json!({
                "iss": self.sts.service.issuer(), "sub": "0b7e-alice",
                "preferred_username": "alice", "aud": aud, "exp": exp, "iat": now - 600,
            }))
        };
        Some(match token {
            Token::None => return None,
            Token::Basic => "Basic YWxpY2U6YWxpY2UxMjM=".to_string(),
            Token::Forged => {
                // One character in the middle of the signature changed.
                let mut t = self.alice.clone().into_bytes();
                let at = t.iter().rposition(|b| *b == b'.').unwrap() + 10;
                t[at] = if t[at] == b'A' { b'B' } else { b'A' };
                format!("Bearer {}", String::from_utf8(t).unwrap())
            }
            Token::AliceOwn => format!("Bearer {}", self.alice_own),
            Token::Alice => format!("Bearer {}", self.alice),
            Token::AliceMcp => format!("Bearer {}", self.alice_mcp),
            Token::Carol => format!("Bearer {}", self.carol),
            Token::OtherAudience => {
                format!("Bearer {}", signed(&agent_id("reviewer-ops"), now + 300))
            }
            Token::Expired => format!("Bearer {}", signed(AGENT, now - 120)),
        })
    }

    /// The decision for `r`, its body decided too when the core asks for it.
    pub(super) async fn decide(&self, r: &Row) -> Result<Decision, actbridge::pipeline::Denial> {
        decide(&self.pipeline, r, self.authorization(r.token)).await
    }
}

// Long by design: a table, one row per rule.
fn rows() -> Vec<Row> {
    use Expect::*;
    let alice_own = |mut r: Row| {
        r.token = Token::AliceOwn;
        r
    };
    let inbound = |mut r: Row, token: Token| {
        r.direction = "inbound";
        r.envoy = None;
        r.token = token;
        r
    };
    let with = |mut r: Row, token: Token| {
        r.token = token;
        r
    };
    let body = |mut r: Row,
                method: &'static str,
                b: &'static str,
                extra: &'static [(&'static str, &'static str)]| {
        r.method = method;
        r.body = Some(b.to_string());
        r.extra = extra;
        r
    };
    let json = &[("content-type", "application/json")][..];
    vec![
        // Route actions.
        row(
            "exchange: a delegated token is exchanged",
            "document-service",
            "/documents/DOC-001",
            ForwardWithNewAuthorization,
        ),
        row(
            "deny route",
            "blocked.example",
            "/",
            Deny(403, "route_denied"),
        ),
        row(
            "default: no route",
            "unknown.example",
            "/",
            Deny(403, "route_denied"),
        ),
        with(
            row(
                "passthrough: the caller's request goes on",
                "plain.example",
                "/x",
                ForwardUnchanged,
            ),
            Token::None,
        ),
        body(
            row(
                "credential (filter): an allowed channel gets the service token",
                "chat.example",
                "/api/chat.postMessage",
                ForwardWithNewAuthorization,
            ),
            "POST",
            r#"{"channel":"finance-general"}"#,
            json,
        ),
        body(
            row(
                "vend: an SSH certificate is answered",
                "credentials.actbridge.local",
                "/credentials",
                Answer(200),
            ),
            "POST",
            r#"{"target_service":"ssh","action":"login","public_key":"PUBKEY"}"#,
            json,
        ),
        body(
            row(
                "mcp: a tools/list is judged and exchanged",
                "mcp-documents",
                "/mcp",
                ForwardWithNewAuthorization,
            ),
            "POST",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            json,
        ),
        body(
            row(
                "mcp: a single-use tool called alone gets a token of its own",
                "mcp-documents",
                "/mcp",
                ForwardWithNewAuthorization,
            ),
            "POST",
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_document","arguments":{"id":"DOC-001"}}}"#,
            json,
        ),
        body(
            row(
                "mcp: a single-use tool called in a batch (one token cannot serve two calls)",
                "mcp-documents",
                "/mcp",
                Deny(400, "single_use_batch"),
            ),
            "POST",
            r#"[{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"read_document","arguments":{"id":"DOC-001"}}},{"jsonrpc":"2.0","id":5,"method":"tools/list"}]"#,
            json,
        ),
        // Inbound.
        inbound(
            row(
                "inbound: a verified caller's identity goes to the app",
                "app",
                "/data",
                ForwardWithIdentity,
            ),
            Token::AliceOwn,
        ),
        inbound(
            row(
                "inbound: no token",
                "app",
                "/data",
                Deny(401, "token_missing"),
            ),
            Token::None,
        ),
        inbound(
            row(
                "inbound: a forged signature",
                "app",
                "/data",
                Deny(401, "token_bad_signature"),
            ),
            Token::Forged,
        ),
        inbound(
            row(
                "inbound: a bypass path goes on unverified",
                "app",
                "/healthz",
                ForwardUnchanged,
            ),
            Token::None,
        ),
        // The request itself.
        row(
            "a path with two readings",
            "document-service",
            "/documents;x=1",
            Deny(400, "path_ambiguous"),
        ),
        row(
            "userinfo in the authority",
            "alice@document-service",
            "/documents",
            Deny(400, "authority_ambiguous"),
        ),
        Row {
            envoy: None,
            ..row(
                "Envoy did not say which route it chose",
                "document-service",
                "/documents",
                Deny(500, "proxy_route_unknown"),
            )
        },
        Row {
            envoy: Some(("blocked", None)),
            ..row(
                "Envoy chose another route",
                "document-service",
                "/documents",
                Deny(403, "route_mismatch"),
            )
        },
        Row {
            envoy: Some(("document-service", Some("egress"))),
            ..row(
                "Envoy chose another cluster",
                "document-service",
                "/documents",
                Deny(403, "route_mismatch"),
            )
        },
        // The token.
        with(
            row(
                "no token",
                "document-service",
                "/documents",
                Deny(401, "token_missing"),
            ),
            Token::None,
        ),
        with(
            row(
                "not a bearer token",
                "document-service",
                "/documents",
                Deny(401, "authorization_malformed"),
            ),
            Token::Basic,
        ),
        with(
            row(
                "a forged signature",
                "document-service",
                "/documents",
                Deny(401, "token_bad_signature"),
            ),
            Token::Forged,
        ),
        with(
            row(
                "an expired token",
                "document-service",
                "/documents",
                Deny(401, "token_expired"),
            ),
            Token::Expired,
        ),
        with(
            row(
                "a token for another audience",
                "document-service",
                "/documents",
                Deny(401, "token_wrong_audience"),
            ),
            Token::OtherAudience,
        ),
        alice_own(row(
            "the user's own token where a delegation is required",
            "document-service",
            "/documents",
            Deny(403, "delegation_required"),
        )),
        // The policy.
        // (The shipped policy refuses an empty grant itself, with its own reason.)
        with(
            row(
                "an empty grant",
                "document-service",
                "/documents",
                Deny(403, "policy_denied"),
            ),
            Token::Carol,
        ),
        row(
            "a document outside the grant",
            "document-service",
            "/documents/DOC-004",
            Deny(403, "policy_denied"),
        ),
        Row {
            method: "DELETE",
            ..row(
                "a request shape the policy does not know",
                "document-service",
                "/documents/DOC-001",
                Deny(403, "policy_denied"),
            )
        },
        // Credential backends.
        body(
            row(
                "filter: a channel outside the grant",
                "chat.example",
                "/api/chat.postMessage",
                Deny(403, "filter_refused"),
            ),
            "POST",
            r#"{"channel":"hr-private"}"#,
            json,
        ),
        body(
            row(
                "filter: a body over the limit",
                "chat.example",
                "/api/chat.postMessage",
                Deny(413, "body_too_large"),
            ),
            "POST",
            r#"{"channel":"finance-general","text":"................................................................................................................................"}"#,
            json,
        ),
        row(
            "vend: another path",
            "credentials.actbridge.local",
            "/other",
            Deny(404, "not_found"),
        ),
        row(
            "vend: another method",
            "credentials.actbridge.local",
            "/credentials",
            Deny(405, "method_not_allowed"),
        ),
        body(
            row(
                "vend: a body that is not a vending request",
                "credentials.actbridge.local",
                "/credentials",
                Deny(400, "vend_body_invalid"),
            ),
            "POST",
            "not json",
            json,
        ),
        // Agent protocols.
        body(
            row(
                "mcp: a body that is not JSON",
                "mcp-documents",
                "/mcp",
                Deny(400, "jsonrpc_parse_error"),
            ),
            "POST",
            "{",
            json,
        ),
        body(
            row(
                "mcp: a member named twice (parsers disagree on which wins)",
                "mcp-documents",
                "/mcp",
                Deny(400, "jsonrpc_invalid"),
            ),
            "POST",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}"#,
            json,
        ),
        body(
            row(
                "mcp: a tools/call without a tool name",
                "mcp-documents",
                "/mcp",
                Deny(400, "mcp_invalid"),
            ),
            "POST",
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"arguments":{}}}"#,
            json,
        ),
        Row {
            method: "PUT",
            ..row(
                "mcp: a method MCP does not define",
                "mcp-documents",
                "/mcp",
                Deny(405, "method_not_allowed"),
            )
        },
    ]
}

/// Every row decides as its rule says.
#[tokio::test]
async fn every_rule_decides_as_the_table_says() {
    let (t, _dir) = Table::start().await;
    let public_key =
        ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
            .unwrap()
            .public_key()
            .to_openssh()
            .unwrap();
    let mut failures = Vec::new();
    for r in rows() {
        let r = Row {
            body: r.body.as_ref().map(|b| b.replace("PUBKEY", &public_key)),
            ..r
        };
        let presented = t.authorization(r.token).unwrap_or_default();
        let got = t.decide(&r).await;
        if let Err(why) = verdict(&r.expect, &got, &presented) {
            failures.push(format!("{}: {why}", r.name));
        }
    }
    all_passed(&failures, "rows");
}

/// A route whose backend or policy is missing stops the start, naming the route and
/// what is missing, instead of refusing each request it matches with a 500.
#[tokio::test]
async fn a_route_without_its_backend_or_policy_is_refused_at_start() {
    let sts = Sts::start().await;
    let (_dir, ca) = ssh_ca();
    let env = HashMap::from([("CHAT_TOKEN".to_string(), CHAT_TOKEN.to_string())]);
    let cfg = Config::from_yaml(&config(&sts, &ca), &env).unwrap();
    let state = State::new(&cfg, Arc::new(DenyList::load(None).unwrap()));
    let policy = PolicyEngine::load_configured(cfg.policy.as_ref()).unwrap();
    let loaded = Arc::new(Credentials::load(&cfg.credentials).await);

    let without_backends = Pipeline::new(
        &cfg,
        policy.clone(),
        Arc::new(Credentials::default()),
        &state,
    );
    let err = without_backends
        .err()
        .expect("a credential route without its backend must not build")
        .to_string();
    assert!(
        err.contains("route `chat`") && err.contains("credential `chat`"),
        "the error names the route and the backend: {err}"
    );

    let without_policy = Pipeline::new(&cfg, None, loaded.clone(), &state);
    let err = without_policy
        .err()
        .expect("a credential route without a policy must not build")
        .to_string();
    assert!(
        err.contains("route `chat`") && err.contains("no policy"),
        "the error names the route: {err}"
    );

    assert!(Pipeline::new(&cfg, policy, loaded, &state).is_ok());
}
