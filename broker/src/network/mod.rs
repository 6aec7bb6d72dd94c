//! Listeners: one task per connection; requests on a connection are
//! handled one at a time so responses leave in request order (as Kafka mutes
//! a channel while its request is in flight); connections run in parallel.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::handlers::DispatchError;
use crate::protocol::read_frame;
use crate::server::metrics::Metrics;

/// What a listener serves: the client listener answers the broker APIs, the
/// controller listener the controller and Raft APIs.
pub trait Service: Send + Sync + 'static {
    /// Frames larger than this close the connection before being read.
    fn max_frame_bytes(&self) -> u32;
    fn metrics(&self) -> &Metrics;
    /// Answers one request frame; `Ok(None)` when no response is due.
    fn dispatch(
        &self,
        client_host: &str,
        frame: Bytes,
    ) -> impl Future<Output = Result<Option<Vec<Bytes>>, DispatchError>> + Send;
}

/// Accepts connections until `shutdown` turns true.
pub async fn serve<S: Service>(
    listener: TcpListener,
    state: Arc<S>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    state.metrics().connections.inc();
                    let state = state.clone();
                    let stop = shutdown.clone();
                    tokio::spawn(async move {
                        if let Err(error) = connection(stream, state.as_ref(), stop).await {
                            tracing::debug!(%peer, %error, "connection ended with an I/O error");
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Serves one connection until the peer closes it or the node shuts down
/// (checked between requests, so an answer in progress is still sent).
async fn connection<S: Service>(
    stream: TcpStream,
    state: &S,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?;
    let (read, write) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    let mut writer = BufWriter::with_capacity(64 * 1024, write);
    let max_frame = state.max_frame_bytes();
    let client_host = format!("/{}", peer.ip());
    loop {
        let read = tokio::select! {
            read = read_frame(&mut reader, max_frame) => read,
            _ = shutdown.changed() => return Ok(()),
        };
        let frame = match read {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(error) => {
                state.metrics().bad_frames.inc();
                tracing::warn!(%peer, %error, "closing connection: bad frame");
                return Ok(());
            }
        };
        match state.dispatch(&client_host, frame).await {
            Ok(Some(chunks)) => {
                // Large chunks bypass the buffer; small ones are coalesced.
                for chunk in &chunks {
                    writer.write_all(chunk).await?;
                }
                writer.flush().await?;
            }
            Ok(None) => {}
            Err(error) => {
                state.metrics().bad_frames.inc();
                tracing::warn!(%peer, %error, "closing connection: request cannot be served");
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopping_the_node_closes_open_connections() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::server::testing::start_node(dir.path(), 0, "").await;
        let mut idle = tokio::net::TcpStream::connect(node.client_addr.unwrap())
            .await
            .unwrap();
        node.stop().await.unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), idle.read(&mut buf))
            .await
            .expect("the connection must be closed, not left open");
        assert_eq!(read.unwrap(), 0, "EOF");
    }
}
