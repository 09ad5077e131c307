//! The actbridge binary, started with a config written by the test.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::net::{free_port, wait_http_ok};

/// The administrative password of the test PostgreSQL, passed to every actbridge as
/// `PGADMIN_PASSWORD` (configs name it with `admin_password_env`).
pub const PGADMIN_PASSWORD: &str = super::postgres::ADMIN_PASSWORD;

/// A running actbridge; killed on drop.
pub struct Actbridge {
    child: Child,
    pub ext_proc_port: u16,
    pub admin_port: u16,
    /// The admin API's port (`{ADMIN_API}`: `admin_api.listen`).
    pub admin_api_port: u16,
    /// The SDS port, when the config asked for one (`{SDS}`).
    pub sds_port: Option<u16>,
    dir: tempfile::TempDir,
    /// The extra environment it was started with (kept for a restart).
    env: Vec<(String, String)>,
}

impl Actbridge {
    /// Starts actbridge with `config` (YAML) in which `{EXT_PROC}`, `{ADMIN}` and
    /// `{ADMIN_API}` are replaced by free ports, and waits until `/readyz` answers 200.
    /// A port handed out by [`free_port`] can be taken by another test before actbridge
    /// binds it; then actbridge is started again on new ports.
    pub async fn start(config: &str) -> Actbridge {
        Self::start_with_env(config, &[]).await
    }

    /// As [`Actbridge::start`], with extra environment variables (e.g. `OTEL_*`).
    pub async fn start_with_env(config: &str, env: &[(&str, &str)]) -> Actbridge {
        for _ in 0..3 {
            let mut a = Self::spawn_with_env(config, env);
            let url = format!("http://127.0.0.1:{}/readyz", a.admin_port);
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while std::time::Instant::now() < deadline {
                if wait_http_ok(&url, Duration::from_millis(100)).await {
                    return a;
                }
                if a.child.try_wait().ok().flatten().is_some() {
                    break;
                }
            }
            let log = a.log();
            if !log.contains("Address already in use") {
                panic!("actbridge did not become ready:\n{log}");
            }
        }
        panic!("actbridge found no free ports in three tries");
    }

    /// Starts actbridge and waits until it is up (`/healthz`), not until it is ready.
    pub async fn start_unready(config: &str) -> Actbridge {
        Self::start_unready_with_env(config, &[]).await
    }

    /// As [`Actbridge::start_unready`], with extra environment variables.
    pub async fn start_unready_with_env(config: &str, env: &[(&str, &str)]) -> Actbridge {
        let a = Self::spawn_with_env(config, env);
        let url = format!("http://127.0.0.1:{}/healthz", a.admin_port);
        assert!(
            wait_http_ok(&url, Duration::from_secs(20)).await,
            "actbridge did not come up:\n{}",
            a.log()
        );
        a
    }

    /// Starts actbridge without waiting for readiness.
    pub fn spawn(config: &str) -> Actbridge {
        Self::spawn_with_env(config, &[])
    }

    /// As [`Actbridge::spawn`], with extra environment variables.
    pub fn spawn_with_env(config: &str, env: &[(&str, &str)]) -> Actbridge {
        let dir = tempfile::tempdir().unwrap();
        let (ext_proc_port, admin_port, admin_api_port) = (free_port(), free_port(), free_port());
        let sds_port = config.contains("{SDS}").then(free_port);
        let config = config
            .replace("{EXT_PROC}", &ext_proc_port.to_string())
            .replace("{ADMIN_API}", &admin_api_port.to_string())
            .replace("{ADMIN}", &admin_port.to_string())
            .replace("{SDS}", &sds_port.unwrap_or_default().to_string());
        let path = dir.path().join("actbridge.yaml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("actbridge.log")).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let child = launch(&path, &env, log);
        Actbridge {
            child,
            ext_proc_port,
            admin_port,
            admin_api_port,
            sds_port,
            dir,
            env,
        }
    }

    /// Its outbound route table (from the config it runs), from which Envoy's outbound
    /// routes are generated; `None` without an `outbound` section or with a config
    /// actbridge refuses.
    pub fn routes(&self) -> Option<actbridge::config::RouteTable> {
        let text = std::fs::read_to_string(self.dir.path().join("actbridge.yaml")).ok()?;
        actbridge::config::route_table_from_yaml(&text)
            .ok()
            .flatten()
    }

    /// Kills the process (SIGKILL, as a crash) if it still runs, starts it again with the
    /// same config, ports and environment (its log appended), and waits for `/readyz`.
    pub async fn restart(&mut self) {
        self.kill();
        let path = self.dir.path().join("actbridge.yaml");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("actbridge.log"))
            .unwrap();
        self.child = launch(&path, &self.env, log);
        let url = format!("http://127.0.0.1:{}/readyz", self.admin_port);
        assert!(
            wait_http_ok(&url, Duration::from_secs(20)).await,
            "actbridge did not become ready again:\n{}",
            self.log()
        );
    }

    /// The process id (for sampling its resources).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its `/metrics` text (the admin listener).
    pub async fn metrics(&self) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.admin_port);
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        r.text().await.unwrap()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("actbridge.log")).unwrap_or_default()
    }

    /// Stops the process as an orchestrator would (SIGTERM) and waits for it to exit;
    /// returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        self.child.wait().is_ok_and(|s| s.success())
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for actbridge")
    }

    /// The directory of its config and log (for files a test wants next to them).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the process now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Actbridge {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `actbridge serve --config path` with the test environment, stderr to `log`.
fn launch(path: &std::path::Path, env: &[(String, String)], log: std::fs::File) -> Child {
    Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .env("ACTBRIDGE_LOG", "actbridge=debug,info")
        // The base AWS credential of every test sidecar: MiniStack's root. Nothing of
        // the developer's own AWS set-up may leak in.
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PGADMIN_PASSWORD", PGADMIN_PASSWORD)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start actbridge")
}
