//! The ext_proc server on a Unix domain socket (Envoy `pipe`), end to end; and only Envoy
//! reaches ext_proc and SDS: each on its own socket, created 0660, serving only itself.

use crate::support::actbridge::Actbridge;
use crate::support::config_edit::ConfigEdit;
use crate::support::echo::Echo;
use crate::support::envoy::{Envoy, EnvoyPorts, ExtProcAddr};
use std::time::Duration;

use crate::support::workload_api::WorkloadApi;
use crate::support::world::{AGENT, Sts, sidecar_config, with_spiffe};

#[tokio::test]
async fn ext_proc_over_a_unix_socket_decides_like_tcp() {
    let sts = Sts::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("extproc.sock");
    let config = ConfigEdit::of(&sidecar_config(&sts))
        .replace("listen.ext_proc", &format!("unix://{}", sock.display()))
        .yaml();
    let app = Echo::start().await;
    let actbridge = Actbridge::start(&config).await;
    let envoy = Envoy::start(&EnvoyPorts {
        routes: actbridge.routes(),
        sds: actbridge.sds_port.map(ExtProcAddr::Tcp),
        ext_proc: ExtProcAddr::Unix(sock.clone()),
        app_port: app.port,
        document_service_port: app.port,
        aws_s3_port: None,
        github_api_port: None,
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/data", envoy.inbound_port);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let token = sts.alice().await;
    let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", actbridge.log());
    assert_eq!(app.count(), 1);
}

/// A gRPC channel over the Unix socket at `path`.
async fn unix_channel(path: &std::path::Path) -> tonic::transport::Channel {
    let path = path.to_path_buf();
    tonic::transport::Endpoint::from_static("http://actbridge.local")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .unwrap()
}

/// `curl` run as `uid` against the socket at `path`: its exit code (7: could not
/// connect).
fn curl_as(uid: u32, path: &std::path::Path) -> i32 {
    std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "curl",
            "-sS",
            "--max-time",
            "5",
            "--http2-prior-knowledge",
            "--unix-socket",
        ])
        .arg(path)
        .arg("http://actbridge.local/envoy.service.secret.v3.SecretDiscoveryService/FetchSecrets")
        .output()
        .unwrap()
        .status
        .code()
        .unwrap_or(-1)
}

#[tokio::test]
async fn only_envoy_reaches_ext_proc_and_sds_and_each_socket_serves_only_its_own_service() {
    use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
    use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
    use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;
    use std::os::unix::fs::PermissionsExt;

    let api = WorkloadApi::start(AGENT, Duration::from_secs(30), Duration::from_secs(30)).await;
    let sts = Sts::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The directory lets anyone through, so only the sockets' own mode stands between
    // another user and actbridge (in the pod, the directory is not even mounted there).
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ext_proc, sds) = (dir.path().join("extproc.sock"), dir.path().join("sds.sock"));
    let config = ConfigEdit::of(&with_spiffe(&sidecar_config(&sts), &api.endpoint()))
        .replace("listen.ext_proc", &format!("unix://{}", ext_proc.display()))
        .replace("listen.sds", &format!("unix://{}", sds.display()))
        .yaml();
    let actbridge = Actbridge::start(&config).await;
    for socket in [&ext_proc, &sds] {
        let mode = std::fs::metadata(socket).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660, "{}", socket.display());
        // A process of another user (the app's, say) cannot even connect ...
        assert_eq!(
            curl_as(4242, socket),
            7,
            "{} let another user in",
            socket.display()
        );
        // ... where the socket's owner can (curl then gets a gRPC answer: exit 0).
        assert_eq!(curl_as(0, socket), 0, "{}", socket.display());
    }
    let default = || DiscoveryRequest {
        resource_names: vec!["default".into()],
        type_url: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret".into(),
        ..Default::default()
    };
    // SDS answers on its socket only; ext_proc on its own only.
    let on_sds = SecretDiscoveryServiceClient::new(unix_channel(&sds).await)
        .fetch_secrets(default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(on_sds.resources.len(), 1);
    let on_ext_proc = SecretDiscoveryServiceClient::new(unix_channel(&ext_proc).await)
        .fetch_secrets(default())
        .await;
    assert_eq!(on_ext_proc.unwrap_err().code(), tonic::Code::Unimplemented);
    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    let decision_on_sds = ExternalProcessorClient::new(unix_channel(&sds).await)
        .process(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await;
    assert_eq!(
        decision_on_sds.unwrap_err().code(),
        tonic::Code::Unimplemented
    );
    drop(actbridge);
}

#[test]
fn a_listener_the_network_reaches_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("actbridge.yaml");
    for (listen, key) in [
        ("{ext_proc: 'tcp://0.0.0.0:9001'}", "listen.ext_proc"),
        ("{ext_proc: 'tcp://10.0.0.5:9001'}", "listen.ext_proc"),
        ("{ext_proc: 'tcp://[::]:9001'}", "listen.ext_proc"),
        (
            "{ext_proc: 'tcp://127.0.0.1:9001', sds: 'tcp://0.0.0.0:9003'}",
            "listen.sds",
        ),
        (
            "{ext_proc: 'unix:///run/a.sock', sds: 'unix:///run/a.sock'}",
            "listen.sds",
        ),
        (
            "{ext_proc: 'tcp://127.0.0.1:9001', sds: 'unix:///run/s.sock'}",
            "listen.sds",
        ),
    ] {
        std::fs::write(
            &config,
            format!(
                "listen: {listen}\nissuers: [{{issuer: 'http://127.0.0.1:1/r', audiences: [a]}}]\n"
            ),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_actbridge"))
            .arg("check-config")
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(78), "{listen}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{listen}: {err}");
    }
}
