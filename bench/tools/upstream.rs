//! The upstream every bench Envoy forwards to: HTTP/1.1 keep-alive, `200 ok` to any
//! request, on a single-threaded runtime so that it stays a small, steady share of the
//! machine. `GET /jwks.json` serves the `--jwks` file (the cache-fill issuer's keys).

use std::convert::Infallible;
use std::path::PathBuf;

use anyhow::Context;
use http::{Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// `bench-tools upstream`.
#[derive(clap::Args)]
pub struct Args {
    /// Listening address.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// A JWKS file served at `/jwks.json`.
    #[arg(long)]
    jwks: Option<PathBuf>,
    /// Write the bound port to this file once listening.
    #[arg(long)]
    port_file: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let jwks = match &args.jwks {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?,
        None => "{\"keys\":[]}".to_string(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let jwks: std::sync::Arc<str> = jwks.into();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        let port = listener.local_addr()?.port();
        if let Some(f) = &args.port_file {
            std::fs::write(f, port.to_string())?;
        }
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let jwks = jwks.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: http::Request<Incoming>| {
                    let body = if req.uri().path() == "/jwks.json" {
                        jwks.to_string()
                    } else {
                        "ok\n".to_string()
                    };
                    async move {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(StatusCode::OK)
                                .header("content-type", "text/plain")
                                .body(body)
                                .expect("static response"),
                        )
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
