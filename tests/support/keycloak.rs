//! One real Keycloak per test process, shared by every test that asks for it: the Maven
//! Central distribution of the version pinned in `tools/keycloak-version` (26.7.3),
//! fetched once into the user's cache by `tools/fetch-keycloak.sh`, started in dev mode on an in-memory database (nothing is
//! written to the cached tree but Quarkus' build output), bounded heap, readiness polled.
//! The demo realm (demo/realm.yaml, the embedded token service's) is created through the
//! admin REST API from [`Realm::keycloak_representation`], then its own scopes.
//!
//! Keycloak outlives no test run: it runs in its own process group under a watchdog shell
//! that kills the group once this process is gone. Its log is kept in a temporary file
//! whose path a failed start prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use actbridge_sts::Realm;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::net::free_port;
use super::world::{PORTAL, PORTAL_SECRET};

/// The realm, as demo/realm.yaml names it.
pub const REALM: &str = "actbridge";
/// The master realm's bootstrap admin and its password.
pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-demo-password";
/// How long a cold start may take (78 s measured on 2 cores beside a cargo build).
const READY_WITHIN: Duration = Duration::from_secs(300);

pub struct Keycloak {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub log: PathBuf,
    /// The watchdog shell; it ends with this process, taking Keycloak with it.
    _watchdog: std::process::Child,
}

static SHARED: OnceCell<Keycloak> = OnceCell::const_new();
/// Held shared by every test using Keycloak, exclusively by one that pauses it.
static IN_USE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The Keycloak of this test process, started on first use; it answers as long as the
/// returned handle lives (no test pauses it meanwhile).
pub async fn shared() -> Shared {
    Shared {
        _use: IN_USE.read().await,
        kc: SHARED.get_or_init(Keycloak::start).await,
    }
}

/// [`shared`], with no other test using Keycloak while the handle lives: for a test that
/// pauses it ([`Exclusive::pause`]).
pub async fn exclusive() -> Exclusive {
    Exclusive {
        _use: IN_USE.write().await,
        kc: SHARED.get_or_init(Keycloak::start).await,
    }
}

/// No test uses the shared Keycloak while the guard lives (which does not start it): for
/// a test that runs a Keycloak of its own.
pub async fn nobody_else() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    IN_USE.write().await
}

/// A test's use of the shared Keycloak.
pub struct Shared {
    _use: tokio::sync::RwLockReadGuard<'static, ()>,
    kc: &'static Keycloak,
}

impl std::ops::Deref for Shared {
    type Target = Keycloak;
    fn deref(&self) -> &Keycloak {
        self.kc
    }
}

/// A test's sole use of the shared Keycloak.
pub struct Exclusive {
    _use: tokio::sync::RwLockWriteGuard<'static, ()>,
    kc: &'static Keycloak,
}

impl std::ops::Deref for Exclusive {
    type Target = Keycloak;
    fn deref(&self) -> &Keycloak {
        self.kc
    }
}

impl Exclusive {
    /// Stops Keycloak (`SIGSTOP` to kc.sh and its JVM): it accepts connections and
    /// answers nothing, like a peer that hangs, until the returned guard is dropped
    /// (`SIGCONT`).
    pub fn pause(&self) -> Paused {
        let pids = self.kc.pids();
        signal(&pids, "-STOP");
        Paused(pids)
    }
}

/// Keycloak paused; resumed on drop, a failed assertion included.
pub struct Paused(Vec<String>);

impl Drop for Paused {
    fn drop(&mut self) {
        signal(&self.0, "-CONT");
    }
}

fn signal(pids: &[String], which: &str) {
    let ok = Command::new("kill")
        .arg(which)
        .args(pids)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {which} {pids:?}");
}

/// The cached distribution (fetched on first use).
pub fn distribution() -> PathBuf {
    if let Ok(home) = std::env::var("ACTBRIDGE_KEYCLOAK_HOME") {
        return PathBuf::from(home);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/fetch-keycloak.sh");
    let out = Command::new(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn java_home() -> Option<&'static str> {
    let temurin = "/usr/lib/jvm/temurin-25-jdk-amd64";
    Path::new(temurin).exists().then_some(temurin)
}

impl Keycloak {
    async fn start() -> Keycloak {
        let dist = distribution();
        let port = free_port();
        let log = std::env::temp_dir().join(format!("actbridge-keycloak-{port}.log"));
        // The watchdog: Keycloak in the background, the group killed once this test
        // process (or Keycloak) is gone.
        let script = r#"
"$KC" start-dev --db=dev-mem --http-host=127.0.0.1 --http-port="$PORT" >"$LOG" 2>&1 &
kc=$!
while kill -0 "$PARENT" 2>/dev/null && kill -0 "$kc" 2>/dev/null; do sleep 1; done
kill -- -$$ 2>/dev/null
"#;
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(script)
            .env("KC", dist.join("bin/kc.sh"))
            .env("PORT", port.to_string())
            .env("LOG", &log)
            .env("PARENT", std::process::id().to_string())
            .env("JAVA_OPTS_KC_HEAP", "-Xms64m -Xmx512m")
            .env("KC_BOOTSTRAP_ADMIN_USERNAME", ADMIN)
            .env("KC_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(home) = java_home() {
            cmd.env("JAVA_HOME", home);
        }
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let kc = Keycloak {
            url: format!("http://127.0.0.1:{port}"),
            log,
            _watchdog: cmd.spawn().expect("bash"),
        };
        kc.wait_ready().await;
        kc.import_demo_realm().await;
        kc
    }

    /// The pids of kc.sh and its JVM: the processes whose command line holds this
    /// Keycloak's port.
    fn pids(&self) -> Vec<String> {
        let port = self.url.rsplit(':').next().unwrap();
        let out = Command::new("pgrep")
            .args(["-f", "--", &format!("--http-port={port}")])
            .output()
            .unwrap();
        let pids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        assert!(pids.len() >= 2, "kc.sh and its JVM not found: {out:?}");
        pids
    }

    /// The log's last lines, for a failure message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    async fn wait_ready(&self) {
        let started = Instant::now();
        let http = reqwest::Client::new();
        let probe = format!(
            "{}/realms/master/.well-known/openid-configuration",
            self.url
        );
        loop {
            if let Ok(r) = http.get(&probe).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                started.elapsed() < READY_WITHIN,
                "Keycloak not ready within {READY_WITHIN:?}; log {}:\n{}",
                self.log.display(),
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The issuer of `realm`.
    pub fn issuer_of(&self, realm: &str) -> String {
        format!("{}/realms/{realm}", self.url)
    }

    /// The issuer of the demo realm.
    pub fn issuer(&self) -> String {
        self.issuer_of(REALM)
    }

    pub fn token_endpoint_of(&self, realm: &str) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer_of(realm))
    }

    pub fn token_endpoint(&self) -> String {
        self.token_endpoint_of(REALM)
    }

    /// The admin REST API, as the bootstrap admin.
    pub async fn admin(&self) -> Admin {
        let http = reqwest::Client::new();
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
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = r["access_token"].as_str().expect("admin token").to_string();
        Admin {
            base: format!("{}/admin/realms", self.url),
            http,
            token,
        }
    }

    /// Creates the demo realm, then its own scopes as optional client scopes.
    async fn import_demo_realm(&self) {
        self.create_demo_realm(REALM).await;
    }

    /// Creates a copy of the demo realm named `name`, for a test that changes it (its
    /// keys, its sessions) without touching the realm other tests share.
    pub async fn create_demo_realm(&self, name: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/realm.yaml");
        let realm = Realm::from_yaml_file(&path).unwrap();
        let admin = self.admin().await;
        let mut representation = realm.keycloak_representation();
        representation["realm"] = json!(name);
        // A user's id is unique across realms, and the keycloak overlay's realm.json
        // (imported as it ships by tests/cases/keycloak_overlay.rs) holds the demo's: the
        // tests' realms let Keycloak choose theirs.
        for user in representation["users"].as_array_mut().unwrap() {
            user.as_object_mut().unwrap().remove("id");
        }
        admin.post("", &representation).await;
        let mut scope_ids = std::collections::HashMap::new();
        for (client_id, scopes) in realm.keycloak_client_scopes() {
            let id = admin.client_uuid(name, &client_id).await;
            for scope in scopes {
                if !scope_ids.contains_key(&scope) {
                    let created = admin
                        .post(
                            &format!("{name}/client-scopes"),
                            &realm.keycloak_client_scope(&scope),
                        )
                        .await;
                    scope_ids.insert(scope.clone(), created);
                }
                admin
                    .put(&format!(
                        "{name}/clients/{id}/optional-client-scopes/{}",
                        scope_ids[&scope]
                    ))
                    .await;
            }
        }
    }

    /// `user`'s token from the demo realm's front end (`agent-portal`), password
    /// `{user}123`: it names every agent in `aud`, and no agent as `azp`.
    pub async fn user_token(&self, user: &str) -> String {
        self.user_token_in(REALM, user).await
    }

    /// [`Self::user_token`] in `realm`.
    pub async fn user_token_in(&self, realm: &str, user: &str) -> String {
        let password = format!("{user}123");
        self.password_token_in(realm, (PORTAL, PORTAL_SECRET), user, &password)
            .await
            .unwrap_or_else(|(status, body)| panic!("no token for {user}: {status} {body}"))
    }

    /// A user's token from the `password` grant through a client, in `realm`. Err: the
    /// status and body of Keycloak's refusal.
    pub async fn password_token_in(
        &self,
        realm: &str,
        client: (&str, &str),
        user: &str,
        password: &str,
    ) -> Result<String, (u16, Value)> {
        let grant = [
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
            ("scope", "openid"),
        ];
        self.token_request(realm, client, &grant).await
    }

    /// `client`'s own token (`client_credentials`, its service account), in `realm`.
    pub async fn client_token_in(&self, realm: &str, client: (&str, &str)) -> String {
        self.token_request(realm, client, &[("grant_type", "client_credentials")])
            .await
            .unwrap_or_else(|(status, body)| panic!("no client token: {status} {body}"))
    }

    /// `subject` exchanged (standard token exchange, no actor token) by `client` for
    /// `audience`, in `realm`. Err: the status and body of Keycloak's refusal.
    pub async fn exchange_in(
        &self,
        realm: &str,
        client: (&str, &str),
        subject: &str,
        audience: &str,
    ) -> Result<String, (u16, Value)> {
        let grant = [
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", subject),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("audience", audience),
        ];
        self.token_request(realm, client, &grant).await
    }

    /// One request to `realm`'s token endpoint, `client` authenticating with
    /// `client_secret_post`: the access token, or the status and body of the refusal.
    async fn token_request(
        &self,
        realm: &str,
        (client_id, secret): (&str, &str),
        grant: &[(&str, &str)],
    ) -> Result<String, (u16, Value)> {
        let mut form = vec![("client_id", client_id), ("client_secret", secret)];
        form.extend_from_slice(grant);
        let r = reqwest::Client::new()
            .post(self.token_endpoint_of(realm))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or_default();
        match body["access_token"].as_str() {
            Some(token) if status == 200 => Ok(token.to_string()),
            _ => Err((status, body)),
        }
    }
}

/// Keycloak's admin REST API (`/admin/realms/…`); every call must succeed.
pub struct Admin {
    base: String,
    http: reqwest::Client,
    token: String,
}

impl Admin {
    fn url(&self, path: &str) -> String {
        if path.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{path}", self.base)
        }
    }

    /// Sends `method path` (with `body` as JSON, if any); the call must succeed.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method.clone(), self.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        if !status.is_success() {
            panic!("{method} {path}: {status} {}", r.text().await.unwrap());
        }
        r
    }

    /// `POST`s `body` to `path`; the created object's id (from `Location`), if any.
    pub async fn post(&self, path: &str, body: &Value) -> String {
        let r = self.send(reqwest::Method::POST, path, Some(body)).await;
        r.headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .unwrap_or_default()
            .to_string()
    }

    /// `PUT` without a body.
    pub async fn put(&self, path: &str) {
        self.send(reqwest::Method::PUT, path, None).await;
    }

    /// `PUT`s `body` to `path`.
    pub async fn put_json(&self, path: &str, body: &Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await;
    }

    pub async fn get(&self, path: &str) -> Value {
        let r = self.send(reqwest::Method::GET, path, None).await;
        r.json().await.unwrap()
    }

    /// The internal id of the client `client_id` of `realm`.
    pub async fn client_uuid(&self, realm: &str, client_id: &str) -> String {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("clientId", client_id)
            .finish();
        let clients = self.get(&format!("{realm}/clients?{query}")).await;
        clients[0]["id"].as_str().expect("client id").to_string()
    }
}
