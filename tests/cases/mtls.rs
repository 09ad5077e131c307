//! The shipped Envoy config's mTLS, through the real Envoy (`Transport::Mtls`: the file
//! as users get it, only addresses rewritten), with the SVIDs actbridge reads from the
//! tests' Workload API and serves over SDS:
//! - outbound, the agent's SVID reaches an in-mesh upstream (a TLS echo requiring client
//!   certificates from the test CA), and an upstream presenting another SPIFFE ID than
//!   the one pinned for its cluster is refused;
//! - rotations of short-lived SVIDs under continuous requests lose none;
//! - inbound, a client certificate from the trust domain is required;
//! - actbridge's own calls to the token endpoint (`outbound.tls`) present the SVID and
//!   refuse a server with another SPIFFE ID than the pinned one.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use actbridge_devkit::sidecar::Transport;

use crate::support::actbridge::Actbridge;
use crate::support::config_edit::ConfigEdit;
use crate::support::echo::Echo;
use crate::support::envoy::{Envoy, EnvoyPorts, ExtProcAddr};
use crate::support::mtls_client;
use crate::support::tls_echo::TlsEcho;
use crate::support::tls_front::TlsFront;
use crate::support::workload_api::{TestCa, WorkloadApi};
use crate::support::world::{
    AGENT, DOCUMENT_SERVICE, Sts, World, claims_of, sidecar_config, with_spiffe,
};

/// summarizer-tech's pod: the Workload API, the token service, the app, an in-mesh
/// document service presenting `upstream_id`, actbridge and Envoy with the shipped mTLS.
struct Mesh {
    api: WorkloadApi,
    sts: Sts,
    app: Echo,
    docs: TlsEcho,
    _actbridge: Actbridge,
    envoy: Envoy,
    http: reqwest::Client,
}

impl Mesh {
    async fn start(svid_ttl: Duration, rotate_every: Duration, upstream_id: &str) -> Mesh {
        let api = WorkloadApi::start(AGENT, svid_ttl, rotate_every).await;
        let sts = Sts::start().await;
        let docs = TlsEcho::start(&api.ca, upstream_id).await;
        let app = Echo::start().await;
        let config = with_spiffe(&sidecar_config(&sts), &api.endpoint());
        let actbridge = Actbridge::start(&config).await;
        let envoy = Envoy::start_with(
            &EnvoyPorts {
                routes: actbridge.routes(),
                sds: actbridge.sds_port.map(ExtProcAddr::Tcp),
                ext_proc: ExtProcAddr::Tcp(actbridge.ext_proc_port),
                app_port: app.port,
                document_service_port: docs.port,
                aws_s3_port: None,
                github_api_port: None,
            },
            Transport::Mtls,
        )
        .await;
        Mesh {
            api,
            sts,
            app,
            docs,
            _actbridge: actbridge,
            envoy,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    /// The agent calls the document service through its sidecar.
    async fn call_docs(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!(
                "http://127.0.0.1:{}{path}",
                self.envoy.outbound_port
            ))
            .header("host", "document-service")
            .bearer_auth(token)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn outbound_presents_the_agents_svid_to_the_pinned_destination() {
    let mesh = Mesh::start(
        Duration::from_secs(60),
        Duration::from_secs(60),
        DOCUMENT_SERVICE,
    )
    .await;
    let token = mesh.sts.alice_delegated().await;
    let r = mesh.call_docs("/documents/DOC-001", &token).await;
    assert_eq!(r.status(), 200, "{}", mesh.envoy.log());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["client_spiffe_id"], AGENT);
    let seen = mesh.docs.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].spiffe_id.as_deref(), Some(AGENT));
    assert_eq!(seen[0].path, "/documents/DOC-001");
    // Both layers: the mTLS peer is the agent, the bearer the exchanged token for this
    // destination.
    let bearer = seen[0].authorization.as_deref().unwrap();
    let claims = claims_of(bearer.strip_prefix("Bearer ").unwrap());
    assert_eq!(claims["aud"], DOCUMENT_SERVICE);
    assert_eq!(mesh.docs.failed_handshakes(), 0);
}

#[tokio::test]
async fn outbound_refuses_a_destination_presenting_another_spiffe_id() {
    // The same CA, the same trust domain: only the pinned ID tells them apart.
    let mesh = Mesh::start(
        Duration::from_secs(60),
        Duration::from_secs(60),
        "spiffe://demo.example.com/service/impostor",
    )
    .await;
    let token = mesh.sts.alice_delegated().await;
    let r = mesh.call_docs("/documents/DOC-001", &token).await;
    assert_eq!(r.status(), 503);
    assert!(
        mesh.docs.seen().is_empty(),
        "no request reached the impostor"
    );
    assert!(
        mesh.envoy
            .stat("cluster.document_service.ssl.fail_verify_san")
            .await
            >= 1,
        "refused for its SAN:\n{}",
        mesh.envoy.log()
    );
}

#[tokio::test]
async fn rotations_of_short_lived_svids_lose_no_request() {
    // SVIDs live 3 s and are replaced every second: a certificate Envoy kept past a
    // rotation would soon be expired, and the upstream would refuse it.
    let mesh = Mesh::start(
        Duration::from_secs(3),
        Duration::from_secs(1),
        DOCUMENT_SERVICE,
    )
    .await;
    let token = mesh.sts.alice_delegated().await;
    let issued_before = mesh.api.issued();
    let (mut ok, mut failed) = (0, Vec::new());
    let end = Instant::now() + Duration::from_millis(5500);
    while Instant::now() < end {
        let r = mesh.call_docs("/documents/DOC-001", &token).await;
        if r.status() == 200 {
            ok += 1;
        } else {
            failed.push(r.status());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        failed.is_empty(),
        "{} failed of {}: {failed:?}\n{}",
        failed.len(),
        ok + failed.len(),
        mesh.envoy.log()
    );
    let serials: HashSet<String> = mesh.docs.seen().into_iter().map(|p| p.serial).collect();
    assert!(
        mesh.api.issued() - issued_before >= 3,
        "at least three rotations happened"
    );
    assert!(
        serials.len() >= 3,
        "the upstream saw {} client certificates over {ok} requests",
        serials.len()
    );
    assert!(
        mesh.docs
            .seen()
            .iter()
            .all(|p| p.spiffe_id.as_deref() == Some(AGENT))
    );
    assert_eq!(mesh.docs.failed_handshakes(), 0);
}

#[tokio::test]
async fn inbound_requires_a_client_certificate_from_the_trust_domain() {
    let mesh = Mesh::start(
        Duration::from_secs(60),
        Duration::from_secs(60),
        DOCUMENT_SERVICE,
    )
    .await;
    let port = mesh.envoy.inbound_port;
    let ca = &mesh.api.ca;
    let caller_id = "spiffe://demo.example.com/agent/summarizer-hr";
    let caller = ca.issue(caller_id, Duration::from_secs(60));

    // A workload of the trust domain: Envoy presents the agent's SVID, accepts the
    // caller's, and the app learns the caller's SPIFFE ID (/public/ needs no token).
    let r = mtls_client::get(port, ca, AGENT, Some(&caller), "/public/hello")
        .await
        .unwrap();
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let seen = mesh.app.seen();
    assert_eq!(seen.len(), 1);
    let xfcc = seen[0].header("x-forwarded-client-cert").unwrap();
    assert!(xfcc.contains(&format!("URI={caller_id}")), "{xfcc}");

    // No client certificate; one from another CA; one from this CA but another trust
    // domain's ID: refused before any request.
    let none = mtls_client::get(port, ca, AGENT, None, "/public/hello").await;
    assert!(none.is_err(), "{none:?}");
    let stranger = TestCa::new("demo.example.com").issue(caller_id, Duration::from_secs(60));
    let r = mtls_client::get(port, ca, AGENT, Some(&stranger), "/public/hello").await;
    assert!(r.is_err(), "{r:?}");
    let foreign = ca.issue(
        "spiffe://other.example.com/agent/x",
        Duration::from_secs(60),
    );
    let r = mtls_client::get(port, ca, AGENT, Some(&foreign), "/public/hello").await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(mesh.app.count(), 1, "nothing else reached the app");

    // Plain text: the kubelet's probe only.
    let plain = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let r = mesh.http.get(plain("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = mesh.http.get(plain("/public/hello")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        mesh.app.count(),
        2,
        "only the probe went through in plain text"
    );
}

/// The token service's SPIFFE ID in the token-endpoint tests.
const TOKEN_SERVICE: &str = "spiffe://demo.example.com/service/token-service";

/// summarizer-tech's sidecar calling its token endpoint through a TLS front presenting
/// `front_id` (outbound.tls pins TOKEN_SERVICE); plain Envoy.
async fn world_with_mtls_token_endpoint(front_id: &str) -> (WorkloadApi, TlsFront, World) {
    let api = WorkloadApi::start(AGENT, Duration::from_secs(60), Duration::from_secs(60)).await;
    let sts = Sts::start().await;
    let plain = sts.service.token_endpoint();
    let url = url::Url::parse(&plain).unwrap();
    let front = TlsFront::start(&api.ca, front_id, url.port().unwrap()).await;
    let https = plain.replace(
        &format!("http://127.0.0.1:{}", url.port().unwrap()),
        &format!("https://127.0.0.1:{}", front.port),
    );
    let config = ConfigEdit::of(&sidecar_config(&sts))
        .replace("outbound.token_endpoint", &https)
        .set("outbound.tls", &format!("{{spiffe_id: '{TOKEN_SERVICE}'}}"))
        .set("spiffe", &format!("{{endpoint: '{}'}}", api.endpoint()))
        .yaml();
    let world = World::start_with(sts, &config).await;
    (api, front, world)
}

#[tokio::test]
async fn the_token_endpoint_is_called_over_mtls_with_the_svid() {
    let (_api, front, world) = world_with_mtls_token_endpoint(TOKEN_SERVICE).await;
    let token = world.sts.alice_delegated().await;
    let r = world
        .agent_call("document-service", "/documents/DOC-001", &token)
        .await;
    assert_eq!(r.status(), 200, "{}", world.actbridge.log());
    let peers = front.peers();
    assert!(
        !peers.is_empty(),
        "the token endpoint was reached through the front"
    );
    assert!(
        peers.iter().all(|p| p.as_deref() == Some(AGENT)),
        "{peers:?}"
    );
    assert_eq!(
        claims_of(world.docs.seen()[0].bearer())["aud"],
        DOCUMENT_SERVICE
    );
}

#[tokio::test]
async fn a_token_endpoint_presenting_another_spiffe_id_is_refused() {
    let (_api, front, world) =
        world_with_mtls_token_endpoint("spiffe://demo.example.com/service/impostor").await;
    let token = world.sts.alice_delegated().await;
    let exchanges_before = world.sts.service.stats().token_exchange;
    let r = world
        .agent_call("document-service", "/documents/DOC-001", &token)
        .await;
    assert_eq!(r.status(), 503);
    assert_eq!(world.docs.count(), 0);
    assert!(front.failed_handshakes() >= 1);
    assert_eq!(
        world.sts.service.stats().token_exchange,
        exchanges_before,
        "no token request reached the impostor's backend"
    );
    assert!(
        world.actbridge.log().contains("not the pinned"),
        "the operator is told why:\n{}",
        world.actbridge.log()
    );
}

#[test]
fn outbound_tls_configuration_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let check = |outbound_tail: &str, endpoint: &str, spiffe: bool| -> String {
        let config = dir.path().join("actbridge.yaml");
        let mut text = format!(
            "listen: {{ext_proc: 'tcp://127.0.0.1:9001'}}\n\
             issuers: [{{issuer: 'http://127.0.0.1:1/realms/demo', audiences: [a]}}]\n\
             outbound:\n  token_endpoint: {endpoint}\n  \
             client: {{client_id: '{AGENT}', auth: {{method: client_secret_post, secret: s}}}}\n\
             {outbound_tail}"
        );
        if spiffe {
            text += "spiffe: {endpoint: 'unix:///run/spire/sockets/agent.sock'}\n";
        }
        std::fs::write(&config, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_actbridge"))
            .arg("check-config")
            .arg(&config)
            .env_remove("SPIFFE_ENDPOINT_SOCKET")
            .output()
            .unwrap();
        if out.status.success() {
            return "ok".into();
        }
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let https = "https://127.0.0.1:1/realms/demo/protocol/openid-connect/token";
    let tls = format!("  tls: {{spiffe_id: '{TOKEN_SERVICE}'}}\n");
    assert_eq!(check(&tls, https, true), "ok");
    let e = check(&tls, https, false);
    assert!(e.contains("outbound.tls") && e.contains("spiffe"), "{e}");
    let e = check(&tls, "http://127.0.0.1:1/t", true);
    assert!(e.contains("outbound.tls") && e.contains("https"), "{e}");
    let e = check("  tls: {spiffe_id: 'document-service'}\n", https, true);
    assert!(e.contains("outbound.tls.spiffe_id"), "{e}");
}

#[tokio::test]
async fn with_the_workload_api_down_at_start_envoy_waits_for_the_svid_then_serves_mtls() {
    // The Workload API is down when the pod starts: actbridge is not ready and answers
    // Envoy's SDS request with nothing, so Envoy keeps its mTLS listener and cluster
    // warming (not ready, nothing can leave). When the API comes, the SVID is pushed
    // over the open SDS stream and requests flow over mTLS.
    let mut api = WorkloadApi::start(AGENT, Duration::from_secs(60), Duration::from_secs(60)).await;
    api.stop();
    let sts = Sts::start().await;
    let docs = TlsEcho::start(&api.ca, DOCUMENT_SERVICE).await;
    let app = Echo::start().await;
    let config = with_spiffe(&sidecar_config(&sts), &api.endpoint());
    let actbridge = Actbridge::start_unready(&config).await;
    let readyz = format!("http://127.0.0.1:{}/readyz", actbridge.admin_port);
    let ports = EnvoyPorts {
        routes: actbridge.routes(),
        sds: actbridge.sds_port.map(ExtProcAddr::Tcp),
        ext_proc: ExtProcAddr::Tcp(actbridge.ext_proc_port),
        app_port: app.port,
        document_service_port: docs.port,
        aws_s3_port: None,
        github_api_port: None,
    };
    // Envoy starts now and waits (up to 20 s) for its secrets; meanwhile the pod is
    // checked, then the Workload API returns.
    let ((envoy, ready_at), (_api, resumed_at)) = tokio::join!(
        async {
            let envoy = Envoy::start_with(&ports, Transport::Mtls).await;
            (envoy, Instant::now())
        },
        async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert_eq!(reqwest::get(&readyz).await.unwrap().status(), 503);
            let resumed_at = Instant::now();
            api.resume().await;
            (api, resumed_at)
        }
    );
    assert!(
        ready_at > resumed_at,
        "Envoy was ready before any SVID existed:\n{}",
        envoy.log()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while reqwest::get(&readyz).await.unwrap().status() != 200 {
        assert!(Instant::now() < deadline, "actbridge did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = sts.alice_delegated().await;
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!(
            "http://127.0.0.1:{}/documents/DOC-001",
            envoy.outbound_port
        ))
        .header("host", "document-service")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", envoy.log());
    assert_eq!(docs.seen()[0].spiffe_id.as_deref(), Some(AGENT));
}
