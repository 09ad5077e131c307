//! The no-op ext_proc server of case B: every message gets the CONTINUE of its phase,
//! nothing is read, nothing is changed. It has actbridge's stream plumbing (one task per
//! stream, answers through a bounded channel) and tokio's default runtime, so that B
//! measures what any ext_proc server pays for the hop and D/E measure what actbridge's
//! decisions add to it.

use std::path::PathBuf;

use anyhow::{Context, bail};
use envoy_types::pb::envoy::service::ext_proc::v3::common_response::ResponseStatus;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::{
    ExternalProcessor, ExternalProcessorServer,
};
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Phase;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as Reply;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    BodyResponse, CommonResponse, HeadersResponse, ProcessingRequest, ProcessingResponse,
    TrailersResponse,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tonic::{Request, Response, Status, Streaming};

/// `bench-tools noop-extproc`.
#[derive(clap::Args)]
pub struct Args {
    /// `tcp://HOST:PORT` or `unix:///PATH`.
    #[arg(long)]
    listen: String,
    /// Leave Nagle's algorithm on for accepted TCP connections (tonic's `serve` turns
    /// it off; a server given its own listener keeps the kernel default, on).
    #[arg(long)]
    nagle: bool,
}

struct Noop;

fn continue_() -> Option<CommonResponse> {
    Some(CommonResponse {
        status: ResponseStatus::Continue as i32,
        ..Default::default()
    })
}

fn answer(msg: &ProcessingRequest) -> ProcessingResponse {
    let reply = match &msg.request {
        Some(Phase::RequestHeaders(_)) | None => Reply::RequestHeaders(HeadersResponse {
            response: continue_(),
        }),
        Some(Phase::ResponseHeaders(_)) => Reply::ResponseHeaders(HeadersResponse {
            response: continue_(),
        }),
        Some(Phase::RequestBody(_)) => Reply::RequestBody(BodyResponse {
            response: continue_(),
        }),
        Some(Phase::ResponseBody(_)) => Reply::ResponseBody(BodyResponse {
            response: continue_(),
        }),
        Some(Phase::RequestTrailers(_)) => Reply::RequestTrailers(TrailersResponse::default()),
        Some(Phase::ResponseTrailers(_)) => Reply::ResponseTrailers(TrailersResponse::default()),
    };
    ProcessingResponse {
        response: Some(reply),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl ExternalProcessor for Noop {
    type ProcessStream = ReceiverStream<Result<ProcessingResponse, Status>>;

    async fn process(
        &self,
        request: Request<Streaming<ProcessingRequest>>,
    ) -> Result<Response<Self::ProcessStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            while let Ok(Some(msg)) = inbound.message().await {
                if tx.send(Ok(answer(&msg))).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let router =
            tonic::transport::Server::builder().add_service(ExternalProcessorServer::new(Noop));
        if let Some(addr) = args.listen.strip_prefix("tcp://") {
            let addr: std::net::SocketAddr = addr.parse().context("--listen")?;
            let incoming = tonic::transport::server::TcpIncoming::bind(addr)
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?
                .with_nodelay(Some(!args.nagle));
            router.serve_with_incoming(incoming).await?;
        } else if let Some(path) = args.listen.strip_prefix("unix://") {
            let path = PathBuf::from(path);
            let _ = std::fs::remove_file(&path);
            let listener = tokio::net::UnixListener::bind(&path)
                .with_context(|| format!("cannot listen on {}", path.display()))?;
            router
                .serve_with_incoming(UnixListenerStream::new(listener))
                .await?;
        } else {
            bail!("--listen: tcp://HOST:PORT or unix:///PATH");
        }
        Ok(())
    })
}
