//! Client listener: one task per connection; requests on a connection are
//! handled one at a time so responses leave in request order (as Kafka mutes
//! a channel while its request is in flight); connections run in parallel.

use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::handlers::dispatch;
use crate::protocol::read_frame;
use crate::server::BrokerState;

/// Accepts connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    state: Arc<BrokerState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    state.metrics.connections.inc();
                    let state = state.clone();
                    tokio::spawn(async move {
                        if let Err(error) = connection(stream, &state).await {
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

async fn connection(stream: TcpStream, state: &BrokerState) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?;
    let (read, write) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    let mut writer = BufWriter::with_capacity(64 * 1024, write);
    let max_frame = state.config.socket_request_max_bytes;
    let client_host = format!("/{}", peer.ip());
    loop {
        let frame = match read_frame(&mut reader, max_frame).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(error) => {
                state.metrics.bad_frames.inc();
                tracing::warn!(%peer, %error, "closing connection: bad frame");
                return Ok(());
            }
        };
        match dispatch(state, &client_host, frame).await {
            Ok(Some(chunks)) => {
                // Large chunks bypass the buffer; small ones are coalesced.
                for chunk in &chunks {
                    writer.write_all(chunk).await?;
                }
                writer.flush().await?;
            }
            Ok(None) => {}
            Err(error) => {
                state.metrics.bad_frames.inc();
                tracing::warn!(%peer, %error, "closing connection: request cannot be served");
                return Ok(());
            }
        }
    }
}
