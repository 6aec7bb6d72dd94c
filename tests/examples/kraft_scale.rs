//! KRaft at scale: 3 controllers + 3 brokers, 10,000 partitions, then the figures that
//! matter for running it: how long creation takes, the active controller's memory, snapshot
//! and metadata log sizes, and how long a restarted broker takes to be ready and serving.
//!
//! ```sh
//! cargo build --release -p broker
//! cargo run --release -p e2e --example kraft_scale
//! ```
//!
//! Environment: `KRAFT_SCALE_TOPICS` (100) x `KRAFT_SCALE_PARTITIONS` (100) partitions of
//! `KRAFT_SCALE_RF` (3) replicas; `KRAFT_SCALE_SNAPSHOT_BYTES` (256 KiB) is the cluster's
//! `metadata.log.max.record.bytes.between.snapshots`, low enough that creating the
//! partitions (about 730 KiB of records) writes a snapshot. `KRAFT_SCALE_LOGS=DIR` copies
//! every node's log there at the end. `BROKER_BIN` picks the binary (default: the release
//! build when this runs as a release build, as the figures are meant to be).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use e2e::bench::{fmt_bytes, fmt_secs, use_release_binary_by_default, Table};
use e2e::{http_status, Cluster, ClusterSpec, KafkaConn, NodeProcess};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{
    CreateTopicsRequest, DescribeQuorumRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

const CONTROLLERS: [i32; 3] = [1000, 1001, 1002];
const BROKERS: [i32; 3] = [0, 1, 2];
/// Topics per CreateTopics request: big requests, as a provisioning script would send.
const TOPICS_PER_REQUEST: usize = 10;
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a restarted broker may take to rejoin every ISR before the run moves on.
const ISR_TIMEOUT: Duration = Duration::from_secs(120);

struct Params {
    topics: usize,
    partitions: i32,
    rf: i16,
    snapshot_bytes: u64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<()> {
    use_release_binary_by_default();
    let p = Params {
        topics: env_or("KRAFT_SCALE_TOPICS", 100),
        partitions: env_or("KRAFT_SCALE_PARTITIONS", 100),
        rf: env_or("KRAFT_SCALE_RF", 3),
        snapshot_bytes: env_or("KRAFT_SCALE_SNAPSHOT_BYTES", 256 << 10),
    };
    let total = p.topics * p.partitions as usize;
    println!(
        "kraft_scale: {} topics x {} partitions = {total} partitions, RF={}, binary {}",
        p.topics,
        p.partitions,
        p.rf,
        e2e::broker_bin().display()
    );
    let started = Instant::now();
    let mut cluster = Cluster::start(&ClusterSpec {
        controllers: 3,
        brokers: 3,
        combined: 0,
        extra: vec![(
            "metadata.log.max.record.bytes.between.snapshots".into(),
            p.snapshot_bytes.to_string(),
        )],
    })?;
    println!("cluster ready in {:.1?}", started.elapsed());
    let mut table = Table::default();
    let outcome = run(&mut cluster, &p, total, &mut table);
    table.print();
    if outcome.is_err() {
        for node in &cluster.nodes {
            eprintln!("---- node {} stderr ----\n{}", node.id, node.stderr());
        }
    }
    if let Some(dir) = std::env::var_os("KRAFT_SCALE_LOGS") {
        std::fs::create_dir_all(&dir)?;
        for node in &cluster.nodes {
            let to = Path::new(&dir).join(format!("node-{}.stderr", node.id));
            std::fs::copy(node.stderr_path(), to)?;
        }
    }
    outcome
}

fn run(cluster: &mut Cluster, p: &Params, total: usize, table: &mut Table) -> Result<()> {
    // 1. Create the partitions through broker 0 (forwarded to the active controller).
    let created = Instant::now();
    create_all(cluster, p)?;
    let acked = created.elapsed();
    table.row("create: all CreateTopics answered", fmt_secs(acked));
    for &b in &BROKERS {
        wait_metadata_complete(cluster.node(b), p.topics, total, READY_TIMEOUT)?;
    }
    table.row(
        "create: every broker's Metadata has every leader",
        fmt_secs(created.elapsed()),
    );
    // Each broker hosts total * rf / 3 replicas; it creates their logs after it applies them.
    let per_broker = total * p.rf as usize / BROKERS.len();
    for &b in &BROKERS {
        let dir = cluster.node(b).data_dir();
        wait_for(READY_TIMEOUT, || Ok(partition_dirs(&dir) >= per_broker))
            .with_context(|| format!("node {b}: {} of {per_broker} logs", partition_dirs(&dir)))?;
    }
    table.row(
        &format!("create: every broker created its {per_broker} logs"),
        fmt_secs(created.elapsed()),
    );

    // 2. Memory and disk, once the brokers have settled (fetchers started, logs created).
    std::thread::sleep(Duration::from_secs(5));
    let active = active_controller(cluster).context("no active controller")?;
    for id in CONTROLLERS.iter().chain(BROKERS.iter()) {
        let node = cluster.node(*id);
        let role = if *id == active {
            "controller (active)"
        } else if CONTROLLERS.contains(id) {
            "controller"
        } else {
            "broker"
        };
        let snap = snapshots(&node.data_dir());
        table.row(
            &format!("node {id} {role}: RSS"),
            node.pid()
                .and_then(rss_kib)
                .map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
        );
        table.row(
            &format!("node {id}: latest snapshot ({} on disk)", snap.count),
            match &snap.latest {
                Some((name, bytes)) => format!("{} ({name})", fmt_bytes(*bytes)),
                None => "none".into(),
            },
        );
        table.row(
            &format!("node {id}: metadata log segments"),
            fmt_bytes(metadata_log_bytes(&node.data_dir())),
        );
        if !CONTROLLERS.contains(id) {
            table.row(&format!("node {id}: open fds"), open_fds(node.pid()));
        }
    }

    // 3. Restart a broker that is not the target of anything special, with SIGTERM then SIGKILL.
    let victim = BROKERS[2];
    for hard in [false, true] {
        restart_timed(cluster, victim, hard, p.topics, total, table)?;
    }
    Ok(())
}

fn create_all(cluster: &mut Cluster, p: &Params) -> Result<()> {
    let mut conn = cluster.node(BROKERS[0]).connect()?;
    let names: Vec<String> = (0..p.topics).map(|i| format!("scale-{i:04}")).collect();
    for chunk in names.chunks(TOPICS_PER_REQUEST) {
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(120_000)
            .with_topics(
                chunk
                    .iter()
                    .map(|n| {
                        CreatableTopic::default()
                            .with_name(topic_name(n))
                            .with_num_partitions(p.partitions)
                            .with_replication_factor(p.rf)
                    })
                    .collect(),
            );
        let t = Instant::now();
        let resp = conn.send(&req, 7)?;
        for topic in &resp.topics {
            if topic.error_code != 0 {
                bail!(
                    "CreateTopics {}: error {} {:?}",
                    topic.name.0,
                    topic.error_code,
                    topic.error_message
                );
            }
        }
        eprintln!(
            "  created {} .. {} in {:.0?}",
            chunk[0],
            chunk[chunk.len() - 1],
            t.elapsed()
        );
    }
    Ok(())
}

/// Stops `id` (SIGTERM or SIGKILL), starts it, and records how long each step took.
fn restart_timed(
    cluster: &mut Cluster,
    id: i32,
    hard: bool,
    topics: usize,
    total: usize,
    table: &mut Table,
) -> Result<()> {
    let how = if hard { "kill -9" } else { "SIGTERM" };
    let node = cluster.node(id);
    let stopping = Instant::now();
    if hard {
        node.kill9()?;
    } else {
        node.stop()?;
        table.row(
            &format!("restart ({how}) node {id}: exit after SIGTERM"),
            fmt_secs(stopping.elapsed()),
        );
    }
    let started = Instant::now();
    node.spawn()?;
    let pid = node.pid();
    let port = node.http_port;
    let mut first_http = None;
    loop {
        match http_status(port, "/readyz") {
            Ok(200) => break,
            Ok(_) => {
                first_http.get_or_insert(started.elapsed());
            }
            Err(_) => {}
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!("node {id} not ready {READY_TIMEOUT:?} after restart");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready = started.elapsed();
    if let Some(t) = first_http {
        table.row(
            &format!("restart ({how}) node {id}: admin HTTP answers"),
            fmt_secs(t),
        );
    }
    table.row(
        &format!("restart ({how}) node {id}: /readyz 200"),
        fmt_secs(ready),
    );
    wait_metadata_complete(cluster.node(id), topics, total, READY_TIMEOUT)?;
    table.row(
        &format!("restart ({how}) node {id}: its Metadata has all {total} partitions"),
        fmt_secs(started.elapsed()),
    );
    // Unfenced: the other brokers list it again (Metadata lists unfenced brokers only).
    let other = BROKERS.iter().copied().find(|&b| b != id).unwrap();
    wait_for(READY_TIMEOUT, || {
        let md = metadata_of(cluster.node(other))?;
        Ok(md.brokers.iter().any(|b| b.node_id.0 == id))
    })
    .with_context(|| format!("node {id} never listed as unfenced"))?;
    table.row(
        &format!("restart ({how}) node {id}: unfenced (listed by node {other})"),
        fmt_secs(started.elapsed()),
    );
    // And it is back in the ISR of all its partitions (it caught up as a follower).
    let isr_back = wait_for(ISR_TIMEOUT, || {
        let md = metadata_of(cluster.node(other))?;
        Ok(md
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .filter(|p| p.replica_nodes.iter().any(|r| r.0 == id))
            .all(|p| p.isr_nodes.iter().any(|r| r.0 == id)))
    });
    table.row(
        &format!("restart ({how}) node {id}: back in every ISR"),
        match isr_back {
            Ok(()) => fmt_secs(started.elapsed()),
            Err(_) => format!("not within {ISR_TIMEOUT:?}"),
        },
    );
    table.row(
        &format!("restart ({how}) node {id}: brokers fenced by session timeout so far"),
        count_in_log(cluster, "fencing broker: its session timed out").to_string(),
    );
    table.row(
        &format!("restart ({how}) node {id}: RSS after"),
        pid.and_then(rss_kib)
            .map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
    );
    Ok(())
}

/// Lines containing `needle` in every controller's log (the active one logs fencing).
fn count_in_log(cluster: &Cluster, needle: &str) -> usize {
    cluster
        .nodes
        .iter()
        .filter(|n| CONTROLLERS.contains(&n.id))
        .map(|n| {
            std::fs::read_to_string(n.stderr_path())
                .unwrap_or_default()
                .matches(needle)
                .count()
        })
        .sum()
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// All topics, as `node` sees them (a fresh connection: a restarted node drops old ones).
fn metadata_of(node: &NodeProcess) -> Result<MetadataResponse> {
    let mut conn = node.connect()?;
    conn.send(
        &MetadataRequest::default()
            .with_topics(None)
            .with_allow_auto_topic_creation(false),
        12,
    )
}

/// Waits until `node` answers Metadata with every scale topic and every partition led.
fn wait_metadata_complete(
    node: &NodeProcess,
    topics: usize,
    total: usize,
    timeout: Duration,
) -> Result<()> {
    let mut last = String::new();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match metadata_of(node) {
            Ok(md) => {
                let scale: Vec<_> = md
                    .topics
                    .iter()
                    .filter(|t| {
                        t.name
                            .as_ref()
                            .is_some_and(|n| n.0.as_str().starts_with("scale-"))
                    })
                    .collect();
                let led = scale
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .filter(|p| p.error_code == 0 && p.leader_id.0 >= 0)
                    .count();
                if scale.len() == topics && led == total {
                    return Ok(());
                }
                last = format!("{} topics, {led} partitions with a leader", scale.len());
            }
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "node {}: Metadata incomplete after {timeout:?}: {last}",
        node.id
    )
}

fn wait_for(timeout: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().unwrap_or(false) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("timed out after {timeout:?}")
}

/// The quorum leader as the first answering controller reports it.
fn active_controller(cluster: &Cluster) -> Option<i32> {
    cluster.nodes.iter().find_map(|node| {
        let port = node.controller_port?;
        let mut conn = KafkaConn::connect(([127, 0, 0, 1], port).into()).ok()?;
        let answer = conn
            .send(
                &DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
                    .with_topic_name(topic_name("__cluster_metadata"))
                    .with_partitions(vec![PartitionData::default()])]),
                1,
            )
            .ok()?;
        let leader = answer.topics.first()?.partitions.first()?.leader_id.0;
        (leader >= 0).then_some(leader)
    })
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn open_fds(pid: Option<u32>) -> String {
    pid.and_then(|pid| std::fs::read_dir(format!("/proc/{pid}/fd")).ok())
        .map_or("?".into(), |d| d.count().to_string())
}

struct Snapshots {
    count: usize,
    latest: Option<(String, u64)>,
}

/// The `.checkpoint` files of the metadata partition; the latest is the one of highest offset.
fn snapshots(data_dir: &Path) -> Snapshots {
    let mut files: BTreeMap<String, u64> = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir(data_dir.join("__cluster_metadata-0")) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".checkpoint") {
                files.insert(name, e.metadata().map_or(0, |m| m.len()));
            }
        }
    }
    Snapshots {
        count: files.len(),
        // Names start with the zero-padded end offset, so the last in order is the newest.
        latest: files.into_iter().next_back(),
    }
}

/// Partition directories of the scale topics under a broker's log dir.
fn partition_dirs(data_dir: &Path) -> usize {
    std::fs::read_dir(data_dir).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("scale-"))
            .count()
    })
}

fn metadata_log_bytes(data_dir: &Path) -> u64 {
    std::fs::read_dir(data_dir.join("__cluster_metadata-0"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum()
        })
        .unwrap_or(0)
}
