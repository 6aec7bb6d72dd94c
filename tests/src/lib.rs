//! Harness shared by the end-to-end tests: starts the real broker binary.
//!
//! [`Broker`] formats storage in a temp dir, starts `broker start -c server.properties` on free
//! loopback ports, waits until the client port accepts connections and `/readyz` answers 200,
//! and can stop (SIGTERM), kill -9 and restart it on the same data dir. [`KafkaConn`] sends typed
//! requests from the `kafka-protocol` crate over a plain socket.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// One single-node broker (roles broker+controller) in its own temp dir.
pub struct Broker {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub controller_port: u16,
    pub http_port: u16,
    pub props: BTreeMap<String, String>,
    child: Option<Child>,
}

impl Broker {
    /// Formats and starts a broker with the default test properties.
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// Formats and starts a broker; `extra` overrides or adds properties.
    pub fn start_with(extra: &[(&str, &str)]) -> Result<Self> {
        let mut b = Self::new(extra)?;
        b.format()?;
        b.spawn()?;
        b.wait_ready(Duration::from_secs(60))?;
        Ok(b)
    }

    fn new(extra: &[(&str, &str)]) -> Result<Self> {
        let bin = broker_bin();
        if !bin.exists() {
            bail!(
                "broker binary not found at {} (cargo build -p broker, or set BROKER_BIN)",
                bin.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("e2e-rs-broker-")
            .tempdir()?;
        let (port, controller_port, http_port) = (free_port(), free_port(), free_port());
        let mut props = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            props.insert(k.to_string(), v);
        };
        set("process.roles", "broker,controller".into());
        set("node.id", "1".into());
        set(
            "listeners",
            format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"),
        );
        set(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
        );
        set("controller.listener.names", "CONTROLLER".into());
        set(
            "controller.quorum.voters",
            format!("1@127.0.0.1:{controller_port}"),
        );
        set("log.dirs", dir.path().join("data").display().to_string());
        set("num.partitions", "1".into());
        set("auto.create.topics.enable", "true".into());
        set("group.initial.rebalance.delay.ms", "0".into());
        set("offsets.topic.num.partitions", "4".into());
        set("admin.http.listener", format!("127.0.0.1:{http_port}"));
        for (k, v) in extra {
            props.insert(k.to_string(), v.to_string());
        }
        Ok(Self {
            dir,
            port,
            controller_port,
            http_port,
            props,
            child: None,
        })
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("server.properties")
    }

    pub fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("broker.stderr")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn bootstrap(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn write_config(&self) -> Result<()> {
        let text: String = self
            .props
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        std::fs::write(self.config_path(), text)?;
        Ok(())
    }

    fn cli(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(broker_bin())
            .args(args)
            .output()
            .with_context(|| format!("run broker {args:?}"))?;
        if !out.status.success() {
            bail!(
                "`broker {}` exited {}\nstdout:\n{}\nstderr:\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `broker storage random-uuid` then `broker storage format -t ID -c FILE`.
    pub fn format(&self) -> Result<()> {
        self.write_config()?;
        let id = self.cli(&["storage", "random-uuid"])?;
        if id.is_empty() {
            bail!("`broker storage random-uuid` printed nothing");
        }
        let cfg = self.config_path();
        self.cli(&["storage", "format", "-t", &id, "-c", cfg.to_str().unwrap()])?;
        Ok(())
    }

    fn spawn(&mut self) -> Result<()> {
        self.write_config()?;
        let log: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())?;
        let child = Command::new(broker_bin())
            .args(["start", "-c", self.config_path().to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .env("RUST_BACKTRACE", "1")
            .spawn()
            .context("spawn broker")?;
        self.child = Some(child);
        Ok(())
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Waits for the client port and `/readyz` == 200; fails early if the process exits.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("nothing tried");
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    bail!(
                        "broker exited with {status} before ready\n{}",
                        self.stderr()
                    );
                }
            }
            match TcpStream::connect_timeout(&self.bootstrap(), Duration::from_secs(1)) {
                Ok(_) => match http_status(self.http_port, "/readyz") {
                    Ok(200) => return Ok(()),
                    Ok(s) => last = format!("/readyz answered {s}"),
                    Err(e) => last = format!("/readyz: {e}"),
                },
                Err(e) => last = format!("connect: {e}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "broker not ready after {timeout:?} ({last})\n{}",
            self.stderr()
        )
    }

    /// SIGTERM, then SIGKILL after 20 s.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            if c.try_wait()?.is_none() {
                let _ = Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(20);
                while c.try_wait()?.is_none() {
                    if Instant::now() > deadline {
                        c.kill()?;
                        c.wait()?;
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        Ok(())
    }

    /// SIGKILL (kill -9) and reap.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            c.wait()?;
        }
        Ok(())
    }

    /// Stops (SIGTERM, or SIGKILL when `hard`) and starts again on the same data dir and ports.
    pub fn restart(&mut self, hard: bool) -> Result<()> {
        if hard {
            self.kill9()?
        } else {
            self.stop()?
        }
        self.spawn()?;
        self.wait_ready(Duration::from_secs(60))
    }

    /// The broker's stderr so far (last 30 kB).
    pub fn stderr(&self) -> String {
        let data = std::fs::read(self.stderr_path()).unwrap_or_default();
        let tail = &data[data.len().saturating_sub(30_000)..];
        String::from_utf8_lossy(tail).into_owned()
    }

    pub fn connect(&self) -> Result<KafkaConn> {
        KafkaConn::connect(self.bootstrap())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- broker stderr ({}) ----\n{}",
                self.dir.path().display(),
                self.stderr()
            );
        }
        let _ = self.kill9();
    }
}

/// Status code of `GET path` on 127.0.0.1:port (HTTP/1.0, no dependencies).
pub fn http_status(port: u16, path: &str) -> Result<u16> {
    let mut s = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut buf = Vec::new();
    let _ = s.take(256).read_to_end(&mut buf);
    let line = String::from_utf8_lossy(&buf);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad HTTP answer {line:?}"))
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
