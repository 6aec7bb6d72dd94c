//! One lazily opened connection per node id, reopened with backoff.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::protocol::Request;
use tokio::time::Instant;

use super::connection::Connection;
use super::{backoff, ClientError, ClientOptions};

/// Where a node listens, as `(host, port)`; asked on every (re)connect so a
/// moved node is found at its new address.
pub type AddressBook = Arc<dyn Fn(i32) -> Option<(String, u16)> + Send + Sync>;

/// The connection to one node and how its recent connects went.
#[derive(Default)]
struct NodeSlot {
    connection: Option<Arc<Connection>>,
    failures: u32,
    /// No new connect before this, after a failure.
    retry_at: Option<Instant>,
    last_error: Option<ClientError>,
}

pub struct NodeClients {
    addresses: AddressBook,
    options: ClientOptions,
    /// The async lock makes concurrent senders share one connect attempt.
    nodes: parking_lot::Mutex<HashMap<i32, Arc<tokio::sync::Mutex<NodeSlot>>>>,
}

impl NodeClients {
    pub fn new(addresses: AddressBook, options: ClientOptions) -> Self {
        NodeClients {
            addresses,
            options,
            nodes: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// Sends `request` to `node`, connecting first if needed; `timeout`
    /// covers the connect, the version negotiation and the answer.
    pub async fn send<R: Request>(
        &self,
        node: i32,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response, ClientError> {
        self.send_until(node, request, Instant::now() + timeout)
            .await
    }

    pub(crate) async fn send_until<R: Request>(
        &self,
        node: i32,
        request: &R,
        deadline: Instant,
    ) -> Result<R::Response, ClientError> {
        let connection = self.connection(node, deadline).await?;
        connection.send(request, deadline).await
    }

    /// The open connection to `node`, or a new one once its backoff is over.
    async fn connection(
        &self,
        node: i32,
        deadline: Instant,
    ) -> Result<Arc<Connection>, ClientError> {
        let slot = self.nodes.lock().entry(node).or_default().clone();
        // Another sender may be connecting with a later deadline (e.g. to a node
        // that died, whose connect hangs): waiting for it must not outlast ours,
        // or a heartbeat misses its session while a forwarded request connects.
        let mut slot = tokio::time::timeout_at(deadline, slot.lock())
            .await
            .map_err(|_| {
                ClientError::Timeout(deadline.saturating_duration_since(Instant::now()))
            })?;
        if let Some(connection) = &slot.connection {
            if !connection.is_closed() {
                return Ok(connection.clone());
            }
            slot.connection = None;
        }
        if let Some(retry_at) = slot.retry_at {
            if retry_at > deadline {
                return Err(slot.last_error.clone().unwrap_or(ClientError::Timeout(
                    deadline.saturating_duration_since(Instant::now()),
                )));
            }
            tokio::time::sleep_until(retry_at).await;
        }
        let (host, port) = (self.addresses)(node).ok_or(ClientError::UnknownNode(node))?;
        match Connection::connect(&format!("{host}:{port}"), &self.options, deadline).await {
            Ok(connection) => {
                let connection = Arc::new(connection);
                *slot = NodeSlot {
                    connection: Some(connection.clone()),
                    ..NodeSlot::default()
                };
                Ok(connection)
            }
            Err(error) => {
                slot.failures += 1;
                let wait = backoff(
                    self.options.reconnect_backoff,
                    self.options.reconnect_backoff_max,
                    slot.failures,
                );
                slot.retry_at = Some(Instant::now() + wait);
                slot.last_error = Some(error.clone());
                tracing::debug!(node, %error, ?wait, "connect failed");
                Err(error)
            }
        }
    }
}
