//! `actbridge demo`: the whole picture on one machine. The embedded token service (or,
//! with `--keycloak`, a real Keycloak: [`keycloak`]), an agent app and a document service
//! (small servers of the project's own), actbridge (`actbridge serve`, a child process,
//! as users run it) and the real Envoy; alice's request walks alice → summarizer-tech →
//! document service, and what each hop saw is printed, followed by refused cases.
//! Everything starts on free loopback ports and stops at the end (also on Ctrl-C: the
//! caller cancels `shutdown`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::ministack::{AwsCreds, BUCKET, MiniStack, REGION, ROLE_ARN, xml_text};
use crate::services::{self, CREDENTIALS_HOST, LastAgentSaw, LastReceived, S3_HOST};
use crate::sidecar::{ExtProcEndpoint, SidecarPorts, render, with_routes};
use actbridge_sts::{Realm, TokenService};
use issuer::Issuer;

mod issuer;
mod keycloak;

const AGENT: &str = "spiffe://demo.example.com/agent/summarizer-tech";
const DOCUMENT_SERVICE: &str = "spiffe://demo.example.com/service/document-service";

/// What the demo needs from the command line.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The actbridge binary (`actbridge demo` passes its own).
    pub actbridge: PathBuf,
    /// The Envoy binary.
    pub envoy: PathBuf,
    /// The repository root (for `envoy/sidecar.yaml` and `demo/realm.yaml`).
    pub root: PathBuf,
    /// The MiniStack launcher; without it the S3 part is skipped.
    pub ministack: Option<PathBuf>,
    /// A Keycloak distribution (the directory holding `bin/kc.sh`): with it the demo
    /// walks against a real Keycloak set up from the keycloak overlay's artefacts
    /// instead of the embedded token service.
    pub keycloak: Option<PathBuf>,
}

type DemoResult<T> = Result<T, String>;

async fn bind() -> DemoResult<(tokio::net::TcpListener, u16)> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let p = l.local_addr().map_err(|e| e.to_string())?.port();
    Ok((l, p))
}

fn free_port() -> DemoResult<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Runs the demo until it is done or `shutdown` is cancelled.
pub async fn run(mut opts: DemoOptions, shutdown: CancellationToken) -> DemoResult<()> {
    // The sidecar's config is written elsewhere, and actbridge reads a relative path
    // against its config file's directory: every path the demo hands on is absolute.
    opts.root = opts
        .root
        .canonicalize()
        .map_err(|e| format!("--root {}: {e}", opts.root.display()))?;
    let stop = shutdown.child_token();
    let result = tokio::select! {
        r = script(&opts, stop.clone()) => r,
        _ = shutdown.cancelled() => Err("interrupted".into()),
    };
    stop.cancel();
    // Give the in-process servers (and the children, killed on drop) a moment to close
    // their listeners.
    tokio::time::sleep(Duration::from_millis(100)).await;
    result
}

/// Starts every piece, walks, and stops them. Long by design: the set-up is read in
/// the order the pieces depend on each other.
async fn script(opts: &DemoOptions, stop: CancellationToken) -> DemoResult<()> {
    println!("== actbridge demo: alice -> summarizer-tech -> document-service ==\n");
    let dir = tempfile_dir()?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    // 1. The token service with the demo world: the embedded one, or a real Keycloak.
    let sts = match &opts.keycloak {
        None => {
            let realm = Realm::from_yaml_file(&opts.root.join("demo/realm.yaml"))
                .map_err(|e| e.to_string())?;
            let (sts_listener, sts_port) = bind().await?;
            let sts = TokenService::new(realm, &format!("http://127.0.0.1:{sts_port}"), None)
                .map_err(|e| e.to_string())?;
            tokio::spawn(sts.clone().serve(sts_listener, stop.clone()));
            println!("token service   {}", sts.issuer());
            Issuer::Embedded(sts)
        }
        Some(dist) => {
            println!("keycloak        starting {} …", dist.display());
            let kc = keycloak::DemoKeycloak::start(dist, &opts.root, &dir, &http).await?;
            println!(
                "keycloak        {} (realm: manifests/overlays/keycloak/realm.json; summarizer-tech: deploy/keycloak/register-agent.sh)",
                kc.issuer()
            );
            Issuer::Keycloak(Box::new(kc))
        }
    };

    // 2. The document service and the agent app.
    let (docs_listener, docs_port) = bind().await?;
    let received = LastReceived::default();
    tokio::spawn(services::document_service(
        docs_listener,
        received.clone(),
        stop.clone(),
    ));
    let (agent_listener, agent_port) = bind().await?;

    // 3. MiniStack (AWS STS + S3, enforcing session policies), when available.
    let aws = start_ministack(opts).await?;
    let ports = SidecarPorts {
        sds: None,
        admin: free_port()?,
        inbound: free_port()?,
        outbound: free_port()?,
        ext_proc: ExtProcEndpoint::Tcp(free_port()?),
        app: agent_port,
        document_service: docs_port,
        // Without MiniStack the cluster points at a port nothing listens on.
        aws_s3: match &aws {
            Some(m) => m.port,
            None => free_port()?,
        },
        // No GitHub in this walk-through: a port nothing listens on.
        github_api: free_port()?,
    };
    let saw = LastAgentSaw::default();
    tokio::spawn(services::agent(
        agent_listener,
        ports.outbound,
        saw.clone(),
        stop.clone(),
    ));

    // 4. actbridge as summarizer-tech's sidecar: `actbridge serve`, as users run it.
    let ExtProcEndpoint::Tcp(ext_proc_port) = ports.ext_proc else {
        unreachable!("TCP chosen above")
    };
    let policies = opts.root.join("policies");
    let sts_endpoint = aws.as_ref().map(|m| m.endpoint());
    let sidecar_yaml = sidecar_config(&sts, ext_proc_port, &policies, sts_endpoint.as_deref());
    let sidecar_cfg = dir.join("actbridge.yaml");
    std::fs::write(&sidecar_cfg, &sidecar_yaml).map_err(|e| e.to_string())?;
    // Envoy's outbound routes are generated from actbridge's (`actbridge envoy-routes`).
    let routes = actbridge_output(&opts.actbridge, "envoy-routes", &sidecar_cfg)?;
    let _actbridge = tokio::process::Command::new(&opts.actbridge)
        .arg("serve")
        .arg("--config")
        .arg(&sidecar_cfg)
        .env("ACTBRIDGE_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start actbridge at {}: {e}",
                opts.actbridge.display()
            )
        })?;
    // Envoy fails a request closed (500) while the ext_proc server is not listening yet.
    wait_listening(ext_proc_port, "actbridge's ext_proc server").await?;
    println!("actbridge       ext_proc 127.0.0.1:{ext_proc_port}");

    // 5. The real Envoy with the shipped sidecar config.
    let template =
        std::fs::read_to_string(opts.root.join("envoy/sidecar.yaml")).map_err(|e| e.to_string())?;
    let rendered = render(&template, &ports)
        .and_then(|r| with_routes(&r, &routes))
        .map_err(|e| e.to_string())?;
    let envoy_cfg = dir.join("envoy.yaml");
    std::fs::write(&envoy_cfg, rendered).map_err(|e| e.to_string())?;
    let mut envoy = tokio::process::Command::new(&opts.envoy)
        .arg("-c")
        .arg(&envoy_cfg)
        .args(["--log-level", "error", "--concurrency", "1", "--base-id"])
        .arg(ports.admin.to_string())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start Envoy at {}: {e}", opts.envoy.display()))?;
    wait_ok(
        &http,
        &format!("http://127.0.0.1:{}/ready", ports.admin),
        "Envoy",
    )
    .await?;
    println!(
        "envoy           inbound 127.0.0.1:{} -> agent, outbound 127.0.0.1:{} -> destinations\n",
        ports.inbound, ports.outbound
    );

    let mut outcome = walk(&http, &sts, &ports, &saw, &received).await;
    if outcome.is_ok()
        && let Some(ms) = &aws
    {
        outcome = walk_s3(&http, &sts, &ports, ms).await;
    }
    if outcome.is_ok() {
        println!(
            "\nDone: the user's token never left actbridge (the agent held only a placeholder, and no AWS key); every refusal failed closed."
        );
    }
    let _ = envoy.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// The walk itself. Long by design: the demo's script, one step after another in the
/// order it is printed.
async fn walk(
    http: &reqwest::Client,
    sts: &Issuer,
    ports: &SidecarPorts,
    saw: &LastAgentSaw,
    received: &LastReceived,
) -> DemoResult<()> {
    // alice logs in at the front end: her token's audience names the agent.
    let token = sts.login(http, "alice").await?;
    let c = claims(&token)?;
    println!("1. alice logs in at the front end (password grant via agent-portal)");
    println!(
        "   her token: sub={} aud={} exp in {}s\n",
        c["sub"],
        c["aud"],
        c["exp"].as_u64().unwrap_or(0).saturating_sub(now_secs())
    );

    let url = format!("http://127.0.0.1:{}/summarize/DOC-001", ports.inbound);
    let resp = http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    println!(
        "2. alice -> Envoy inbound -> actbridge verifies, asks the policy, delegates -> agent: HTTP {status}"
    );
    let held = saw.lock().ok().and_then(|s| s.clone()).unwrap_or_default();
    for (k, v) in &held.identity {
        println!("   agent saw {k}: {v}");
    }
    // Token custody: the agent holds a placeholder, not a token.
    let placeholder = held.token.clone().unwrap_or_default();
    println!(
        "   agent holds an opaque placeholder, not a token: {}… ({} chars; actbridge keeps the delegated token)",
        placeholder.chars().take(18).collect::<String>(),
        placeholder.len()
    );
    println!();
    println!("3. agent -> Envoy outbound -> actbridge exchanges (RFC 8693) -> document-service");
    let got = received
        .lock()
        .ok()
        .and_then(|r| r.clone())
        .ok_or("the document service received nothing")?;
    let delegated = got
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .ok_or("the document service received no bearer token")?;
    let d = claims(delegated)?;
    println!(
        "   document-service received {} with a delegated token:",
        got.path
    );
    println!("     sub = {}  (alice, preserved)", d["sub"]);
    println!("     preferred_username = {}", d["preferred_username"]);
    let (actor, one_agent) = sts.actor(&d);
    println!("     {actor}");
    println!("     aud = {}  (this service only)", d["aud"]);
    println!("     scope = {}", d["scope"]);
    println!(
        "     exp in {}s",
        d["exp"].as_u64().unwrap_or(0).saturating_sub(now_secs())
    );
    println!(
        "     alice's own token reached it: {}",
        if delegated == token {
            "YES (bug)"
        } else {
            "no"
        }
    );
    println!(
        "   answer to alice: HTTP {status} {}",
        body.lines().next().unwrap_or("")
    );
    if !status.is_success()
        || delegated == token
        || !one_agent
        || d["aud"] != DOCUMENT_SERVICE
        || !placeholder.starts_with("actbridge~")
        || placeholder.contains('.')
    {
        return Err("the delegated request did not go as expected".into());
    }

    println!("\n4. refused delegations (the policy's reason is the answer)");
    let carol = sts.login(http, "carol").await?;
    report(
        "carol -> summarizer-tech (hr ∩ finance,engineering = ∅)",
        http.get(&url).bearer_auth(&carol),
        403,
    )
    .await?;
    let hr_doc = format!("http://127.0.0.1:{}/summarize/DOC-004", ports.inbound);
    report(
        "alice's agent asks for DOC-004 (hr)",
        http.get(&hr_doc).bearer_auth(&token),
        403,
    )
    .await?;

    println!("\n5. refused tokens and destinations");
    let expired = sts.expired_token(http, &c["sub"]).await?;
    report("expired token", http.get(&url).bearer_auth(&expired), 401).await?;
    let mut forged = claims(&token)?;
    forged["preferred_username"] = json!("bob");
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged.to_string()),
        parts[2]
    );
    report(
        "forged token (payload changed)",
        http.get(&url).bearer_auth(&forged),
        401,
    )
    .await?;
    report("no token", http.get(&url), 401).await?;
    let ext = format!("http://127.0.0.1:{}/fetch-external", ports.inbound);
    report(
        "agent calls an unlisted host",
        http.get(&ext).bearer_auth(&token),
        403,
    )
    .await?;
    Ok(())
}

/// Starts and seeds MiniStack when the demo was given its launcher and the sidecar's base
/// AWS credential is MiniStack's root (as `make demo` sets it); otherwise says why not.
async fn start_ministack(opts: &DemoOptions) -> DemoResult<Option<MiniStack>> {
    let Some(binary) = &opts.ministack else {
        println!("S3 part skipped: no --ministack launcher given (make demo passes one)");
        return Ok(None);
    };
    if std::env::var("AWS_ACCESS_KEY_ID").as_deref() != Ok("test") {
        println!(
            "S3 part skipped: the sidecar's base AWS credential must be MiniStack's root \
             (AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test; make demo sets them)"
        );
        return Ok(None);
    }
    let ms = MiniStack::start(binary, free_port()?).await?;
    println!(
        "ministack       {} (AWS STS + S3, bucket {BUCKET} seeded, role {ROLE_ARN})",
        ms.endpoint()
    );
    Ok(Some(ms))
}

/// The agent reads S3 without an AWS key: actbridge signs its requests with an STS
/// session whose policy is the grant, or hands the session out; MiniStack enforces it.
async fn walk_s3(
    http: &reqwest::Client,
    sts: &Issuer,
    ports: &SidecarPorts,
    ms: &MiniStack,
) -> DemoResult<()> {
    println!(
        "\n6. the agent reads S3 with no AWS key: actbridge signs with an STS session whose policy is the grant"
    );
    let token = sts.login(http, "alice").await?;
    let inbound = |path: &str| format!("http://127.0.0.1:{}{path}", ports.inbound);
    report(
        "alice's agent reads s3 finance/q4-report.md",
        http.get(inbound("/s3/finance/q4-report.md"))
            .bearer_auth(&token),
        200,
    )
    .await?;
    report(
        "alice's agent reads s3 hr/guidelines.md",
        http.get(inbound("/s3/hr/guidelines.md"))
            .bearer_auth(&token),
        403,
    )
    .await?;
    let resp = http
        .get(inbound("/aws-credentials"))
        .bearer_auth(&token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("credential vending: HTTP {status} {v}"));
    }
    println!(
        "   alice's agent asks POST /credentials -> HTTP 200: session {} key {} prefixes {} until {}",
        v["session_name"], v["access_key_id"], v["scoped_prefixes"], v["expiration"]
    );
    let field = |k: &str| v[k].as_str().map(str::to_owned).ok_or(format!("no {k}"));
    let creds = AwsCreds {
        access_key_id: field("access_key_id")?,
        secret_access_key: field("secret_access_key")?,
        session_token: Some(field("session_token")?),
    };
    for (key, want) in [("finance/q4-report.md", 200), ("hr/guidelines.md", 403)] {
        let (status, body) = ms.get_object(&creds, key).await?;
        let shown = xml_text(&body, "Code").unwrap_or_else(|| body.lines().next().unwrap_or(""));
        println!("   those credentials used directly on S3: {key:30} -> HTTP {status} {shown}");
        if status != want {
            return Err(format!(
                "S3 {key} with vended credentials: expected {want}, got {status}"
            ));
        }
    }
    println!("   (AWS itself refuses what the session policy does not allow)");
    Ok(())
}

async fn report(what: &str, req: reqwest::RequestBuilder, want: u16) -> DemoResult<()> {
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    println!(
        "   {what:55} -> HTTP {status} {}",
        body.trim().lines().next().unwrap_or("")
    );
    if status != want {
        return Err(format!("{what}: expected HTTP {want}, got {status}"));
    }
    Ok(())
}

fn claims(token: &str) -> DemoResult<Value> {
    let p = token.split('.').nth(1).ok_or("not a JWT")?;
    let bytes = URL_SAFE_NO_PAD.decode(p).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

async fn wait_listening(port: u16, what: &str) -> DemoResult<()> {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{what} is not listening on 127.0.0.1:{port}"))
}

async fn wait_ok(http: &reqwest::Client, url: &str, what: &str) -> DemoResult<()> {
    for _ in 0..200 {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{what} did not become ready at {url}"))
}

/// What `actbridge <command> <config>` prints (its exit status checked).
fn actbridge_output(actbridge: &Path, command: &str, config: &Path) -> DemoResult<String> {
    let out = std::process::Command::new(actbridge)
        .arg(command)
        .arg(config)
        .output()
        .map_err(|e| format!("cannot run {} {command}: {e}", actbridge.display()))?;
    if !out.status.success() {
        return Err(format!(
            "actbridge {command} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

/// Seconds since the Unix epoch.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn tempfile_dir() -> DemoResult<PathBuf> {
    let dir = std::env::temp_dir().join(format!("actbridge-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// summarizer-tech's sidecar config for the demo; with `aws_endpoint` (MiniStack) also
/// its S3 routes and the `documents-s3` credential.
fn sidecar_config(
    sts: &Issuer,
    ext_proc_port: u16,
    policies: &std::path::Path,
    aws_endpoint: Option<&str>,
) -> String {
    let aws = aws_endpoint.map_or_else(String::new, |endpoint| {
        format!(
            r#"    - name: documents-s3
      host: "{S3_HOST}"
      cluster: aws_s3
      action: credential
      credential: documents-s3
      mode: sign
    - name: credentials
      host: "{CREDENTIALS_HOST}"
      action: vend
      services: {{s3: documents-s3}}
credentials:
  - name: documents-s3
    aws_sts:
      role_arn: {ROLE_ARN}
      region: {REGION}
      sts_endpoint: {endpoint}
      bucket: {BUCKET}
      public_prefixes: [public/]
"#
        )
    });
    format!(
        r#"
listen:
  ext_proc: tcp://127.0.0.1:{ext_proc_port}
issuers:
  - issuer: {issuer}
    audiences: ["{AGENT}"]
{issuer_settings}inbound:
  delegation: true
  token_custody: true
policy:
  dir: "{policies}"
outbound:
  token_endpoint: {token}
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_post, secret: "{secret}"}}
  send_actor_token: {send_actor_token}
  routes:
    - name: document-service
      host: document-service
      cluster: document_service
      action: exchange
      audience: "{DOCUMENT_SERVICE}"
      scopes: [documents.read]
{aws}"#,
        issuer = sts.issuer(),
        issuer_settings = sts.issuer_settings(),
        token = sts.token_endpoint(),
        secret = sts.client_secret(),
        send_actor_token = sts.send_actor_token(),
        policies = policies.display(),
    )
}
