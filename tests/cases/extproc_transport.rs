//! The ext_proc server on a Unix domain socket (Envoy `pipe`), end to end.

use crate::support::actbridge::Actbridge;
use crate::support::echo::Echo;
use crate::support::envoy::{Envoy, EnvoyPorts, ExtProcAddr};
use crate::support::world::{Sts, sidecar_config};

#[tokio::test]
async fn ext_proc_over_a_unix_socket_decides_like_tcp() {
    let sts = Sts::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("extproc.sock");
    let config = sidecar_config(&sts).replace(
        "ext_proc: tcp://127.0.0.1:{EXT_PROC}",
        &format!("ext_proc: unix://{}", sock.display()),
    );
    let app = Echo::start().await;
    let actbridge = Actbridge::start(&config).await;
    let envoy = Envoy::start(&EnvoyPorts {
        routes: actbridge.routes(),
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
