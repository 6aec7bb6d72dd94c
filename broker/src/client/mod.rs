//! A Kafka protocol client for node-to-node RPCs: broker → controller
//! (registration, heartbeats, forwarded requests), Raft between controllers,
//! and replica fetchers.
//!
//! [`Connection`] multiplexes typed requests over one socket; [`NodeClients`]
//! keeps one lazily opened connection per node id; [`ControllerChannel`] finds
//! the active controller among the voters and retries until a deadline.

mod connection;
mod controller_channel;
mod nodes;
mod wire;

pub use connection::Connection;
pub use controller_channel::{ControllerChannel, ControllerRpc};
pub use nodes::{AddressBook, NodeClients};

use std::time::Duration;

use kafka_protocol::messages::ApiKey;

/// Why a request got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("node {0} has no known address")]
    UnknownNode(i32),
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("connection to {addr} is closed: {reason}")]
    Disconnected { addr: String, reason: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{addr} does not support {api:?} at any version we can encode")]
    UnsupportedApi { addr: String, api: ApiKey },
    #[error("cannot encode {api:?} v{version}: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("malformed {api:?} v{version} response from {addr}: {reason}")]
    Malformed {
        addr: String,
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("no active controller answered: {0}")]
    NoController(String),
}

impl ClientError {
    /// Whether another attempt (new connection, other node) may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Disconnected { .. }
                | ClientError::Timeout(_)
        )
    }
}

/// Settings every connection shares.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Sent in every request header, so peers' logs say who asked.
    pub client_id: String,
    /// First wait before reconnecting to a node that failed (Kafka's
    /// `reconnect.backoff.ms`); doubles per failure up to the max.
    pub reconnect_backoff: Duration,
    pub reconnect_backoff_max: Duration,
    /// Largest response frame accepted; a bigger one closes the connection.
    pub max_response_bytes: u32,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            client_id: "broker".into(),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            max_response_bytes: 100 * 1024 * 1024,
        }
    }
}

/// Exponential backoff with ±20% jitter (as Kafka's clients), so that many
/// brokers retrying the same controller do not move in lockstep.
pub(crate) fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let capped = exp.min(max);
    let jitter = rand::random_range(0.8..1.2);
    capped.mul_f64(jitter)
}

#[cfg(test)]
mod tests;
