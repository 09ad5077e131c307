//! The response stream of one ext_proc stream, which only ends well when its task said so.
//!
//! The stream task sends Envoy its answers through an mpsc channel. If that task ends
//! abnormally — a panic anywhere in the decision, the task cancelled or aborted, its
//! sender dropped — the channel closes as if the task had finished, and a plain
//! `ReceiverStream` would end the gRPC stream with status OK. Envoy reads an OK end
//! before its answer as "the processor is done" and sends the request on **unmodified**:
//! the caller's forged identity headers and raw token would reach the app. Here the
//! stream ends with a non-OK status (`INTERNAL`) unless the task marked its end as
//! normal, so Envoy (with `failure_mode_allow: false`) refuses the request (500).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use envoy_types::pb::envoy::service::ext_proc::v3::ProcessingResponse;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::Status;

/// What the stream task sends.
pub(super) type Sent = Result<ProcessingResponse, Status>;

/// The task's side: marks the end of the task as normal.
#[derive(Clone)]
pub(super) struct EndedWell(Arc<AtomicBool>);

impl EndedWell {
    /// The task ends as intended (Envoy closed its side, or the task sent its last word,
    /// an error status, itself). Every other end fails the stream.
    pub(super) fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The stream Envoy reads: the channel's messages, then — when the channel closed
/// without [`EndedWell::mark`] — one `INTERNAL` status.
pub(crate) struct FailClosed {
    rx: mpsc::Receiver<Sent>,
    ended_well: Arc<AtomicBool>,
    failed: bool,
}

/// A channel of `capacity` and the stream reading it.
pub(super) fn channel(capacity: usize) -> (mpsc::Sender<Sent>, EndedWell, FailClosed) {
    let (tx, rx) = mpsc::channel(capacity);
    let ended_well = Arc::new(AtomicBool::new(false));
    (
        tx,
        EndedWell(ended_well.clone()),
        FailClosed {
            rx,
            ended_well,
            failed: false,
        },
    )
}

impl Stream for FailClosed {
    type Item = Sent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Sent>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(None) if !self.ended_well.load(Ordering::Acquire) => {
                self.failed = true;
                tracing::error!(
                    "the decision task ended abnormally (panic or cancellation); failing the request closed"
                );
                Poll::Ready(Some(Err(Status::internal("decision failed"))))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn a_task_that_panics_ends_the_stream_with_an_error_not_ok() {
        let (tx, ended_well, mut stream) = channel(4);
        let task = tokio::spawn(async move {
            let _keep = (tx, ended_well);
            panic!("injected");
        });
        assert!(task.await.unwrap_err().is_panic());
        let end = stream.next().await.expect("a final item");
        assert_eq!(end.unwrap_err().code(), tonic::Code::Internal);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn an_aborted_task_ends_the_stream_with_an_error() {
        let (tx, ended_well, mut stream) = channel(4);
        let task = tokio::spawn(async move {
            let _keep = (tx, ended_well);
            std::future::pending::<()>().await;
        });
        task.abort();
        let _ = task.await;
        assert!(stream.next().await.unwrap().is_err());
    }

    #[tokio::test]
    async fn a_task_that_ends_well_ends_the_stream_after_its_messages() {
        let (tx, ended_well, mut stream) = channel(4);
        tx.send(Ok(ProcessingResponse::default())).await.unwrap();
        ended_well.mark();
        drop(tx);
        assert!(stream.next().await.unwrap().is_ok());
        assert!(stream.next().await.is_none());
    }
}
