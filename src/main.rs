//! The `actbridge` command line. Only argument parsing and exit codes live here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use actbridge::config::{Config, ProcessEnv};
use actbridge::telemetry::{self, LogFormat};

/// Exit code for a configuration error (sysexits EX_CONFIG).
const EX_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(
    name = "actbridge",
    version,
    about = "Zero-trust ext_proc sidecar for AI agents"
)]
struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "ACTBRIDGE_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sidecar (ext_proc server and admin listener).
    Serve {
        /// The YAML config file.
        #[arg(short, long, env = "ACTBRIDGE_CONFIG")]
        config: PathBuf,
    },
    /// Run the embedded token service (Keycloak-dialect RFC 8693 issuer).
    Sts {
        /// The realm file (users and clients), e.g. demo/realm.yaml.
        #[arg(long, env = "ACTBRIDGE_STS_REALM")]
        realm: PathBuf,
        /// Listening address.
        #[arg(long, default_value = "127.0.0.1:8180", env = "ACTBRIDGE_STS_LISTEN")]
        listen: std::net::SocketAddr,
        /// Base URL clients use; the issuer is `{public_url}/realms/{realm}`.
        /// Default: `http://{listen}`.
        #[arg(long, env = "ACTBRIDGE_STS_PUBLIC_URL")]
        public_url: Option<String>,
        /// PEM file of the RSA signing key. Default: a key generated at start.
        #[arg(long, env = "ACTBRIDGE_STS_SIGNING_KEY")]
        signing_key: Option<PathBuf>,
    },
    /// Run the end-to-end demo (token service, actbridge, the real Envoy, an agent and a
    /// document service) and print what each hop saw.
    Demo {
        /// The Envoy binary.
        #[arg(long, env = "ACTBRIDGE_ENVOY")]
        envoy: PathBuf,
        /// The repository root (holds envoy/ and demo/).
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
    /// Validate a config file and exit (0 = valid; 78 = invalid, with the key named).
    CheckConfig {
        /// The YAML config file.
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own story; its components only log warnings.
    let default_filter = if matches!(cli.command, Command::Demo { .. }) {
        "warn"
    } else {
        "info"
    };
    telemetry::init(cli.log_format, default_filter);
    match cli.command {
        Command::CheckConfig { config } => match Config::load(&config, &ProcessEnv) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", config.display());
                ExitCode::from(EX_CONFIG)
            }
        },
        Command::Sts {
            realm,
            listen,
            public_url,
            signing_key,
        } => {
            let realm = match actbridge::sts::Realm::from_yaml_file(&realm) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("actbridge sts: refusing to start: {e}");
                    return ExitCode::from(EX_CONFIG);
                }
            };
            let key = match signing_key.map(std::fs::read).transpose() {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("actbridge sts: cannot read --signing-key: {e}");
                    return ExitCode::from(EX_CONFIG);
                }
            };
            let url = public_url.unwrap_or_else(|| format!("http://{listen}"));
            let service = match actbridge::sts::TokenService::new(realm, &url, key.as_deref()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("actbridge sts: refusing to start: {e}");
                    return ExitCode::from(EX_CONFIG);
                }
            };
            run_async(|shutdown| async move {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
                tracing::info!(issuer = %service.issuer(), "token service ready");
                service
                    .serve(listener, shutdown)
                    .await
                    .map_err(|e| e.to_string())
            })
        }
        Command::Demo { envoy, root } => run_async(|shutdown| async move {
            actbridge::demo::run(actbridge::demo::DemoOptions { envoy, root }, shutdown).await
        }),
        Command::Serve { config } => {
            let cfg = match Config::load(&config, &ProcessEnv) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("actbridge: refusing to start: {}: {e}", config.display());
                    return ExitCode::from(EX_CONFIG);
                }
            };
            run_async(|shutdown| async move {
                actbridge::serve::run(cfg, shutdown)
                    .await
                    .map_err(|e| e.to_string())
            })
        }
    }
}

/// Runs `f` on a multi-threaded runtime with a shutdown token cancelled by SIGINT or
/// SIGTERM.
fn run_async<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("actbridge: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let shutdown = CancellationToken::new();
        let signals = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received");
            signals.cancel();
        });
        match f(shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("actbridge: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
