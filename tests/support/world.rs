//! The demo world wired up for a test: the embedded token service (in process) with
//! `demo/realm.yaml`, an app and a document service (echo upstreams), actbridge (the
//! binary) configured as summarizer-tech's sidecar, and the real Envoy in front.

use std::path::Path;
use std::sync::{Arc, Mutex};

use actbridge_sts::{Realm, TokenService};
use tokio_util::sync::CancellationToken;

use super::actbridge::Actbridge;
use super::echo::Echo;
use super::envoy::{Envoy, EnvoyPorts, ExtProcAddr};

pub const AGENT: &str = "spiffe://demo.example.com/agent/summarizer-tech";
pub const AGENT_SECRET: &str = "summarizer-tech-demo-secret";
pub const DOCUMENT_SERVICE: &str = "spiffe://demo.example.com/service/document-service";
/// The front end users log in through; its tokens name every demo agent.
pub const PORTAL: &str = "agent-portal";
pub const PORTAL_SECRET: &str = "agent-portal-demo-secret";

/// The SPIFFE ID (= OAuth client id) of the demo agent `name`.
pub fn agent_id(name: &str) -> String {
    format!("spiffe://demo.example.com/agent/{name}")
}

/// The repository's policy directory (the demo world's policy).
pub fn policies_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// The embedded token service on a free port.
pub struct Sts {
    pub service: Arc<TokenService>,
    /// The `traceparent` of every request it received (`None`: the request had none).
    pub traceparents: Arc<Mutex<Vec<Option<String>>>>,
    stop: CancellationToken,
}

impl Sts {
    pub async fn start() -> Sts {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/realm.yaml");
        Self::start_with_realm(&std::fs::read_to_string(path).unwrap()).await
    }

    /// The token service with a realm file given as text.
    pub async fn start_with_realm(realm_yaml: &str) -> Sts {
        Self::start_at(realm_yaml, "127.0.0.1:0").await
    }

    /// The token service with a realm file given as text, listening on `addr` (port 0 =
    /// a free one); its issuer names that address.
    pub async fn start_at(realm_yaml: &str, addr: &str) -> Sts {
        Self::start_keyed(realm_yaml, addr, None).await
    }

    /// The demo realm's token service signing with the RSA private key `key_pem` (PEM),
    /// so that a test can also sign tokens with headers of its own choosing.
    pub async fn start_with_key(key_pem: &[u8]) -> Sts {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/realm.yaml");
        let realm = std::fs::read_to_string(path).unwrap();
        Self::start_keyed(&realm, "127.0.0.1:0", Some(key_pem)).await
    }

    /// The token service on `addr`, with a generated signing key or `key_pem`.
    pub async fn start_keyed(realm_yaml: &str, addr: &str, key_pem: Option<&[u8]>) -> Sts {
        let realm = Realm::from_yaml_str(realm_yaml).unwrap();
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let service = TokenService::new(realm, &url, key_pem).unwrap();
        let stop = CancellationToken::new();
        let traceparents = Arc::new(Mutex::new(Vec::new()));
        let app = service.router().layer(axum::middleware::from_fn_with_state(
            traceparents.clone(),
            record_traceparent,
        ));
        let s = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(s.cancelled_owned())
                .await
        });
        Sts {
            service,
            traceparents,
            stop,
        }
    }

    /// Another handle on the same running token service (for a second sidecar); dropping
    /// it leaves the service running.
    pub fn shared(&self) -> Sts {
        Sts {
            service: self.service.clone(),
            traceparents: self.traceparents.clone(),
            stop: CancellationToken::new(),
        }
    }

    /// Logs `user` in through `client_id` (password grant) and returns the access token.
    pub async fn login(&self, user: &str, password: &str, client_id: &str, secret: &str) -> String {
        self.login_scoped(user, password, (client_id, secret), "openid documents.read")
            .await
    }

    /// As [`Sts::login`], asking for `scope`.
    pub async fn login_scoped(
        &self,
        user: &str,
        password: &str,
        (client_id, secret): (&str, &str),
        scope: &str,
    ) -> String {
        let resp = reqwest::Client::new()
            .post(self.service.token_endpoint())
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", scope),
            ])
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "login failed: {}",
            resp.text().await.unwrap()
        );
        let body: serde_json::Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// alice's own token for summarizer-tech (not a delegation: no `act`).
    pub async fn alice(&self) -> String {
        self.login("alice", "alice123", PORTAL, PORTAL_SECRET).await
    }

    /// alice's token delegated to summarizer-tech: `aud` = it, `act` = [it].
    pub async fn alice_delegated(&self) -> String {
        self.delegated("alice", "summarizer-tech", AGENT).await
    }

    /// `user`'s token delegated to the demo agent `agent` (its short name), for
    /// `audience`: the user logs in through the front end, and the agent exchanges that
    /// token with its own client-credentials token as `actor_token`.
    pub async fn delegated(&self, user: &str, agent: &str, audience: &str) -> String {
        let own = self
            .login(user, &format!("{user}123"), PORTAL, PORTAL_SECRET)
            .await;
        self.exchange_as(agent, &own, audience, true)
            .await
            .unwrap_or_else(|(status, body)| panic!("exchange failed: {status} {body}"))
    }

    /// The demo agent `agent` exchanges `subject` (which names it already) for `audience`
    /// and exactly `scope`, e.g. a single-action capability token.
    pub async fn exchange_scoped(
        &self,
        agent: &str,
        subject: &str,
        audience: &str,
        scope: &str,
    ) -> String {
        self.exchange(agent, subject, audience, Some(scope), false)
            .await
            .unwrap_or_else(|(status, body)| panic!("exchange failed: {status} {body}"))
    }

    /// The demo agent `agent` exchanges `subject` for `audience` (with its actor token
    /// when `with_actor`). Err = the token service's status and error body.
    pub async fn exchange_as(
        &self,
        agent: &str,
        subject: &str,
        audience: &str,
        with_actor: bool,
    ) -> Result<String, (u16, serde_json::Value)> {
        self.exchange(agent, subject, audience, None, with_actor)
            .await
    }

    /// One token exchange by the demo agent `agent`, with `scope` when given.
    async fn exchange(
        &self,
        agent: &str,
        subject: &str,
        audience: &str,
        scope: Option<&str>,
        with_actor: bool,
    ) -> Result<String, (u16, serde_json::Value)> {
        let id = agent_id(agent);
        let secret = format!("{agent}-demo-secret");
        let http = reqwest::Client::new();
        // client_secret_post: a SPIFFE ID holds a `:`, which HTTP Basic would need
        // form-encoded first (RFC 6749 §2.3.1).
        let mut form = vec![
            ("client_id", id.clone()),
            ("client_secret", secret.clone()),
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange".to_string(),
            ),
            ("subject_token", subject.to_string()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token".to_string(),
            ),
            ("audience", audience.to_string()),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope.to_string()));
        }
        if with_actor {
            let resp = http
                .post(self.service.token_endpoint())
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", &id),
                    ("client_secret", &secret),
                ])
                .send()
                .await
                .unwrap();
            let body: serde_json::Value = resp.json().await.unwrap();
            let actor = body["access_token"]
                .as_str()
                .expect("actor token")
                .to_string();
            form.push(("actor_token", actor));
            form.push((
                "actor_token_type",
                "urn:ietf:params:oauth:token-type:access_token".to_string(),
            ));
        }
        let resp = http
            .post(self.service.token_endpoint())
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap();
        match body["access_token"].as_str() {
            Some(t) if status == 200 => Ok(t.to_string()),
            _ => Err((status, body)),
        }
    }

    /// Signs arbitrary claims with the service key.
    pub fn sign(&self, claims: serde_json::Value) -> String {
        self.service.sign_claims(&claims)
    }

    /// A token for the admin API: `user` with `roles` as Keycloak realm roles, for
    /// audience `aud` (`actbridge-admin` in the tests' configs), five minutes long.
    pub fn admin_token(&self, user: &str, aud: &str, roles: &[&str]) -> String {
        let now = crate::support::net::unix_now();
        self.sign(serde_json::json!({
            "iss": self.service.issuer(),
            "sub": format!("{user}-id"),
            "preferred_username": user,
            "aud": aud,
            "realm_access": {"roles": roles},
            "exp": now + 300,
            "iat": now,
        }))
    }
}

/// Notes a request's `traceparent`, then serves it.
async fn record_traceparent(
    axum::extract::State(seen): axum::extract::State<Arc<Mutex<Vec<Option<String>>>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let tp = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    seen.lock().unwrap().push(tp);
    next.run(req).await
}

impl Drop for Sts {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The start of every test sidecar's config: the listeners (ports filled in by
/// [`Actbridge::start`]) and `sts` as the one issuer, accepting `audience` inbound.
pub fn sidecar_head(sts: &Sts, audience: &str) -> String {
    format!(
        r#"
listen:
  ext_proc: tcp://127.0.0.1:{{EXT_PROC}}
  admin: 127.0.0.1:{{ADMIN}}
issuers:
  - issuer: {issuer}
    audiences: ["{audience}"]
"#,
        issuer = sts.service.issuer(),
    )
}

/// `config` with the `spiffe` section (the Workload API at `endpoint`) and SDS served on
/// its own loopback port (`listen.sds`, filled in by [`Actbridge::start`]).
pub fn with_spiffe(config: &str, endpoint: &str) -> String {
    config.replacen("listen:\n", "listen:\n  sds: tcp://127.0.0.1:{SDS}\n", 1)
        + &format!("spiffe:\n  endpoint: {endpoint}\n")
}

/// The host of the vending routes in the credential tests.
pub const VEND_HOST: &str = "credentials.actbridge.local";

/// The sidecar of the demo agent `agent` with credential backends: `routes` and
/// `credentials` are YAML list items (indented for `outbound.routes` and `credentials`),
/// and the demo world's policy judges every request.
pub fn credential_sidecar_config(
    sts: &Sts,
    agent: &str,
    routes: &str,
    credentials: &str,
) -> String {
    let id = agent_id(agent);
    sidecar_head(sts, &id)
        + &format!(
            r#"outbound:
  token_endpoint: {token}
  client:
    client_id: "{id}"
    auth: {{method: client_secret_post, secret: {agent}-demo-secret}}
  routes:
{routes}credentials:
{credentials}policy:
  dir: {policies}
"#,
            token = sts.service.token_endpoint(),
            policies = policies_dir().display(),
        )
}

/// summarizer-tech's sidecar config, with `sts` as issuer and token service.
pub fn sidecar_config(sts: &Sts) -> String {
    sidecar_head(sts, AGENT)
        + &format!(
            r#"    jwks_min_refetch_interval: 1s
inbound:
  bypass_paths:
    - exact: /healthz
    - prefix: /public/
outbound:
  token_endpoint: {token}
  client:
    client_id: "{AGENT}"
    auth:
      method: client_secret_basic
      secret: {AGENT_SECRET}
  token_timeout: 1s
  retry_after: 7s
  routes:
    - name: document-service
      host: document-service
      cluster: document_service
      action: exchange
      audience: "{DOCUMENT_SERVICE}"
      scopes: [documents.read]
    - name: blocked
      host: blocked.example
      action: deny
    - name: plain
      host: plain.example
      cluster: document_service
      action: passthrough
"#,
            token = sts.service.token_endpoint(),
        )
}

/// Everything running.
pub struct World {
    pub sts: Sts,
    pub app: Echo,
    pub docs: Echo,
    pub actbridge: Actbridge,
    pub envoy: Envoy,
    pub http: reqwest::Client,
}

impl World {
    /// The world with summarizer-tech's default sidecar config.
    pub async fn start() -> World {
        let sts = Sts::start().await;
        let config = sidecar_config(&sts);
        Self::start_with(sts, &config).await
    }

    /// The world with a custom actbridge config.
    pub async fn start_with(sts: Sts, config: &str) -> World {
        Self::builder(sts, config).start().await
    }

    /// A world to set up further: peers (`aws_s3`, `github_api`), actbridge's
    /// environment, an app of the test's own, a sidecar that need not be ready.
    pub fn builder(sts: Sts, config: &str) -> WorldBuilder<'_> {
        WorldBuilder {
            sts,
            config,
            aws_s3_port: None,
            github_api_port: None,
            app_port: None,
            env: Vec::new(),
            ready: true,
        }
    }

    /// A request into the pod (through the inbound listener).
    pub fn inbound(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!(
            "http://127.0.0.1:{}{path}",
            self.envoy.inbound_port
        ))
    }

    /// A request the agent makes to `host` (through the outbound listener).
    pub fn outbound(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!(
                "http://127.0.0.1:{}{path}",
                self.envoy.outbound_port
            ))
            .header("host", host)
    }
}

impl World {
    /// `user`'s token delegated to summarizer-tech (this world's default agent).
    pub async fn token_for(&self, user: &str) -> String {
        self.sts
            .delegated(user, "summarizer-tech", &agent_id("summarizer-tech"))
            .await
    }

    /// The agent asks its sidecar for a credential: `POST /credentials` with `body`.
    pub async fn vend(&self, token: Option<&str>, body: &str) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!(
                "http://127.0.0.1:{}/credentials",
                self.envoy.outbound_port
            ))
            .header("host", VEND_HOST)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// `token`'s GET of `path` into the pod, which must be served (200): the bearer the
    /// app got with it (a placeholder, under custody).
    pub async fn held_for(&self, path: &str, token: &str) -> String {
        let resp = self.inbound(path).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}", self.actbridge.log());
        self.app.seen().last().unwrap().bearer().to_string()
    }

    /// The agent calls `host` with `token` as its bearer credential.
    pub async fn agent_call(&self, host: &str, path: &str, token: &str) -> reqwest::Response {
        self.outbound(host, path)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

/// Decodes a JWT's payload without verifying it (for assertions on what a peer received).
pub fn claims_of(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Asserts that `name` is a credential name for `label`: `<label>+` and 16 hex digits
/// of the identity (issuer, subject, chain) it was minted for.
pub fn assert_credential_name(name: &str, label: &str) {
    let suffix = name
        .strip_prefix(label)
        .and_then(|s| s.strip_prefix('+'))
        .unwrap_or_else(|| panic!("`{name}` is not `{label}+<digest>`"));
    assert!(
        suffix.len() == 16 && suffix.bytes().all(|b| b.is_ascii_hexdigit()),
        "`{name}`: the identity digest is 16 hex digits"
    );
}

/// A [`World`] being set up ([`World::builder`]).
pub struct WorldBuilder<'a> {
    sts: Sts,
    config: &'a str,
    aws_s3_port: Option<u16>,
    github_api_port: Option<u16>,
    app_port: Option<u16>,
    env: Vec<(&'a str, &'a str)>,
    ready: bool,
}

impl<'a> WorldBuilder<'a> {
    /// Envoy's `aws_s3` cluster pointed at `port` (an S3 emulator or an echo).
    pub fn aws_s3(mut self, port: u16) -> Self {
        self.aws_s3_port = Some(port);
        self
    }

    /// Envoy's `github_api` cluster pointed at `port`.
    pub fn github_api(mut self, port: u16) -> Self {
        self.github_api_port = Some(port);
        self
    }

    /// `aws_s3` and `github_api` together, each when `Some`.
    pub fn peers(mut self, (aws_s3, github_api): (Option<u16>, Option<u16>)) -> Self {
        self.aws_s3_port = aws_s3;
        self.github_api_port = github_api;
        self
    }

    /// Extra environment variables for actbridge (e.g. `OTEL_*`, `ACTBRIDGE_FAULT`).
    pub fn env(mut self, env: &[(&'a str, &'a str)]) -> Self {
        self.env.extend_from_slice(env);
        self
    }

    /// The sidecar in front of an app of the test's own on `port` (the `app` echo then
    /// sees nothing).
    pub fn in_front_of(mut self, port: u16) -> Self {
        self.app_port = Some(port);
        self
    }

    /// Waits only until actbridge is up (`/healthz`), not until it is ready: for the
    /// tests of readiness.
    pub fn unready(mut self) -> Self {
        self.ready = false;
        self
    }

    /// Starts actbridge, the echo app and document service, and Envoy in front.
    pub async fn start(self) -> World {
        let actbridge = if self.ready {
            Actbridge::start_with_env(self.config, &self.env).await
        } else {
            Actbridge::start_unready_with_env(self.config, &self.env).await
        };
        let app = Echo::start().await;
        let docs = Echo::start().await;
        let envoy = Envoy::start(&EnvoyPorts {
            sds: actbridge.sds_port.map(ExtProcAddr::Tcp),
            routes: actbridge.routes(),
            ext_proc: ExtProcAddr::Tcp(actbridge.ext_proc_port),
            app_port: self.app_port.unwrap_or(app.port),
            document_service_port: docs.port,
            aws_s3_port: self.aws_s3_port,
            github_api_port: self.github_api_port,
        })
        .await;
        World {
            sts: self.sts,
            app,
            docs,
            actbridge,
            envoy,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }
}
