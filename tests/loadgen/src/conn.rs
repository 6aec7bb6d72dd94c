//! One TCP connection to a broker: request/response calls with a timeout.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use bytes::BytesMut;
use kafka_protocol::protocol::{Request, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::wire::{decode_response, encode_request, FrameReader};

pub struct Connection {
    pub addr: String,
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    frames: FrameReader,
    next_correlation_id: i32,
    client_id: StrBytes,
    timeout: Duration,
}

/// The halves of a connection for pipelining: one task writes, another reads.
pub struct Parts {
    pub reader: OwnedReadHalf,
    pub writer: OwnedWriteHalf,
    pub frames: FrameReader,
    pub next_correlation_id: i32,
    pub client_id: StrBytes,
}

impl Connection {
    pub async fn connect(addr: &str, client_id: &str, timeout: Duration) -> Result<Self> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("timed out connecting to {addr}"))?
            .with_context(|| format!("connecting to {addr}"))?;
        // Small produce requests must not wait for Nagle's algorithm.
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        let (reader, writer) = stream.into_split();
        Ok(Self {
            addr: addr.to_string(),
            reader,
            writer,
            frames: FrameReader::default(),
            next_correlation_id: 1,
            client_id: StrBytes::from_string(client_id.to_string()),
            timeout,
        })
    }

    /// Sends one request and waits for its response.
    pub async fn call<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response> {
        let cid = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let mut buf = BytesMut::new();
        encode_request(&mut buf, cid, version, &self.client_id, req)?;
        let io = async {
            self.writer.write_all(&buf).await?;
            self.frames.next_frame(&mut self.reader).await
        };
        let frame = tokio::time::timeout(self.timeout, io)
            .await
            .map_err(|_| anyhow!("no answer from {} within {:?}", self.addr, self.timeout))?
            .with_context(|| format!("talking to {}", self.addr))?;
        decode_response::<R>(frame, version, cid)
            .with_context(|| format!("answer from {}", self.addr))
    }

    pub fn into_parts(self) -> Parts {
        Parts {
            reader: self.reader,
            writer: self.writer,
            frames: self.frames,
            next_correlation_id: self.next_correlation_id,
            client_id: self.client_id,
        }
    }
}
