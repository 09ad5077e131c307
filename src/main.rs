//! The `actbridge` command line. Only argument parsing and exit codes live here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use actbridge::config::{Config, ProcessEnv};
use actbridge::policy::PolicyEngine;
use actbridge::telemetry::{self, LogFormat};

/// Exit code for a configuration error (sysexits EX_CONFIG).
const EX_CONFIG: u8 = 78;
/// Exit code for input refused by `inject` (sysexits EX_DATAERR).
const EX_DATAERR: u8 = 65;
/// Exit code for a file `inject` cannot read or write (sysexits EX_IOERR).
const EX_IOERR: u8 = 74;

/// The version and the git revision built (`build.rs`).
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("ACTBRIDGE_REVISION"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "actbridge",
    version,
    long_version = LONG_VERSION,
    about = "Zero-trust ext_proc sidecar for AI agents"
)]
struct Cli {
    /// Log format: `auto` is `text` on a terminal and `json` otherwise (in a pod).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
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
        /// The MiniStack launcher (PyPI `ministack`): with it the demo also reads S3
        /// through the sidecar with no AWS key in the agent. The sidecar's base AWS
        /// credential comes from the environment (`make demo` sets MiniStack's root).
        #[arg(long, env = "ACTBRIDGE_MINISTACK")]
        ministack: Option<PathBuf>,
        /// A Keycloak distribution (the directory holding `bin/kc.sh`; `make
        /// demo-keycloak` fetches 26.7.3): the demo then walks against a real Keycloak,
        /// set up from the keycloak overlay's realm.json and register-agent.sh, instead
        /// of the embedded token service.
        #[arg(long, env = "ACTBRIDGE_KEYCLOAK_HOME")]
        keycloak: Option<PathBuf>,
    },
    /// Validate a config file, and compile its policy, and exit (0 = valid; 78 =
    /// invalid, with the key, or the policy file and line, named).
    CheckConfig {
        #[command(flatten)]
        out: OutputArg,
        /// The YAML config file.
        config: PathBuf,
        /// Do not read secrets (client secrets, passwords, tokens, private keys): their
        /// files need not exist nor their variables be set, as in CI or on a laptop.
        /// The keys left unchecked are listed; everything else is checked.
        #[arg(long)]
        offline: bool,
    },
    /// Print the config file's JSON Schema (what docs/actbridge.schema.json holds), for
    /// editors and CI validators.
    ConfigSchema,
    /// Print the outbound listener's `route_config` for Envoy, generated from the config's
    /// route table (only the routes are read: no secret, key or peer is needed). Envoy's
    /// outbound routes must be these: actbridge refuses a request whose Envoy route or
    /// cluster is not the one it judged (docs/security.md). Exit 78 when the routes are
    /// invalid.
    EnvoyRoutes {
        /// The YAML config file.
        config: PathBuf,
    },
    /// Add the sidecars (Envoy, actbridge, the traffic-capture init container) to every
    /// pod template of Kubernetes objects, like `istioctl kube-inject`. Idempotent;
    /// objects without pods pass through unchanged. Refuses what it does not understand
    /// (exit 65, naming the object and why) and then writes nothing.
    Inject {
        /// The manifests: one or more YAML documents (`-` = stdin).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Write the result here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Work with a Rego policy directory.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// List, approve or deny requests held for a human approval, through the admin API
    /// (docs/admin-api.md).
    Approvals {
        #[command(flatten)]
        out: OutputArg,
        #[command(flatten)]
        admin: AdminArgs,
        #[command(subcommand)]
        command: ApprovalsCommand,
    },
    /// List, add or lift revocations (the deny list every request is checked against),
    /// through the admin API (docs/admin-api.md).
    Revocations {
        #[command(flatten)]
        out: OutputArg,
        #[command(flatten)]
        admin: AdminArgs,
        #[command(subcommand)]
        command: RevocationsCommand,
    },
    /// Print the version and the git revision built.
    Version {
        #[command(flatten)]
        out: OutputArg,
    },
    /// Print a shell completion script: `actbridge completions bash >
    /// /etc/bash_completion.d/actbridge` (also zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Work with the audit log (docs/audit.md).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

/// `-o/--output`: how a command's result is printed.
#[derive(Args, Clone, Copy)]
struct OutputArg {
    /// `text` for people, `json` for scripts (one JSON document on stdout).
    #[arg(
        long,
        short = 'o',
        global = true,
        value_enum,
        default_value = "text",
        env = "ACTBRIDGE_OUTPUT"
    )]
    output: Output,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// For people.
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// Where the admin API is and the admin's token.
#[derive(Args)]
struct AdminArgs {
    /// The admin API's base URL (`admin_api.listen`; from outside the pod, through
    /// `kubectl port-forward`).
    #[arg(
        long,
        env = "ACTBRIDGE_ADMIN_URL",
        default_value = "http://127.0.0.1:9903"
    )]
    admin_url: String,
    /// A file holding the admin's bearer token (or set ACTBRIDGE_ADMIN_TOKEN).
    #[arg(long, env = "ACTBRIDGE_ADMIN_TOKEN_FILE")]
    token_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum RevocationsCommand {
    /// The deny list: what is revoked, by whom, when and why.
    List,
    /// Revoke a user, an agent, one token, or every token issued before a time.
    Add {
        /// What is revoked.
        #[arg(long, value_enum)]
        kind: RevocationKindArg,
        /// Whom or what: a username or `sub`, an agent's client id (SPIFFE ID), a
        /// token's `jti`, or Unix seconds for `issued_before`.
        #[arg(long)]
        value: String,
        /// Why, for the next operator (kept with the entry and audited).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a revocation.
    Remove {
        /// What was revoked.
        #[arg(long, value_enum)]
        kind: RevocationKindArg,
        /// Whom or what.
        #[arg(long)]
        value: String,
    },
}

/// A revocation's kind, as the admin API names it.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum RevocationKindArg {
    /// A user (`preferred_username` or `sub`).
    User,
    /// An agent anywhere in the chain.
    Agent,
    /// One token (`jti`).
    Token,
    /// Every token issued before a time (Unix seconds).
    #[value(name = "issued_before")]
    IssuedBefore,
}

impl RevocationKindArg {
    fn as_str(self) -> &'static str {
        match self {
            RevocationKindArg::User => "user",
            RevocationKindArg::Agent => "agent",
            RevocationKindArg::Token => "token",
            RevocationKindArg::IssuedBefore => "issued_before",
        }
    }
}

#[derive(Subcommand)]
enum ApprovalsCommand {
    /// The requests waiting: who, which agents, what, why, until when.
    List,
    /// Let the held request `id` go on.
    Approve {
        /// The approval's id (from `list`).
        id: String,
    },
    /// Refuse the held request `id` (403 approval_denied).
    Deny {
        /// The approval's id (from `list`).
        id: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain (and, with --public-key, every checkpoint's signature) of
    /// the files given, in chain order: rotated files first (`audit.log.*`, which sort
    /// in order), the active file last. Exit 0 = intact, 1 = the first record changed,
    /// removed, inserted or reordered is reported, 2 = the files cannot be read.
    Verify {
        #[command(flatten)]
        out: OutputArg,
        /// The audit files, oldest first.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The checkpoint signing key's public half (PEM, SubjectPublicKeyInfo:
        /// `openssl pkey -in key.pem -pubout`).
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// Fail (exit 1) unless the files start the chain (record 1, linked to the
        /// genesis): records deleted from the start are found. Leave it off for a set
        /// that starts at a kept rotated file (`audit.retain_files`).
        #[arg(long)]
        from_start: bool,
        /// Fail (exit 1) unless the last record is a checkpoint whose signature verifies
        /// (needs `--public-key`): records deleted from the end are found. A sidecar
        /// writes a checkpoint when it stops; a running one may have records after it.
        #[arg(long, requires = "public_key")]
        signed_end: bool,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Run the Rego unit tests (`test_*` rules in `*_test.rego`); exit 1 if one fails.
    Test {
        #[command(flatten)]
        out: OutputArg,
        /// The policy directory.
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
    /// Print the decision for one input document (JSON), as the sidecar would take it.
    Eval {
        /// The input document (JSON file; `-` = stdin).
        #[arg(long)]
        input: PathBuf,
        /// The policy directory.
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
        /// The rule evaluated.
        #[arg(long, default_value = "data.actbridge.decision")]
        entrypoint: String,
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
    // `serve` sets up logging together with its trace exporter, once its config is read.
    if !matches!(cli.command, Command::Serve { .. })
        && let Err(e) = telemetry::init(cli.log_format, default_filter)
    {
        eprintln!("actbridge: {e}");
        return ExitCode::from(EX_CONFIG);
    }
    match cli.command {
        Command::CheckConfig {
            config,
            offline,
            out,
        } => check_config(&config, offline, out.output),
        Command::EnvoyRoutes { config } => envoy_routes_command(&config),
        Command::ConfigSchema => {
            print!("{}", actbridge::config::json_schema());
            ExitCode::SUCCESS
        }
        Command::Policy { command } => policy_command(command),
        Command::Audit { command } => audit_command(command),
        Command::Approvals {
            admin,
            command,
            out,
        } => admin_command("approvals", &admin, out.output, |url, token| async move {
            use actbridge::admin::client;
            match command {
                ApprovalsCommand::List => client::approvals(&url, &token)
                    .await
                    .map(|v| (client::approvals_text(&v), v)),
                ApprovalsCommand::Approve { id } => client::decide(&url, &token, &id, true)
                    .await
                    .map(|v| (client::decision_text(&v), v)),
                ApprovalsCommand::Deny { id } => client::decide(&url, &token, &id, false)
                    .await
                    .map(|v| (client::decision_text(&v), v)),
            }
        }),
        Command::Revocations {
            admin,
            command,
            out,
        } => admin_command("revocations", &admin, out.output, |url, token| async move {
            use actbridge::admin::client;
            match command {
                RevocationsCommand::List => client::revocations(&url, &token)
                    .await
                    .map(|v| (client::revocations_text(&v), v)),
                RevocationsCommand::Add {
                    kind,
                    value,
                    reason,
                } => client::revoke(&url, &token, kind.as_str(), &value, reason.as_deref())
                    .await
                    .map(|v| (client::revoked_text(&v), v)),
                RevocationsCommand::Remove { kind, value } => {
                    client::lift(&url, &token, kind.as_str(), &value)
                        .await
                        .map(|v| (client::lifted_text(&v), v))
                }
            }
        }),
        Command::Version { out } => {
            match out.output {
                Output::Text => println!("actbridge {LONG_VERSION}"),
                Output::Json => println!(
                    "{}",
                    serde_json::json!({
                        "version": env!("CARGO_PKG_VERSION"),
                        "revision": env!("ACTBRIDGE_REVISION"),
                    })
                ),
            }
            ExitCode::SUCCESS
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "actbridge",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Inject { file, output } => inject_command(&file, output.as_deref()),
        Command::Sts {
            realm,
            listen,
            public_url,
            signing_key,
        } => {
            let realm = match actbridge_sts::Realm::from_yaml_file(&realm) {
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
            let service = match actbridge_sts::TokenService::new(realm, &url, key.as_deref()) {
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
        Command::Demo {
            envoy,
            root,
            ministack,
            keycloak,
        } => run_async(|shutdown| async move {
            let actbridge = std::env::current_exe()
                .map_err(|e| format!("cannot find the actbridge binary: {e}"))?;
            let opts = actbridge_devkit::DemoOptions {
                actbridge,
                envoy,
                root,
                ministack,
                keycloak,
            };
            actbridge_devkit::run(opts, shutdown).await
        }),
        Command::Serve { config } => serve(cli.log_format, &config),
    }
}

/// `serve`: the config is read first (its `telemetry` section and `OTEL_*` shape the
/// subscriber), then logging and the trace exporter are set up inside the runtime (the
/// gRPC exporter lives on it), then the policy is loaded, and the sidecar runs until a
/// signal. After the drain the exporter sends what it still holds.
fn serve(log_format: LogFormat, path: &Path) -> ExitCode {
    // Config errors name the file and the line of each key; the others their file or
    // variable.
    let refuse = |e: &dyn std::fmt::Display| {
        eprintln!("actbridge: refusing to start: {e}");
        ExitCode::from(EX_CONFIG)
    };
    let cfg = match Config::load(path, &ProcessEnv) {
        Ok(c) => c,
        Err(e) => return refuse(&e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let traces = {
        let _in_runtime = rt.enter();
        telemetry::init_with_traces(log_format, "info", &cfg.telemetry)
    };
    let traces = match traces {
        Ok(t) => t,
        Err(e) => return refuse(&e),
    };
    let policy = match PolicyEngine::load_configured(cfg.policy.as_ref()) {
        Ok(p) => p,
        Err(e) => return refuse(&e),
    };
    run_on(rt, |shutdown| async move {
        let result = actbridge::serve::run(cfg, policy, shutdown)
            .await
            .map_err(|e| e.to_string());
        traces.shutdown().await;
        result
    })
}

/// `check-config`: the config validated (offline: without its secrets) and its policy
/// compiled.
fn check_config(path: &Path, offline: bool, output: Output) -> ExitCode {
    let checked = if offline {
        Config::check_offline(path, &ProcessEnv)
    } else {
        Config::load(path, &ProcessEnv).map(|cfg| (cfg, Vec::new()))
    };
    // Each problem as (line, key, what); a config error names the file and the line of
    // each key, a policy error its own file and line.
    let result: Result<Vec<String>, Vec<Problem>> = match checked {
        Err(e) => Err(config_problems(&e)),
        Ok((cfg, unread)) => PolicyEngine::load_configured(cfg.policy.as_ref())
            .map(|_| unread)
            .map_err(|e| vec![(None, None, format!("policy: {e}"))]),
    };
    if output == Output::Json {
        let (ok, unread, problems) = match &result {
            Ok(unread) => (true, unread.clone(), Vec::new()),
            Err(p) => (false, Vec::new(), p.clone()),
        };
        let problems: Vec<serde_json::Value> = problems
            .into_iter()
            .map(|(line, key, message)| {
                serde_json::json!({ "line": line, "key": key, "message": message })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "file": path.display().to_string(),
                "ok": ok,
                "not_read": unread,
                "problems": problems,
            })
        );
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EX_CONFIG)
        };
    }
    match result {
        Ok(unread) => {
            println!("{}: ok", path.display());
            if !unread.is_empty() {
                println!("not read (--offline): {}", unread.join(", "));
            }
            ExitCode::SUCCESS
        }
        Err(problems) => {
            let file = path.display();
            for (line, _, message) in &problems {
                match line {
                    Some(l) => eprintln!("{file}:{l}: {message}"),
                    None => eprintln!("{file}: {message}"),
                }
            }
            if problems.len() > 1 {
                eprintln!("{} problems", problems.len());
            }
            ExitCode::from(EX_CONFIG)
        }
    }
}

/// One problem `check-config` reports: (line, key, message).
type Problem = (Option<usize>, Option<String>, String);

/// A config error's problems.
fn config_problems(e: &actbridge::config::ConfigError) -> Vec<Problem> {
    use actbridge::config::ConfigError;
    match e {
        ConfigError::Several { problems, .. } => problems
            .iter()
            .map(|(line, p)| (*line, p.key().map(str::to_string), p.to_string()))
            .collect(),
        other => vec![(None, other.key().map(str::to_string), other.to_string())],
    }
}

fn envoy_routes_command(path: &Path) -> ExitCode {
    let table = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|text| {
            actbridge::config::route_table_from_yaml(&text).map_err(|e| e.to_string())
        });
    match table {
        Ok(Some(table)) => {
            print!(
                "{}",
                actbridge::envoy_routes::outbound_route_config_yaml(&table)
            );
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("{}: no `outbound` section: no routes", path.display());
            ExitCode::from(EX_CONFIG)
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            ExitCode::from(EX_CONFIG)
        }
    }
}

fn inject_command(file: &Path, output: Option<&Path>) -> ExitCode {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(file)
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            eprintln!("actbridge inject: cannot read {}: {e}", file.display());
            return ExitCode::from(EX_IOERR);
        }
    };
    let report = match actbridge_inject::Template::embedded()
        .and_then(|t| actbridge_inject::inject_yaml(&text, &t))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("actbridge inject: {}: {e}", file.display());
            return ExitCode::from(EX_DATAERR);
        }
    };
    for w in &report.warnings {
        eprintln!("actbridge inject: warning: {w}");
    }
    let written = match output {
        Some(path) => std::fs::write(path, &report.output),
        None => std::io::Write::write_all(&mut std::io::stdout().lock(), report.output.as_bytes()),
    };
    if let Err(e) = written {
        let to = output.map_or("stdout".into(), |p| p.display().to_string());
        eprintln!("actbridge inject: cannot write {to}: {e}");
        return ExitCode::from(EX_IOERR);
    }
    ExitCode::SUCCESS
}

fn policy_command(command: PolicyCommand) -> ExitCode {
    match command {
        PolicyCommand::Test { dir, out } => match actbridge::policy::run_tests(&dir) {
            Ok(report) => {
                let failed = report.failed();
                if out.output == Output::Json {
                    let tests: Vec<serde_json::Value> = report
                        .outcomes
                        .iter()
                        .map(|o| {
                            serde_json::json!({
                                "name": o.name,
                                "passed": o.failure.is_none(),
                                "failure": o.failure,
                            })
                        })
                        .collect();
                    println!(
                        "{}",
                        serde_json::json!({
                            "passed": report.outcomes.len() - failed,
                            "failed": failed,
                            "tests": tests,
                        })
                    );
                } else {
                    for o in &report.outcomes {
                        match &o.failure {
                            None => println!("PASS {}", o.name),
                            Some(why) => println!("FAIL {}: {why}", o.name),
                        }
                    }
                    println!("{} passed, {failed} failed", report.outcomes.len() - failed);
                }
                if report.outcomes.is_empty() {
                    eprintln!("no test_* rule found in {}", dir.display());
                }
                if failed > 0 || report.outcomes.is_empty() {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(e) => {
                eprintln!("actbridge policy test: {e}");
                ExitCode::FAILURE
            }
        },
        PolicyCommand::Eval {
            input,
            dir,
            entrypoint,
        } => {
            let text = if input.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(&input)
            };
            let document = match text
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("actbridge policy eval: input {}: {e}", input.display());
                    return ExitCode::FAILURE;
                }
            };
            match actbridge::policy::eval_once(&dir, &entrypoint, document) {
                Ok(decision) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&decision).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("actbridge policy eval: {e}");
                    ExitCode::FAILURE
                }
            }
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
    match runtime() {
        Ok(rt) => run_on(rt, f),
        Err(code) => code,
    }
}

/// The multi-threaded runtime; on failure, the message is printed and the exit code
/// returned.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("actbridge: cannot start the runtime: {e}");
            ExitCode::FAILURE
        })
}

/// Runs `f` on `rt` with a shutdown token cancelled by SIGINT or SIGTERM.
fn run_on<F, Fut>(rt: tokio::runtime::Runtime, f: F) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
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

fn audit_command(command: AuditCommand) -> ExitCode {
    use ed25519_dalek::pkcs8::DecodePublicKey;
    let AuditCommand::Verify {
        out,
        files,
        public_key,
        from_start,
        signed_end,
    } = command;
    let key = match public_key
        .as_deref()
        .map(std::fs::read_to_string)
        .transpose()
    {
        Ok(pem) => match pem.map(|p| ed25519_dalek::VerifyingKey::from_public_key_pem(&p)) {
            Some(Ok(k)) => Some(k),
            Some(Err(_)) => {
                eprintln!("actbridge audit verify: --public-key is not a PEM Ed25519 public key");
                return ExitCode::from(2);
            }
            None => None,
        },
        Err(e) => {
            eprintln!("actbridge audit verify: cannot read --public-key: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match actbridge::audit::verify::verify(&files, key.as_ref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("actbridge audit verify: {e}");
            return ExitCode::from(2);
        }
    };
    let starts = report.first_seq == Some(1);
    let signed_to_end = report.unsigned_tail == 0 && report.checkpoints_verified > 0;
    // The verdict: tampered (1), cut at an end the caller asked about (1), else intact.
    let verdict = if report.problem.is_some() {
        "tampered"
    } else if from_start && !starts {
        "truncated_start"
    } else if signed_end && !signed_to_end {
        "open_end"
    } else {
        "ok"
    };
    let code = if verdict == "ok" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if out.output == Output::Json {
        println!(
            "{}",
            serde_json::json!({
                "verdict": verdict,
                "problem": report.problem.as_ref().map(ToString::to_string),
                "records": report.records,
                "files": files.len(),
                "first_seq": report.first_seq,
                "last_seq": report.last_seq,
                "starts_at_first_record": starts,
                "checkpoints": report.checkpoints,
                "checkpoints_verified": key.as_ref().map(|_| report.checkpoints_verified),
                "records_after_last_signed_checkpoint": report.unsigned_tail,
            })
        );
        return code;
    }
    if let Some(problem) = &report.problem {
        println!("TAMPERED: {problem}");
        println!("(records before it verified: {})", report.records);
        return ExitCode::from(1);
    }
    let range = match (report.first_seq, report.last_seq) {
        (Some(a), Some(b)) => format!(" (sequence {a} to {b})"),
        _ => String::new(),
    };
    println!(
        "ok: {} records{range} in {} file(s)",
        report.records,
        files.len()
    );
    match key {
        Some(_) => println!(
            "checkpoints: {} signed and verified; {} records after the last one are covered by the chain only",
            report.checkpoints_verified, report.unsigned_tail
        ),
        None => println!(
            "checkpoints: {} present, signatures NOT checked (give --public-key)",
            report.checkpoints
        ),
    }
    // What the chain alone cannot show: a cut at either end. Said always; a failure
    // when asked for.
    if !starts {
        println!(
            "start: the first record is {}, not 1: the log starts mid-chain (rotated files not given, deleted by retain_files, or records cut from the start)",
            report.first_seq.unwrap_or(0)
        );
    }
    if report.unsigned_tail > 0 || report.checkpoints_verified == 0 {
        println!(
            "end: {} records after the last signed checkpoint: records cut from the end would not show",
            report.unsigned_tail
        );
    }
    if from_start && !starts {
        println!("TRUNCATED: the log does not start at record 1 (--from-start)");
        return ExitCode::from(1);
    }
    if signed_end && (report.unsigned_tail > 0 || report.checkpoints_verified == 0) {
        println!("TRUNCATED OR OPEN: the log does not end with a signed checkpoint (--signed-end)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// Runs one admin API call with the admin's token and prints its answer (`text`: for
/// people; `json`: the API's answer). Exit 2 without a token, 1 when the call fails.
fn admin_command<F, Fut>(what: &str, admin: &AdminArgs, output: Output, call: F) -> ExitCode
where
    F: FnOnce(String, String) -> Fut,
    Fut: std::future::Future<
            Output = Result<(String, serde_json::Value), actbridge::admin::client::ClientError>,
        >,
{
    let token = match &admin.token_file {
        Some(f) => std::fs::read_to_string(f).map(|t| t.trim().to_string()),
        None => std::env::var("ACTBRIDGE_ADMIN_TOKEN").map_err(std::io::Error::other),
    };
    let Ok(token) = token.map_err(|e| {
        eprintln!("actbridge {what}: no admin token (--token-file or ACTBRIDGE_ADMIN_TOKEN): {e}")
    }) else {
        return ExitCode::from(2);
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::FAILURE;
    };
    match rt.block_on(call(admin.admin_url.clone(), token)) {
        Ok((text, json)) => {
            match output {
                Output::Text => print!("{text}"),
                Output::Json => println!("{json}"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("actbridge {what}: {e}");
            ExitCode::FAILURE
        }
    }
}
