//! The decision core as a table, in process and without Envoy: one sidecar config (every
//! route action), the embedded token service on loopback as issuer and token endpoint,
//! the shipped policy, and rows of (request facts, body) → (status and reason, or what
//! the request goes on with). Each row is one rule; a new refusal gets a row here before
//! it gets an Envoy test.

use std::collections::HashMap;
use std::sync::Arc;

use actbridge::clock::Clock;
use actbridge::config::Config;
use actbridge::credentials::Credentials;
use actbridge::pipeline::{Decision, Pipeline, RequestFacts};
use actbridge::policy::PolicyEngine;
use actbridge::state::revocations::{Revocation, RevocationKind};
use actbridge::state::{DenyList, State};
use serde_json::json;

use crate::support::world::{AGENT, PORTAL, PORTAL_SECRET, Sts, agent_id, policies_dir};

mod actors;
mod answers;
mod credentials;
mod failures;
mod fleet;
mod fleet_approvals;
mod fleet_custody;
mod fleet_rate_limits;
mod fleet_revocations;
mod outcomes;
mod rate_limits;
mod routes;
mod stateful;

const DOCS_AUDIENCE: &str = "spiffe://demo.example.com/service/document-service";
const MCP: &str = "spiffe://demo.example.com/tool/mcp-documents";
const CHAT_TOKEN: &str = "xoxb-table-service-token";

/// The token a row presents.
#[derive(Clone, Copy, Debug)]
enum Token {
    None,
    /// `Authorization: Basic …`.
    Basic,
    /// A JWT whose signature does not verify.
    Forged,
    /// alice's own login token for the agent (no `act`).
    AliceOwn,
    /// alice's token delegated to summarizer-tech.
    Alice,
    /// As `Alice`, logged in with the MCP server's scopes.
    AliceMcp,
    /// carol's token delegated to summarizer-tech (hr ∩ engineering,finance = nothing).
    Carol,
    /// A token for another audience.
    OtherAudience,
    /// An expired token.
    Expired,
}

/// What a row expects.
#[derive(Debug)]
enum Expect {
    /// Refused with this status and reason.
    Deny(u16, &'static str),
    /// Forwarded; `authorization` set to something other than what was presented.
    ForwardWithNewAuthorization,
    /// Forwarded with the caller's headers untouched.
    ForwardUnchanged,
    /// Forwarded with the verified identity in the trusted headers.
    ForwardWithIdentity,
    /// Answered by actbridge with this status.
    Answer(u16),
}

struct Row {
    name: &'static str,
    direction: &'static str,
    method: &'static str,
    authority: &'static str,
    path: &'static str,
    /// Envoy's route and cluster (`None`: the attributes are missing).
    envoy: Option<(&'static str, Option<&'static str>)>,
    token: Token,
    extra: &'static [(&'static str, &'static str)],
    /// The body, when the request has one.
    body: Option<String>,
    expect: Expect,
}

fn row(name: &'static str, authority: &'static str, path: &'static str, expect: Expect) -> Row {
    let envoy = match authority {
        "document-service" => Some(("document-service", Some("document_service"))),
        "mcp-documents" => Some(("mcp-documents", Some("mcp"))),
        "blocked.example" => Some(("blocked", None)),
        "plain.example" => Some(("plain", Some("plain"))),
        "chat.example" => Some(("chat", Some("chat"))),
        "credentials.actbridge.local" => Some(("credentials", None)),
        _ => Some(("default", None)),
    };
    Row {
        name,
        direction: "outbound",
        method: "GET",
        authority,
        path,
        envoy,
        token: if authority == "mcp-documents" {
            Token::AliceMcp
        } else {
            Token::Alice
        },
        extra: &[],
        body: None,
        expect,
    }
}

/// A fresh SSH certificate authority's key, in a directory that lives as long as the
/// returned guard.
fn ssh_ca() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let key =
        ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
            .unwrap();
    std::fs::write(&ca, key.to_openssh(ssh_key::LineEnding::LF).unwrap()).unwrap();
    (dir, ca)
}

/// A pipeline built from `yaml` (the chat token in the environment), its issuer's keys
/// loaded.
async fn pipeline(yaml: &str, revocations: Arc<DenyList>) -> Pipeline {
    pipeline_on_clock(yaml, revocations, Clock::system()).await
}

/// [`pipeline`], its single-use memory and custody reading `clock`.
async fn pipeline_on_clock(yaml: &str, revocations: Arc<DenyList>, clock: Clock) -> Pipeline {
    pipeline_and_state(yaml, revocations, clock).await.0
}

/// [`pipeline_on_clock`], with the stores it decides on (the approvals a test answers).
async fn pipeline_and_state(
    yaml: &str,
    revocations: Arc<DenyList>,
    clock: Clock,
) -> (Pipeline, State) {
    let cfg = config_of(yaml);
    let state = State::with_clock(&cfg, revocations, clock);
    (pipeline_on(&cfg, &state).await, state)
}

/// The config of `yaml`, the chat token in the environment.
fn config_of(yaml: &str) -> Config {
    let env = HashMap::from([("CHAT_TOKEN".to_string(), CHAT_TOKEN.to_string())]);
    Config::from_yaml(yaml, &env).unwrap()
}

/// The pipeline of `cfg` deciding on `state`, its issuer's keys loaded.
async fn pipeline_on(cfg: &Config, state: &State) -> Pipeline {
    let policy = PolicyEngine::load_configured(cfg.policy.as_ref()).unwrap();
    let credentials = Arc::new(Credentials::load(&cfg.credentials).await);
    let pipeline = Pipeline::new(cfg, policy, credentials, state).unwrap();
    for store in pipeline.verifier().jwks_stores() {
        store.refresh().await.unwrap();
    }
    pipeline
}

/// Whether `got` is what `expect` says (`presented`: the `authorization` sent).
fn verdict(
    expect: &Expect,
    got: &Result<Decision, actbridge::pipeline::Denial>,
    presented: &str,
) -> Result<(), String> {
    let ok = match (expect, got) {
        (Expect::Deny(status, reason), Err(d))
        | (Expect::Deny(status, reason), Ok(Decision::Deny(d))) => {
            d.status == *status && d.reason == *reason
        }
        (
            Expect::ForwardWithNewAuthorization,
            Ok(
                Decision::Continue(m)
                | Decision::Narrow { mutations: m, .. }
                | Decision::Watch { mutations: m, .. },
            ),
        ) => m
            .set
            .iter()
            .any(|(k, v)| k == "authorization" && v.as_bytes() != presented.as_bytes()),
        (Expect::ForwardUnchanged, Ok(Decision::Continue(m))) => m.set.is_empty(),
        (Expect::ForwardWithIdentity, Ok(Decision::Continue(m))) => m
            .set
            .iter()
            .any(|(k, v)| k == "x-actbridge-username" && v == "alice"),
        (Expect::Answer(status), Ok(Decision::Respond(reply))) => reply.status == *status,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let got = match got {
        Err(d) | Ok(Decision::Deny(d)) => {
            format!("deny {} {} ({})", d.status, d.reason, d.description)
        }
        Ok(other) => format!("{other:?}"),
    };
    Err(format!("expected {expect:?}, got {got}"))
}

/// The decision of `pipeline` for `r` presenting `authorization`, its body decided too
/// when the core asks for it.
async fn decide(
    pipeline: &Pipeline,
    r: &Row,
    authorization: Option<String>,
) -> Result<Decision, actbridge::pipeline::Denial> {
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        (":authority".into(), r.authority.as_bytes().to_vec()),
        (":method".into(), r.method.as_bytes().to_vec()),
        (":path".into(), r.path.as_bytes().to_vec()),
    ];
    if let Some(a) = authorization {
        headers.push(("authorization".into(), a.into_bytes()));
    }
    for (k, v) in r.extra {
        headers.push((k.to_string(), v.as_bytes().to_vec()));
    }
    let mut facts = match RequestFacts::new(Some(r.direction), headers) {
        Ok(f) => f,
        Err(e) => return Err(pipeline.refuse_unreadable(Some(r.direction), e)),
    };
    facts.end_of_stream = r.body.is_none();
    if let Some((route, cluster)) = r.envoy {
        facts.proxy_route = Some(route.to_string());
        facts.proxy_cluster = cluster.map(str::to_string);
    }
    let decision = pipeline.decide(&facts).await;
    Ok(match (decision, &r.body) {
        (Decision::ReadBody { max_bytes, .. }, Some(body)) => {
            let within = (body.len() <= max_bytes).then_some(body.as_bytes());
            pipeline.decide_body(&facts, within).await
        }
        (d, _) => d,
    })
}

/// The `authorization` the app gets from an inbound decision under custody: its
/// placeholder.
fn app_authorization(got: &Result<Decision, actbridge::pipeline::Denial>) -> String {
    let Ok(Decision::Continue(m)) = got else {
        panic!("inbound with custody: {got:?}")
    };
    m.set
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.to_str().unwrap().to_string())
        .expect("the app's authorization is replaced")
}

/// A row to the document service on a path the scripted policy allows.
fn docs_row() -> Row {
    row("", "document-service", "/ok", Expect::ForwardUnchanged)
}

/// Notes a failure when `got` is not what `expect` says (`presented`: the
/// `authorization` sent).
fn note(
    failures: &mut Vec<String>,
    name: &str,
    got: &Result<Decision, actbridge::pipeline::Denial>,
    expect: Expect,
    presented: &str,
) {
    if let Err(why) = verdict(&expect, got, presented) {
        failures.push(format!("{name}: {why}"));
    }
}

/// Fails the test with every failed row or step (`what`: "rows", "steps"), not only the
/// first.
fn all_passed(failures: &[String], what: &str) {
    assert!(
        failures.is_empty(),
        "{} {what} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
