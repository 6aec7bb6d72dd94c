//! One connection to a peer: typed requests in, typed responses out, many in
//! flight at once, matched by correlation id.
//!
//! A writer task sends the frames callers queue; a reader task hands each
//! response frame to the caller waiting for its correlation id. When the
//! socket fails, every waiting caller gets the error at once instead of
//! sitting out its timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Request, StrBytes};
use parking_lot::Mutex;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::wire::{decode_response, encode_request, peek_correlation_id};
use super::{ClientError, ClientOptions};
use crate::protocol::{read_frame, ApiVersionTable};

type Reply = oneshot::Sender<Result<Bytes, ClientError>>;

/// What the reader and writer tasks share with the callers.
struct Shared {
    addr: String,
    /// Callers waiting for a response, by correlation id; `None` once the
    /// connection is closed, so that nobody starts waiting on a dead socket.
    pending: Mutex<Option<HashMap<i32, Reply>>>,
    /// Turns true once; stops both tasks.
    closed: watch::Sender<bool>,
}

impl Shared {
    fn disconnected(&self, reason: &str) -> ClientError {
        ClientError::Disconnected {
            addr: self.addr.clone(),
            reason: reason.to_string(),
        }
    }

    /// Fails every waiting caller with `reason` and stops both tasks.
    fn close(&self, reason: &str) {
        let pending = self.pending.lock().take();
        if let Some(pending) = pending {
            tracing::debug!(addr = %self.addr, reason, waiting = pending.len(), "connection closed");
            let error = self.disconnected(reason);
            for (_, reply) in pending {
                let _ = reply.send(Err(error.clone()));
            }
        }
        self.closed.send_replace(true);
    }

    fn forget(&self, correlation_id: i32) {
        if let Some(pending) = self.pending.lock().as_mut() {
            pending.remove(&correlation_id);
        }
    }
}

/// Sends frames and waits for the matching response frames.
struct Channel {
    shared: Arc<Shared>,
    outgoing: mpsc::UnboundedSender<Bytes>,
    next_correlation_id: AtomicI32,
    client_id: StrBytes,
}

impl Channel {
    /// Sends `request` and returns its correlation id and response frame.
    async fn round_trip<R: Request>(
        &self,
        api: ApiKey,
        version: i16,
        request: &R,
        deadline: Instant,
    ) -> Result<(i32, Bytes), ClientError> {
        let started = Instant::now();
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let frame = encode_request(api, version, correlation_id, &self.client_id, request)?;
        let (reply, response) = oneshot::channel();
        match self.shared.pending.lock().as_mut() {
            Some(pending) => pending.insert(correlation_id, reply),
            None => {
                return Err(self
                    .shared
                    .disconnected("closed before the request was sent"))
            }
        };
        if self.outgoing.send(frame).is_err() {
            self.shared.forget(correlation_id);
            return Err(self.shared.disconnected("writer stopped"));
        }
        match tokio::time::timeout_at(deadline, response).await {
            Ok(Ok(result)) => result.map(|frame| (correlation_id, frame)),
            Ok(Err(_)) => Err(self.shared.disconnected("reader stopped")),
            Err(_) => {
                // Only this request gives up; a late answer is dropped by the reader.
                self.shared.forget(correlation_id);
                Err(ClientError::Timeout(
                    deadline.saturating_duration_since(started),
                ))
            }
        }
    }
}

/// A connection whose API versions were negotiated with the peer.
pub struct Connection {
    channel: Channel,
    /// The peer's versions clipped to what our codec encodes.
    versions: ApiVersionTable,
}

impl Connection {
    /// Connects to `addr` (`host:port`; the host name is resolved now, since
    /// pod addresses change) and asks the peer which API versions it serves.
    pub async fn connect(
        addr: &str,
        options: &ClientOptions,
        deadline: Instant,
    ) -> Result<Connection, ClientError> {
        let connect_error = |reason: String| ClientError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let stream = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_error("timed out".into()))?
            .map_err(|e| connect_error(e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| connect_error(e.to_string()))?;
        let (read, write) = stream.into_split();
        let (outgoing, queued) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            pending: Mutex::new(Some(HashMap::new())),
            closed: watch::Sender::new(false),
        });
        tokio::spawn(write_loop(write, queued, shared.clone()));
        tokio::spawn(read_loop(read, shared.clone(), options.max_response_bytes));
        let channel = Channel {
            shared,
            outgoing,
            next_correlation_id: AtomicI32::new(0),
            client_id: StrBytes::from_string(options.client_id.clone()),
        };
        let versions = negotiate(&channel, deadline).await?;
        Ok(Connection { channel, versions })
    }

    pub fn addr(&self) -> &str {
        &self.channel.shared.addr
    }

    /// Closed connections fail every request; open a new one.
    pub fn is_closed(&self) -> bool {
        *self.channel.shared.closed.borrow()
    }

    /// The version we send `api` at: the highest both sides support.
    pub fn version_for(&self, api: ApiKey) -> Result<i16, ClientError> {
        self.versions
            .range(api as i16)
            .map(|(_, max)| max)
            .ok_or_else(|| ClientError::UnsupportedApi {
                addr: self.addr().to_string(),
                api,
            })
    }

    /// Sends `request` and waits for its response until `deadline`.
    pub async fn send<R: Request>(
        &self,
        request: &R,
        deadline: Instant,
    ) -> Result<R::Response, ClientError> {
        let api = ApiKey::try_from(R::KEY).map_err(|_| ClientError::Encode {
            api: ApiKey::ApiVersions,
            version: -1,
            reason: format!("unknown API key {}", R::KEY),
        })?;
        let version = self.version_for(api)?;
        let (correlation_id, frame) = self
            .channel
            .round_trip(api, version, request, deadline)
            .await?;
        decode_response(self.addr(), api, version, correlation_id, frame)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.channel.shared.close("connection dropped");
    }
}

/// The peer's ApiVersions answer, asked at our newest version first; a peer
/// that does not know it says which version it does know, and we ask again.
async fn negotiate(channel: &Channel, deadline: Instant) -> Result<ApiVersionTable, ClientError> {
    let newest = ApiKey::ApiVersions.valid_versions().max;
    let mut response = ask_versions(channel, newest, deadline).await?;
    if response.error_code == ResponseError::UnsupportedVersion.code() {
        let theirs = response
            .api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::ApiVersions as i16)
            .map(|k| k.max_version.min(newest));
        let Some(version) = theirs.filter(|v| *v >= 0) else {
            return Err(bad_versions(
                channel,
                "ApiVersions refused without a usable version",
            ));
        };
        response = ask_versions(channel, version, deadline).await?;
    }
    if response.error_code != 0 {
        return Err(bad_versions(
            channel,
            &format!("ApiVersions failed with error {}", response.error_code),
        ));
    }
    let ranges: Vec<(ApiKey, i16, i16)> = response
        .api_keys
        .iter()
        .filter_map(|k| {
            Some((
                ApiKey::try_from(k.api_key).ok()?,
                k.min_version,
                k.max_version,
            ))
        })
        .collect();
    Ok(ApiVersionTable::new([&ranges[..]]))
}

async fn ask_versions(
    channel: &Channel,
    version: i16,
    deadline: Instant,
) -> Result<ApiVersionsResponse, ClientError> {
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("broker"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
    let api = ApiKey::ApiVersions;
    let (correlation_id, frame) = channel.round_trip(api, version, &request, deadline).await?;
    let addr = &channel.shared.addr;
    // A peer refusing our version answers with a v0 body, as Kafka does.
    match decode_response::<ApiVersionsResponse>(addr, api, version, correlation_id, frame.clone())
    {
        Ok(response) if response.error_code != ResponseError::UnsupportedVersion.code() => {
            Ok(response)
        }
        _ => decode_response(addr, api, 0, correlation_id, frame),
    }
}

fn bad_versions(channel: &Channel, reason: &str) -> ClientError {
    ClientError::Malformed {
        addr: channel.shared.addr.clone(),
        api: ApiKey::ApiVersions,
        version: 0,
        reason: reason.to_string(),
    }
}

async fn write_loop(
    write: OwnedWriteHalf,
    mut queued: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
) {
    let mut closed = shared.closed.subscribe();
    let mut writer = BufWriter::new(write);
    loop {
        let frame = tokio::select! {
            frame = queued.recv() => frame,
            _ = closed.wait_for(|closed| *closed) => None,
        };
        let Some(frame) = frame else { break };
        // Frames queued meanwhile go out with this one, in one flush.
        let mut written = writer.write_all(&frame).await;
        while let (Ok(()), Ok(next)) = (&written, queued.try_recv()) {
            written = writer.write_all(&next).await;
        }
        let flushed = match written {
            Ok(()) => writer.flush().await,
            Err(error) => Err(error),
        };
        if let Err(error) = flushed {
            shared.close(&format!("write failed: {error}"));
            return;
        }
    }
    shared.close("connection dropped");
    let _ = writer.shutdown().await;
}

async fn read_loop(read: OwnedReadHalf, shared: Arc<Shared>, max_response_bytes: u32) {
    let mut closed = shared.closed.subscribe();
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    let reason = loop {
        let frame = tokio::select! {
            frame = read_frame(&mut reader, max_response_bytes) => frame,
            _ = closed.wait_for(|closed| *closed) => return,
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => break "closed by the peer".to_string(),
            Err(error) => break format!("read failed: {error}"),
        };
        let Some(correlation_id) = peek_correlation_id(&frame) else {
            break "response shorter than a response header".to_string();
        };
        let reply = shared
            .pending
            .lock()
            .as_mut()
            .and_then(|pending| pending.remove(&correlation_id));
        match reply {
            Some(reply) => {
                let _ = reply.send(Ok(frame));
            }
            None => {
                tracing::debug!(addr = %shared.addr, correlation_id, "dropping the answer to a request that timed out")
            }
        }
    };
    shared.close(&reason);
}
