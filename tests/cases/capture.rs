//! Traffic capture for real, without a cluster: a "pod" network namespace with the init
//! script's iptables rules (`deploy/traffic-capture.sh`), the shipped Envoy config under
//! Envoy's own UID and actbridge under its own, and a "remote host" namespace with the
//! token service, the document service and a few sinks. The app in the pod dials remote
//! addresses directly; nothing of it knows about Envoy.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::support::echo::Echo;
use crate::support::envoy::envoy_binary;
use crate::support::netns::{Lab, Netns, NsProcess, run};
use crate::support::world::{AGENT, AGENT_SECRET, DOCUMENT_SERVICE, Sts, claims_of};

const ENVOY_UID: u32 = 1337;
const ACTBRIDGE_UID: u32 = 1338;
/// A server name the test lists for TLS passthrough, and one it does not.
const TLS_LISTED: &str = "tls-allowed.test";
const TLS_UNLISTED: &str = "tls-denied.test";

fn script() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/traffic-capture.sh")
        .display()
        .to_string()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A TCP server that counts connections and keeps the first bytes of the last one.
struct Sink {
    accepted: Arc<AtomicUsize>,
    first_bytes: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Sink {
    async fn start_at(addr: SocketAddr) -> Sink {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let first_bytes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (a, f) = (accepted.clone(), first_bytes.clone());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let f = f.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 2048];
                    if let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_secs(2), conn.read(&mut buf)).await
                    {
                        *f.lock().unwrap() = buf[..n].to_vec();
                    }
                });
            }
        });
        Sink {
            accepted,
            first_bytes,
        }
    }

    fn count(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// The init container's command in `ns`: the script with the manifests' settings, and
/// nothing of the caller's environment that could change them.
fn capture(ns: &Netns) -> Command {
    let mut c = ns.command(&script());
    c.arg("apply")
        .env("ENVOY_UID", ENVOY_UID.to_string())
        .env("ACTBRIDGE_UID", ACTBRIDGE_UID.to_string())
        .env("INBOUND_EXCLUDE_PORTS", "9902");
    for key in [
        "INBOUND_PORT",
        "OUTBOUND_PORT",
        "OUTBOUND_EXCLUDE_CIDRS",
        "OUTBOUND_EXCLUDE_PORTS",
        "IPTABLES",
        "IP6TABLES",
    ] {
        c.env_remove(key);
    }
    c
}

/// GETs `url` as `uid` inside `ns` with curl; 200 = true.
fn curl_ok_as(ns: &Netns, uid: u32, url: &str) -> bool {
    ns.command_as(uid, "curl")
        .args(["-sf", "-o", "/dev/null", "--max-time", "1", url])
        .status()
        .is_ok_and(|s| s.success())
}

/// A counter from the pod's Envoy admin (read as Envoy's UID, which is not captured).
fn envoy_stat(ns: &Netns, name: &str) -> u64 {
    let out = run(ns.command_as(ENVOY_UID, "curl").args([
        "-sf",
        &format!("http://127.0.0.1:15000/stats?filter=^{name}$"),
    ]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The pod's sidecar config: the shipped ports, the token service on the remote host.
/// `pod_ip`: a `passthrough` route to the pod's own address through the forward proxy,
/// which Envoy must never be able to dial.
fn pod_config(sts: &Sts, sockets: &Path, pod_ip: Ipv4Addr) -> String {
    format!(
        r#"listen:
  ext_proc: unix://{sockets}/extproc.sock
  admin: 0.0.0.0:9902
issuers:
  - issuer: {issuer}
    audiences: ["{AGENT}"]
inbound:
  bypass_paths:
    - exact: /healthz
outbound:
  token_endpoint: {token}
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_basic, secret: {AGENT_SECRET}}}
  routes:
    - name: document-service
      host: document-service
      cluster: document_service
      action: exchange
      audience: "{DOCUMENT_SERVICE}"
      scopes: [documents.read]
    - name: the-pod-itself
      host: "{pod_ip}"
      action: passthrough
"#,
        sockets = sockets.display(),
        issuer = sts.service.issuer(),
        token = sts.service.token_endpoint(),
    )
}

/// The app's HTTP client: it resolves the lab's names as the cluster's DNS would.
fn app_client(remote_ip: Ipv4Addr) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5));
    for (name, port) in [
        ("document-service", 8080),
        (TLS_LISTED, 443),
        (TLS_UNLISTED, 443),
    ] {
        b = b.resolve(name, SocketAddr::new(remote_ip.into(), port));
    }
    b.build().unwrap()
}

#[tokio::test]
// Long by design: one pod of network namespaces set up once and probed in every direction.
async fn the_pods_traffic_is_captured_both_ways_and_envoys_own_is_not() {
    let lab = Lab::new(&["document-service", TLS_LISTED, TLS_UNLISTED]);
    let (pod_ip, remote_ip) = (lab.pod_ip, lab.remote_ip);
    let names = [lab.pod.name.clone(), lab.remote.name.clone()];
    {
        // The remote host: the token service, the document service, and sinks that
        // count what reaches them.
        let realm =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/realm.yaml"))
                .unwrap();
        let sts = Arc::new(
            lab.remote_rt
                .run(async move { Sts::start_at(&realm, &format!("{remote_ip}:8180")).await })
                .await,
        );
        let docs = lab
            .remote_rt
            .run(async move { Echo::start_at(&format!("{remote_ip}:8080")).await })
            .await;
        let unlisted = lab
            .remote_rt
            .run(async move { Sink::start_at(SocketAddr::new(remote_ip.into(), 9999)).await })
            .await;
        let tls = lab
            .remote_rt
            .run(async move { Sink::start_at(SocketAddr::new(remote_ip.into(), 443)).await })
            .await;
        let udp = lab
            .remote_rt
            .run(async move {
                let a = tokio::net::UdpSocket::bind((remote_ip, 5353))
                    .await
                    .unwrap();
                let b = tokio::net::UdpSocket::bind((remote_ip, 53)).await.unwrap();
                (a, b)
            })
            .await;

        // The pod: the app, then the init container, then the sidecars.
        let app = lab
            .pod_rt
            .run(async { Echo::start_at("0.0.0.0:8080").await })
            .await;
        let out = run(&mut capture(&lab.pod));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("outbound -> :15001"),
            "{out:?}"
        );

        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        // The shipped socket directory (/run/actbridge), here in the test's directory:
        // actbridge's, with Envoy's group (as the manifests run them).
        let sockets = dir.path().join("run-actbridge");
        std::fs::create_dir(&sockets).unwrap();
        std::os::unix::fs::chown(&sockets, Some(ACTBRIDGE_UID), Some(ENVOY_UID)).unwrap();
        std::fs::set_permissions(
            &sockets,
            std::os::unix::fs::PermissionsExt::from_mode(0o750),
        )
        .unwrap();
        let config = dir.path().join("actbridge.yaml");
        let pod_yaml = pod_config(&sts, &sockets, pod_ip);
        std::fs::write(&config, &pod_yaml).unwrap();
        let mut cmd =
            lab.pod
                .command_as_group(ACTBRIDGE_UID, ENVOY_UID, env!("CARGO_BIN_EXE_actbridge"));
        cmd.args(["serve", "--config", config.to_str().unwrap()])
            .env("ACTBRIDGE_LOG", "actbridge=debug,info");
        let actbridge = NsProcess::spawn(cmd, dir.path().join("actbridge.log"));
        // The shipped Envoy config, unchanged but for the passthrough list and without
        // its SPIFFE mTLS (no Workload API in this lab; tests/cases/mtls.rs runs it), as
        // the demo overlay runs it.
        let shipped = actbridge_devkit::sidecar::without_mtls(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/sidecar.yaml"),
            )
            .unwrap(),
        )
        .unwrap();
        assert!(shipped.contains("passthrough.example.invalid"));
        // Envoy's outbound routes generated from this sidecar's route table.
        let table = actbridge::config::route_table_from_yaml(&pod_yaml)
            .unwrap()
            .unwrap();
        let routes = actbridge::envoy_routes::outbound_route_config_yaml(&table);
        let shipped = actbridge_devkit::sidecar::with_routes(&shipped, &routes).unwrap();
        let envoy_cfg = dir.path().join("envoy.yaml");
        std::fs::write(
            &envoy_cfg,
            shipped
                .replace("passthrough.example.invalid", TLS_LISTED)
                .replace("/run/actbridge/", &format!("{}/", sockets.display())),
        )
        .unwrap();
        let mut cmd = lab
            .pod
            .command_as(ENVOY_UID, envoy_binary().to_str().unwrap());
        cmd.args(["-c", envoy_cfg.to_str().unwrap()])
            .args(["--disable-hot-restart", "--concurrency", "1"])
            .args(["--log-level", "warn"]);
        let envoy = NsProcess::spawn(cmd, dir.path().join("envoy.log"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(curl_ok_as(&lab.pod, ENVOY_UID, "http://127.0.0.1:15000/ready")
            && curl_ok_as(&lab.pod, ACTBRIDGE_UID, "http://127.0.0.1:9902/readyz"))
        {
            assert!(
                Instant::now() < deadline,
                "the sidecars did not become ready\nenvoy: {}\nactbridge: {}",
                envoy.log(),
                actbridge.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let logs = || format!("envoy: {}\nactbridge: {}", envoy.log(), actbridge.log());

        // 1. The app calls the document service by its address; the connection is
        //    captured, the token exchanged, and the request arrives delegated.
        let s = sts.clone();
        let token = lab
            .remote_rt
            .run(async move { s.alice_delegated().await })
            .await;
        let t = token.clone();
        let (status, body) = lab
            .pod_rt
            .run(async move {
                let r = app_client(remote_ip)
                    .get("http://document-service:8080/documents/DOC-001")
                    .bearer_auth(&t)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            })
            .await;
        assert_eq!(status, 200, "{body}\n{}", logs());
        let seen = docs.seen();
        assert_eq!(seen.len(), 1);
        let delegated = seen[0].bearer();
        assert!(delegated != token, "the user's token never leaves the pod");
        let c = claims_of(delegated);
        assert_eq!(c["preferred_username"], "alice");
        assert_eq!(c["act"]["client_id"], AGENT);
        assert!(
            c["aud"] == DOCUMENT_SERVICE || c["aud"] == json!([DOCUMENT_SERVICE]),
            "{c}"
        );
        // One connection reached the outbound listener: the app's. Envoy's own
        // connection to the document service was not captured again (no loop).
        assert_eq!(
            envoy_stat(&lab.pod, "listener.127.0.0.1_15001.downstream_cx_total"),
            1,
            "{}",
            logs()
        );
        assert!(envoy_stat(&lab.pod, "cluster.document_service.upstream_cx_total") >= 1);

        // 2. A destination no route names is refused, and nothing reaches it.
        let t = token.clone();
        let status = lab
            .pod_rt
            .run(async move {
                app_client(remote_ip)
                    .get(format!("http://{remote_ip}:9999/anything"))
                    .bearer_auth(&t)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
            .await;
        assert_eq!(status, 403);
        assert_eq!(unlisted.count(), 0, "an unlisted destination was reached");

        // 3. Loopback is captured too: the app cannot talk to actbridge's ext_proc port
        //    around Envoy (the answer is Envoy's, refusing an unlisted host).
        let status = lab
            .pod_rt
            .run(async move {
                app_client(remote_ip)
                    .get("http://127.0.0.1:9001/")
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
            .await;
        assert_eq!(status, 403, "{}", logs());

        // 3b. Nor can it have Envoy's forward proxy dial the pod's own address (where the
        //     app listens, past actbridge's inbound checks): the capture script rejects
        //     Envoy's connections to the pod's own non-loopback addresses.
        let before = app.count();
        let status = lab
            .pod_rt
            .run(async move {
                app_client(remote_ip)
                    .get(format!("http://{pod_ip}:8080/"))
                    .header("x-actbridge-username", "admin")
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
            .await;
        assert!(status >= 500, "{status}: {}", logs());
        assert_eq!(app.count(), before, "Envoy dialled the pod itself");

        // 4. Opaque TLS from the app: refused for an unlisted server name, passed
        //    through untouched (the ClientHello arrives as sent) for a listed one.
        let denied = lab
            .pod_rt
            .run(async move {
                app_client(remote_ip)
                    .get(format!("https://{TLS_UNLISTED}/"))
                    .send()
                    .await
            })
            .await;
        assert!(denied.is_err(), "TLS to an unlisted host got an answer");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(tls.count(), 0, "TLS to an unlisted host left the pod");
        let _ = lab
            .pod_rt
            .run(async move {
                app_client(remote_ip)
                    .get(format!("https://{TLS_LISTED}/"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
            })
            .await;
        assert_eq!(tls.count(), 1, "{}", logs());
        let hello = tls.first_bytes.lock().unwrap().clone();
        assert_eq!(hello.first(), Some(&0x16), "a TLS handshake record");
        assert!(
            hello
                .windows(TLS_LISTED.len())
                .any(|w| w == TLS_LISTED.as_bytes()),
            "the ClientHello names the listed host"
        );

        // 5. UDP: DNS passes, anything else from the app is refused.
        let (udp_other, udp_dns) = udp;
        lab.pod_rt
            .run(async move {
                let s = tokio::net::UdpSocket::bind("0.0.0.0:0").await.unwrap();
                let _ = s.send_to(b"quic?", (remote_ip, 5353)).await;
                let _ = s.send_to(b"dns", (remote_ip, 53)).await;
            })
            .await;
        let mut buf = [0u8; 16];
        let dns = tokio::time::timeout(Duration::from_secs(2), udp_dns.recv_from(&mut buf)).await;
        assert!(dns.is_ok(), "DNS (UDP 53) must pass");
        let other =
            tokio::time::timeout(Duration::from_millis(300), udp_other.recv_from(&mut buf)).await;
        assert!(other.is_err(), "UDP other than DNS left the pod");

        // 6. Inbound: a connection from the remote host to the app's port goes through
        //    the inbound listener: refused without a token, the app never reached ...
        let status = lab
            .remote_rt
            .run(async move {
                reqwest::Client::new()
                    .get(format!("http://{pod_ip}:8080/data"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
            .await;
        assert_eq!(status, 401);
        assert_eq!(app.count(), 0, "the app was reached without a token");
        // ... and let in with one, with the verified identity.
        let inbound_token = sts.sign(json!({
            "iss": sts.service.issuer(),
            "sub": "7f3e2a1c-0000-4000-8000-000000000001",
            "preferred_username": "alice",
            "aud": AGENT,
            "exp": now() + 300,
            "iat": now(),
        }));
        let status = lab
            .remote_rt
            .run(async move {
                reqwest::Client::new()
                    .get(format!("http://{pod_ip}:8080/data"))
                    .bearer_auth(inbound_token)
                    .header("x-actbridge-username", "mallory")
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
            .await;
        assert_eq!(status, 200, "{}", logs());
        let seen = app.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].header_all("x-actbridge-username"), vec!["alice"]);
        // The one port left alone inbound is actbridge's admin (the kubelet's probes).
        let status = lab
            .remote_rt
            .run(async move {
                reqwest::Client::new()
                    .get(format!("http://{pod_ip}:9902/healthz"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
            .await;
        assert_eq!(status, 200);
    }
    drop(lab);
    let left = String::from_utf8_lossy(&run(Command::new("ip").args(["netns", "list"])).stdout)
        .into_owned();
    for n in names {
        assert!(!left.contains(&n), "namespace {n} left behind");
    }
}

#[test]
fn the_capture_script_is_idempotent_removable_and_refuses_bad_settings() {
    let lab = Netns::create_standalone();
    let rules = |ns: &Netns| {
        let out = run(ns.command("iptables").args(["-t", "nat", "-S"]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&mut capture(&lab));
    let once = rules(&lab);
    assert!(
        once.contains("-A OUTPUT -p tcp -j ACTBRIDGE_OUTPUT"),
        "{once}"
    );
    assert!(once.contains("--uid-owner 1337 -j RETURN"), "{once}");
    assert!(once.contains("--to-ports 15001"), "{once}");
    assert!(once.contains("--to-ports 15006"), "{once}");
    run(&mut capture(&lab));
    assert_eq!(rules(&lab), once, "applying twice is applying once");
    run(lab.command(&script()).arg("remove"));
    let after = rules(&lab);
    assert!(!after.contains("ACTBRIDGE"), "{after}");

    for (key, value) in [
        ("ENVOY_UID", "envoy"),
        ("ACTBRIDGE_UID", "0"),
        ("OUTBOUND_PORT", "70000"),
        ("INBOUND_EXCLUDE_PORTS", "15006"),
    ] {
        let out = capture(&lab).env(key, value).output().unwrap();
        assert!(!out.status.success(), "{key}={value} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "the error names {key}: {err}");
        assert!(
            !rules(&lab).contains("ACTBRIDGE"),
            "a refused run left rules"
        );
    }
}
