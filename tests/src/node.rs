//! One broker process (any `process.roles`) in its own temp dir on free loopback ports.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{broker_bin, free_port, http_status, KafkaConn};

pub struct NodeProcess {
    pub id: i32,
    pub dir: tempfile::TempDir,
    /// The client listener, when the node has the broker role.
    pub client_port: Option<u16>,
    /// The controller listener, when the node has the controller role.
    pub controller_port: Option<u16>,
    pub http_port: u16,
    pub props: BTreeMap<String, String>,
    child: Option<Child>,
}

impl NodeProcess {
    /// A node with `roles` (`broker`, `controller` or `broker,controller`) whose
    /// controller port, if any, was picked by the caller to build the voter list.
    pub fn new(
        id: i32,
        roles: &str,
        controller_port: Option<u16>,
        voters: &str,
        extra: &[(&str, &str)],
    ) -> Result<Self> {
        let bin = broker_bin();
        if !bin.exists() {
            bail!(
                "broker binary not found at {} (cargo build -p broker, or set BROKER_BIN)",
                bin.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("e2e-node-{id}-"))
            .tempdir()?;
        let client_port = roles.contains("broker").then(free_port);
        let http_port = free_port();
        let mut listeners = Vec::new();
        if let Some(port) = client_port {
            listeners.push(format!("PLAINTEXT://127.0.0.1:{port}"));
        }
        if let Some(port) = controller_port {
            listeners.push(format!("CONTROLLER://127.0.0.1:{port}"));
        }
        let mut props = BTreeMap::new();
        for (k, v) in [
            ("process.roles", roles.to_string()),
            ("node.id", id.to_string()),
            ("listeners", listeners.join(",")),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
            ),
            ("controller.listener.names", "CONTROLLER".into()),
            ("controller.quorum.voters", voters.to_string()),
            ("log.dirs", dir.path().join("data").display().to_string()),
            ("num.partitions", "1".into()),
            ("auto.create.topics.enable", "true".into()),
            ("group.initial.rebalance.delay.ms", "0".into()),
            ("offsets.topic.num.partitions", "4".into()),
            ("admin.http.listener", format!("127.0.0.1:{http_port}")),
        ] {
            props.insert(k.to_string(), v);
        }
        for (k, v) in extra {
            props.insert(k.to_string(), v.to_string());
        }
        Ok(NodeProcess {
            id,
            dir,
            client_port,
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

    /// The client address; panics for a controller-only node, a test bug.
    pub fn bootstrap(&self) -> SocketAddr {
        let port = self
            .client_port
            .unwrap_or_else(|| panic!("node {} has no client listener", self.id));
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    pub fn connect(&self) -> Result<KafkaConn> {
        KafkaConn::connect(self.bootstrap())
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

    /// `broker storage format -t <cluster_id> -c <config>`.
    pub fn format(&self, cluster_id: &str) -> Result<()> {
        self.write_config()?;
        let config = self.config_path();
        cli(&[
            "storage",
            "format",
            "-t",
            cluster_id,
            "-c",
            config.to_str().unwrap(),
        ])?;
        Ok(())
    }

    pub fn spawn(&mut self) -> Result<()> {
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

    /// The process id while the node runs (for readings from `/proc/<pid>`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Waits until `/readyz` answers 200 (and the client port accepts, for a
    /// broker); fails early if the process exits.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("nothing tried");
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    bail!(
                        "node {} exited with {status} before ready\n{}",
                        self.id,
                        self.stderr()
                    );
                }
            }
            let client_ok = match self.client_port {
                Some(_) => TcpStream::connect_timeout(&self.bootstrap(), Duration::from_secs(1))
                    .map(|_| ())
                    .map_err(|e| format!("connect: {e}")),
                None => Ok(()),
            };
            match client_ok.and_then(|_| {
                http_status(self.http_port, "/readyz").map_err(|e| format!("/readyz: {e}"))
            }) {
                Ok(200) => return Ok(()),
                Ok(status) => last = format!("/readyz answered {status}"),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "node {} not ready after {timeout:?} ({last})\n{}",
            self.id,
            self.stderr()
        )
    }

    /// SIGTERM, then SIGKILL after 20 s.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            if c.try_wait()?.is_none() {
                signal(&c, "-TERM");
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

    /// SIGSTOP: the process keeps its sockets but answers nothing, like a long GC pause.
    pub fn pause(&self) {
        if let Some(c) = &self.child {
            signal(c, "-STOP");
        }
    }

    /// SIGCONT after [`Self::pause`].
    pub fn resume(&self) {
        if let Some(c) = &self.child {
            signal(c, "-CONT");
        }
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

    /// Kills the node and deletes its data, then formats it again for `cluster_id`:
    /// a replacement disk.
    pub fn wipe(&mut self, cluster_id: &str) -> Result<()> {
        self.kill9()?;
        std::fs::remove_dir_all(self.data_dir())?;
        self.format(cluster_id)
    }

    /// The node's stderr so far (last 30 kB).
    pub fn stderr(&self) -> String {
        let data = std::fs::read(self.stderr_path()).unwrap_or_default();
        let tail = &data[data.len().saturating_sub(30_000)..];
        String::from_utf8_lossy(tail).into_owned()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- node {} stderr ({}) ----\n{}",
                self.id,
                self.dir.path().display(),
                self.stderr()
            );
        }
        let _ = self.kill9();
    }
}

fn signal(child: &Child, which: &str) {
    let _ = Command::new("kill")
        .args([which, &child.id().to_string()])
        .status();
}

/// Runs `broker <args>` to completion and returns its trimmed stdout.
pub(crate) fn cli(args: &[&str]) -> Result<String> {
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
