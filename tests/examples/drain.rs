//! Draining a broker: how long a removal takes to move N GiB off one broker, and what the
//! move costs other producers (acks=all latency, p50 and p99, before and during the move).
//! `DRAIN_THROTTLE_MIB` (MiB/s, default 0: none) sets `leader.replication.throttled.rate`
//! and `follower.replication.throttled.rate` on the cluster default before the removal.
//!
//! ```sh
//! cargo build --release -p broker
//! cargo run --release -p e2e --example drain
//! DRAIN_THROTTLE_MIB=64 cargo run --release -p e2e --example drain
//! ```
//!
//! 3 controllers + 4 brokers. Topic `drain` has `DRAIN_PARTITIONS` (8) partitions of 2
//! replicas, every one led by broker 3, filled with `DRAIN_MIB` (1024) MiB; topic `probe`
//! (3 partitions, 2 replicas on brokers 0-2) takes one 1 KiB acks=all batch every
//! `DRAIN_PROBE_MS` (20) ms the whole time. Then `PUT /admin/v1/removals/drain {"brokerIds":[3]}` and the time until it reports
//! `completed`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use e2e::bench::{fmt_bytes, fmt_secs, use_release_binary_by_default, Table};
use e2e::observe::{admin_json, partitions, wait_for};
use e2e::ops::{
    api_versions, create_on, produce, produce_once, throttle_replication, value_records, Versions,
};
use e2e::{http_send, Cluster, ClusterSpec, KafkaConn};
use kafka_protocol::records::Compression;

const LEAVING: i32 = 3;
const REMOVAL: &str = "drain";
/// Records of the fill: 16 KiB each, 64 to a batch (1 MiB per produce).
const FILL_RECORD: usize = 16 << 10;
const FILL_BATCH: usize = 64;
const BASELINE: Duration = Duration::from_secs(20);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Params {
    mib: u64,
    partitions: i32,
    probe_every: Duration,
    /// Replication throttle, MiB/s; 0 is none.
    throttle_mib: u64,
}

fn main() -> Result<()> {
    use_release_binary_by_default();
    let p = Params {
        mib: env_or("DRAIN_MIB", 1024),
        partitions: env_or("DRAIN_PARTITIONS", 8),
        probe_every: Duration::from_millis(env_or("DRAIN_PROBE_MS", 20)),
        throttle_mib: env_or("DRAIN_THROTTLE_MIB", 0),
    };
    let throttle = match p.throttle_mib {
        0 => "unthrottled".to_string(),
        mib => format!("throttled at {mib} MiB/s"),
    };
    println!(
        "drain: {} MiB on broker {LEAVING} in {} partitions, {throttle}, binary {}",
        p.mib,
        p.partitions,
        e2e::broker_bin().display()
    );
    let mut spec = ClusterSpec::external(&[
        ("broker.session.timeout.ms", "6000"),
        ("auto.leader.rebalance.enable", "false"),
    ]);
    spec.brokers = 4;
    let mut cluster = Cluster::start(&spec)?;
    let mut table = Table::default();
    let outcome = run(&mut cluster, &p, &mut table);
    table.print();
    if outcome.is_err() {
        for node in &cluster.nodes {
            eprintln!("---- node {} stderr ----\n{}", node.id, node.stderr());
        }
    }
    outcome
}

fn run(cluster: &mut Cluster, p: &Params, table: &mut Table) -> Result<()> {
    let mut conn = cluster.node(0).connect()?;
    let v = api_versions(&mut conn)?;
    let drain: Vec<Vec<i32>> = (0..p.partitions).map(|i| vec![LEAVING, i % 3]).collect();
    create_on(&mut conn, "drain", &drain)?;
    create_on(&mut conn, "probe", &[vec![0, 1], vec![1, 2], vec![2, 0]])?;
    let filled = Instant::now();
    fill(cluster, &v, p)?;
    table.row(
        &format!("fill: {} MiB acks=all into broker {LEAVING}", p.mib),
        fmt_secs(filled.elapsed()),
    );

    let probe = Probe::start(cluster, &v, p.probe_every)?;
    std::thread::sleep(BASELINE);
    let before = probe.take();

    if p.throttle_mib > 0 {
        throttle_replication(&mut conn, p.throttle_mib << 20)?;
        table.row(
            "replication throttle (both sides)",
            format!("{} MiB/s", p.throttle_mib),
        );
    }
    let http = cluster.node(0).http_port;
    let started = Instant::now();
    let body = format!("{{\"brokerIds\":[{LEAVING}]}}");
    let (status, answer) = http_send(
        http,
        "PUT",
        &format!("/admin/v1/removals/{REMOVAL}"),
        &body,
        Duration::from_secs(15),
    )?;
    ensure!(status == 201, "PUT removal: {status} {answer}");
    let mut progress = Vec::new();
    wait_for("the removal completed", Duration::from_secs(3600), || {
        let r = admin_json(http, &format!("/admin/v1/removals/{REMOVAL}"), 200)?;
        progress.push((
            started.elapsed(),
            r["bytesRemaining"].as_i64().unwrap_or(-1),
        ));
        if r["state"] == "failed" {
            bail!("removal failed: {}", r["error"]);
        }
        Ok(r["state"] == "completed")
    })?;
    let took = started.elapsed();
    let during = probe.stop();

    let moved = p.mib << 20;
    table.row("drain: removal started to completed", fmt_secs(took));
    table.row(
        "drain: effective move rate",
        format!(
            "{}/s",
            fmt_bytes((moved as f64 / took.as_secs_f64()) as u64)
        ),
    );
    for (what, lat) in [("before the move", &before), ("during the move", &during)] {
        table.row(
            &format!(
                "probe acks=all latency {what}: p50 / p99 / max ({} batches)",
                lat.len()
            ),
            percentiles(lat),
        );
    }
    let view = admin_json(http, "/admin/v1/cluster", 200)?;
    let left = view["brokers"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["id"] == LEAVING))
        .map_or_else(|| "unregistered".to_string(), |b| b["replicas"].to_string());
    table.row("broker 3 replicas after the drain", left);
    Ok(())
}

/// p50 / p99 / max of `latencies` in ms.
fn percentiles(latencies: &[Duration]) -> String {
    if latencies.is_empty() {
        return "no samples".into();
    }
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{:.1} / {:.1} / {:.1} ms",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(*sorted.last().unwrap())
    )
}

fn fill(cluster: &mut Cluster, v: &Versions, p: &Params) -> Result<()> {
    let mut leader = cluster.node(LEAVING).connect()?;
    let batches = (p.mib << 20) as usize / (FILL_RECORD * FILL_BATCH);
    let recs = value_records(FILL_BATCH, &[b'x'; FILL_RECORD]);
    for b in 0..batches {
        let partition = (b % p.partitions as usize) as i32;
        produce(&mut leader, v, "drain", partition, &recs, Compression::None)?;
    }
    Ok(())
}

/// One acks=all 1 KiB batch to the `probe` topic's leaders every `every`, on its own
/// thread, keeping each answer's latency.
struct Probe {
    latencies: Arc<Mutex<Vec<Duration>>>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<()>>,
}

impl Probe {
    fn start(cluster: &mut Cluster, v: &Versions, every: Duration) -> Result<Probe> {
        let mut via = cluster.node(0).connect()?;
        let leaders: Vec<i32> = partitions(&mut via, "probe")?
            .iter()
            .map(|p| p.leader)
            .collect();
        ensure!(
            leaders.iter().all(|&l| l >= 0),
            "probe partitions not led: {leaders:?}"
        );
        let mut conns: Vec<KafkaConn> = leaders
            .iter()
            .map(|&l| cluster.node(l).connect())
            .collect::<Result<_>>()?;
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (v, lat, halt) = (v.clone(), latencies.clone(), stop.clone());
        let thread = std::thread::spawn(move || -> Result<()> {
            let recs = value_records(1, &[b'p'; 1024]);
            let mut next = Instant::now();
            let mut i = 0usize;
            while !halt.load(Ordering::Relaxed) {
                let partition = i % conns.len();
                let sent = Instant::now();
                let answer = produce_once(
                    &mut conns[partition],
                    &v,
                    "probe",
                    partition as i32,
                    &recs,
                    Compression::None,
                    -1,
                )?;
                answer
                    .map_err(|e| anyhow::anyhow!("probe produce error {e}"))
                    .context("the probe's leaders do not move in this benchmark")?;
                lat.lock().unwrap().push(sent.elapsed());
                i += 1;
                next += every;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            Ok(())
        });
        Ok(Probe {
            latencies,
            stop,
            thread,
        })
    }

    /// The latencies so far, leaving the probe running with an empty list.
    fn take(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.latencies.lock().unwrap())
    }

    fn stop(self) -> Vec<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        let outcome = self.thread.join();
        let latencies = std::mem::take(&mut *self.latencies.lock().unwrap());
        match outcome {
            Ok(Ok(())) => latencies,
            Ok(Err(e)) => panic!("probe failed: {e:#}"),
            Err(_) => panic!("probe thread panicked"),
        }
    }
}
