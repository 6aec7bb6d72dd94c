//! Harness shared by the end-to-end tests: starts the real broker binary.
//!
//! [`NodeProcess`] is one `broker start -c server.properties` process in its own temp dir on
//! free loopback ports: format, start, wait until `/readyz` answers 200, stop (SIGTERM),
//! kill -9, pause (SIGSTOP), resume, restart on the same data, wipe. [`Broker`] is a
//! single combined node; [`Cluster`] a KRaft quorum of controllers plus brokers (or combined
//! nodes). [`KafkaConn`] sends typed requests from the `kafka-protocol` crate over a socket.

pub mod bench;
mod cluster;
mod node;
pub mod observe;
pub mod ops;

pub use cluster::{Broker, Cluster, ClusterSpec};
pub use node::NodeProcess;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// The broker binary under test: `$BROKER_BIN`, else `<target dir>/debug/broker`.
pub fn broker_bin() -> PathBuf {
    if let Ok(p) = std::env::var("BROKER_BIN") {
        let p = PathBuf::from(p);
        return if p.is_absolute() {
            p
        } else {
            workspace_root().join(p)
        };
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    target.join("debug").join("broker")
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A free TCP port on 127.0.0.1 (bound, read, released), never one this
/// process was given before: a node's ports are picked before it binds any,
/// so the kernel could otherwise hand the same one out twice.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind 127.0.0.1:0");
        if given.insert(port) {
            return port;
        }
    }
}

/// Status code of `GET path` on 127.0.0.1:port (HTTP/1.0, no dependencies).
pub fn http_status(port: u16, path: &str) -> Result<u16> {
    Ok(http_get(port, path)?.0)
}

/// Status code and body of `GET path` on 127.0.0.1:port (HTTP/1.0, no dependencies).
pub fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    http_request(port, "GET", path, Duration::from_secs(2))
}

/// Status code and body of `method path` (no request body) on 127.0.0.1:port,
/// waiting up to `timeout` for the answer.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String)> {
    http_send(port, method, path, "", timeout)
}

/// Status code and body of `method path` with a JSON `body` on 127.0.0.1:port,
/// waiting up to `timeout` for the answer.
pub fn http_send(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(timeout))?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut buf = Vec::new();
    let _ = s.take(16 << 20).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad HTTP answer {head:?}"))?;
    Ok((status, body.to_string()))
}

/// A client connection speaking typed requests from the `kafka-protocol` crate.
pub struct KafkaConn {
    stream: TcpStream,
    correlation_id: i32,
}

impl KafkaConn {
    pub fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            correlation_id: 0,
        })
    }

    /// Sends `req` at `version` and decodes the response of the same version.
    pub fn send<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response> {
        self.correlation_id += 1;
        let corr = self.correlation_id;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(corr)
            .with_client_id(Some(StrBytes::from_static_str("e2e-rust")));
        let mut body = BytesMut::new();
        header.encode(&mut body, R::header_version(version))?;
        req.encode(&mut body, version)?;
        self.write_frame(&body)?;
        let mut resp = self.read_frame()?;
        let rh = ResponseHeader::decode(&mut resp, R::Response::header_version(version))?;
        if rh.correlation_id != corr {
            bail!("correlation id {} != {corr}", rh.correlation_id);
        }
        let out = R::Response::decode(&mut resp, version)?;
        if resp.has_remaining() {
            bail!(
                "{} bytes left after decoding the response to api key {} v{version}",
                resp.remaining(),
                R::KEY
            );
        }
        Ok(out)
    }

    pub fn write_frame(&mut self, payload: &[u8]) -> Result<()> {
        let mut frame = BytesMut::with_capacity(payload.len() + 4);
        frame.put_i32(payload.len() as i32);
        frame.put_slice(payload);
        self.stream.write_all(&frame)?;
        Ok(())
    }

    pub fn read_frame(&mut self) -> Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .context("reading response size")?;
        let len = i32::from_be_bytes(len);
        if len < 0 {
            bail!("negative response size {len}");
        }
        let mut buf = vec![0u8; len as usize];
        self.stream
            .read_exact(&mut buf)
            .context("reading response body")?;
        Ok(Bytes::from(buf))
    }
}
