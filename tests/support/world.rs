//! The demo world wired up for a test: the embedded token service (in process) with
//! `demo/realm.yaml`, an app and a document service (echo upstreams), actbridge (the
//! binary) configured as summarizer-tech's sidecar, and the real Envoy in front.

use std::path::Path;
use std::sync::Arc;

use actbridge::sts::{Realm, TokenService};
use tokio_util::sync::CancellationToken;

use super::actbridge::Actbridge;
use super::echo::Echo;
use super::envoy::{Envoy, EnvoyPorts, ExtProcAddr};

pub const AGENT: &str = "spiffe://demo.example.com/agent/summarizer-tech";
pub const AGENT_SECRET: &str = "summarizer-tech-demo-secret";
pub const DOCUMENT_SERVICE: &str = "spiffe://demo.example.com/service/document-service";

/// The embedded token service on a free port.
pub struct Sts {
    pub service: Arc<TokenService>,
    stop: CancellationToken,
}

impl Sts {
    pub async fn start() -> Sts {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/realm.yaml");
        Self::start_with_realm(&std::fs::read_to_string(path).unwrap()).await
    }

    /// The token service with a realm file given as text.
    pub async fn start_with_realm(realm_yaml: &str) -> Sts {
        let realm = Realm::from_yaml_str(realm_yaml).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let service = TokenService::new(realm, &url, None).unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(service.clone().serve(listener, stop.clone()));
        Sts { service, stop }
    }

    /// Logs `user` in through `client_id` (password grant) and returns the access token.
    pub async fn login(&self, user: &str, password: &str, client_id: &str, secret: &str) -> String {
        let resp = reqwest::Client::new()
            .post(self.service.token_endpoint())
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", "openid documents.read"),
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

    /// alice's token for summarizer-tech.
    pub async fn alice(&self) -> String {
        self.login("alice", "alice123", AGENT, AGENT_SECRET).await
    }

    /// Signs arbitrary claims with the service key.
    pub fn sign(&self, claims: serde_json::Value) -> String {
        self.service.sign_claims(&claims)
    }
}

impl Drop for Sts {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// summarizer-tech's sidecar config; `{ISSUER}` and `{TOKEN_ENDPOINT}` filled from `sts`.
pub fn sidecar_config(sts: &Sts) -> String {
    format!(
        r#"
listen:
  ext_proc: tcp://127.0.0.1:{{EXT_PROC}}
  admin: 127.0.0.1:{{ADMIN}}
issuers:
  - issuer: {issuer}
    audiences: ["{AGENT}"]
    jwks_min_refetch_interval: 1s
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
      host: "document-service*"
      action: exchange
      audience: "{DOCUMENT_SERVICE}"
      scopes: [documents.read]
    - host: "blocked.example*"
      action: deny
    - host: "127.0.0.1:*"
      action: passthrough
"#,
        issuer = sts.service.issuer(),
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
        let app = Echo::start().await;
        let docs = Echo::start().await;
        let actbridge = Actbridge::start(config).await;
        let envoy = Envoy::start(&EnvoyPorts {
            ext_proc: ExtProcAddr::Tcp(actbridge.ext_proc_port),
            app_port: app.port,
            document_service_port: docs.port,
        })
        .await;
        World {
            sts,
            app,
            docs,
            actbridge,
            envoy,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
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
