//! A real Keycloak for `actbridge demo --keycloak DIR` (`make demo-keycloak`): started
//! from its distribution in dev mode (in-memory database, bounded heap, killed with the
//! demo), set up with the keycloak overlay's artefacts as an operator would —
//! `manifests/overlays/keycloak/realm.json` imported through the admin REST API and
//! summarizer-tech registered by `deploy/keycloak/register-agent.sh` — plus one front end
//! whose tokens live a second, for the demo's expired token.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{AGENT, DOCUMENT_SERVICE, DemoResult, free_port};

/// The bootstrap admin of the demo's Keycloak (a throw-away instance on loopback).
const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "admin-demo-password";
/// The realm `realm.json` holds.
const REALM: &str = "demo";
/// The front end whose tokens live one second.
pub(super) const EXPIRING_PORTAL: (&str, &str) = ("agent-portal-expiring", "expiring-demo-secret");
/// How long a cold start may take (the first one builds Quarkus' output).
const READY_WITHIN: Duration = Duration::from_secs(300);

/// A running Keycloak, killed when dropped: kc.sh runs the JVM as its child, so the
/// whole process group goes (killing kc.sh alone would leave the JVM running).
pub(crate) struct DemoKeycloak {
    _process: tokio::process::Child,
    /// The process group of kc.sh and its JVM.
    group: Option<u32>,
    url: String,
    /// summarizer-tech's client secret, as the registration script wrote it.
    pub(super) client_secret: String,
}

impl DemoKeycloak {
    /// Starts Keycloak from the distribution `dist` (its log in `dir`) and sets it up.
    pub(crate) async fn start(
        dist: &Path,
        root: &Path,
        dir: &Path,
        http: &reqwest::Client,
    ) -> DemoResult<DemoKeycloak> {
        let port = free_port()?;
        let log_path = dir.join("keycloak.log");
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let mut cmd = tokio::process::Command::new(dist.join("bin/kc.sh"));
        cmd.args(["start-dev", "--db=dev-mem", "--http-host=127.0.0.1"])
            .arg(format!("--http-port={port}"))
            .env("JAVA_OPTS_KC_HEAP", "-Xms64m -Xmx512m")
            .env("KC_BOOTSTRAP_ADMIN_USERNAME", ADMIN)
            .env("KC_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true);
        // Keycloak 26.7 runs on Java 17 or 25; the machine's Temurin 25 when present.
        let temurin = Path::new("/usr/lib/jvm/temurin-25-jdk-amd64");
        if temurin.exists() {
            cmd.env("JAVA_HOME", temurin);
        }
        let process = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", dist.join("bin/kc.sh").display()))?;
        let mut kc = DemoKeycloak {
            group: process.id(),
            _process: process,
            url: format!("http://127.0.0.1:{port}"),
            client_secret: String::new(),
        };
        kc.wait_ready(http, &log_path).await?;
        kc.client_secret = kc.set_up(http, root, dir).await?;
        Ok(kc)
    }

    /// Kills kc.sh's process group, its JVM included.
    fn kill_group(&self) {
        if let Some(pgid) = self.group {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// The realm's issuer.
    pub(super) fn issuer(&self) -> String {
        format!("{}/realms/{REALM}", self.url)
    }

    pub(super) fn token_endpoint(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer())
    }

    async fn wait_ready(&self, http: &reqwest::Client, log: &Path) -> DemoResult<()> {
        let started = Instant::now();
        let probe = format!(
            "{}/realms/master/.well-known/openid-configuration",
            self.url
        );
        while started.elapsed() < READY_WITHIN {
            if let Ok(r) = http.get(&probe).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(format!(
            "Keycloak not ready within {READY_WITHIN:?}; its log: {}",
            log.display()
        ))
    }

    /// The realm imported, summarizer-tech registered, the expiring front end made:
    /// summarizer-tech's client secret.
    async fn set_up(&self, http: &reqwest::Client, root: &Path, dir: &Path) -> DemoResult<String> {
        let realm = std::fs::read_to_string(root.join("manifests/overlays/keycloak/realm.json"))
            .map_err(|e| format!("manifests/overlays/keycloak/realm.json: {e}"))?;
        let realm: Value = serde_json::from_str(&realm).map_err(|e| e.to_string())?;
        let admin = self.admin_token(http).await?;
        self.admin_post(http, &admin, "", &realm).await?;
        let secret_file = dir.join("summarizer-tech-secret");
        register_agent(root, &self.url, &secret_file).await?;
        self.admin_post(
            http,
            &admin,
            &format!("{REALM}/clients"),
            &json!({
                "clientId": EXPIRING_PORTAL.0, "secret": EXPIRING_PORTAL.1,
                "publicClient": false, "standardFlowEnabled": false,
                "directAccessGrantsEnabled": true,
                "attributes": {"access.token.lifespan": "1"},
                "protocolMappers": [{
                    "name": "agent", "protocol": "openid-connect",
                    "protocolMapper": "oidc-audience-mapper",
                    "config": {"included.custom.audience": AGENT, "access.token.claim": "true"},
                }],
            }),
        )
        .await?;
        std::fs::read_to_string(&secret_file).map_err(|e| e.to_string())
    }

    async fn admin_token(&self, http: &reqwest::Client) -> DemoResult<String> {
        let r: Value = http
            .post(format!(
                "{}/realms/master/protocol/openid-connect/token",
                self.url
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", ADMIN),
                ("password", ADMIN_PASSWORD),
            ])
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        r["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("Keycloak's admin login failed: {r}"))
    }

    async fn admin_post(
        &self,
        http: &reqwest::Client,
        token: &str,
        path: &str,
        body: &Value,
    ) -> DemoResult<()> {
        let url = format!("{}/admin/realms/{path}", self.url);
        let r = http
            .post(&url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status();
        if !status.is_success() {
            return Err(format!(
                "POST {url}: {status} {}",
                r.text().await.unwrap_or_default()
            ));
        }
        Ok(())
    }
}

/// `deploy/keycloak/register-agent.sh` for summarizer-tech, its secret into `secret_file`.
async fn register_agent(root: &Path, url: &str, secret_file: &PathBuf) -> DemoResult<()> {
    let script = root.join("deploy/keycloak/register-agent.sh");
    let out = tokio::process::Command::new(&script)
        .args(["--url", url, "--realm", REALM, "--agent", AGENT])
        .args(["--audience", DOCUMENT_SERVICE, "--scope", "documents.read"])
        .args(["--front-end", "agent-portal", "--secret-file"])
        .arg(secret_file)
        .env("KEYCLOAK_ADMIN_USER", ADMIN)
        .env("KEYCLOAK_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

impl Drop for DemoKeycloak {
    fn drop(&mut self) {
        self.kill_group();
    }
}
