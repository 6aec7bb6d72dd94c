//! Replication throttles with real processes: 1 controller and 2 brokers. Broker 0
//! holds 8 MiB in one partition; with `leader.replication.throttled.rate` and
//! `follower.replication.throttled.rate` at 2 MiB/s on the cluster default, removing
//! broker 0 moves the partition to broker 1 at about that rate (an unthrottled move of
//! 8 MiB takes well under a second here), both sides count the throttled bytes, and the
//! removal's progress shows the partition moving and the bytes broker 0 still holds.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use e2e::observe::{admin_json, first_partition, metric, wait_for};
use e2e::ops::{api_versions, create_on, produce, throttle_replication, value_records};
use e2e::{http_send, Cluster, ClusterSpec};
use kafka_protocol::records::Compression;

const TIMEOUT: Duration = Duration::from_secs(60);
const TOPIC: &str = "throttled";
const RATE: u64 = 2 << 20;
/// 8 produces of 64 records of 16 KiB: 8 MiB of record values.
const BATCHES: usize = 8;
const BATCH: usize = 64;
const RECORD: usize = 16 << 10;
const CONTROLLER: i32 = 1000;

fn spec() -> ClusterSpec {
    ClusterSpec {
        controllers: 1,
        brokers: 2,
        ..ClusterSpec::external(&[
            ("broker.session.timeout.ms", "3000"),
            ("broker.heartbeat.interval.ms", "500"),
        ])
    }
}

#[test]
fn a_removal_moves_data_at_the_throttled_rate() -> Result<()> {
    let mut cluster = Cluster::start(&spec())?;
    cluster.run(|cluster| {
        let mut conn = cluster.node(0).connect()?;
        let v = api_versions(&mut conn)?;
        create_on(&mut conn, TOPIC, &[vec![0]])?;
        let records = value_records(BATCH, &[b't'; RECORD]);
        for _ in 0..BATCHES {
            produce(&mut conn, &v, TOPIC, 0, &records, Compression::None)?;
        }
        throttle_replication(&mut conn, RATE)?;
        wait_for("both brokers apply the rates", TIMEOUT, || {
            Ok(metric(
                cluster.node(0).http_port,
                "kafka_server_leaderreplication_throttle_rate_bytes",
            )? == RATE as f64
                && metric(
                    cluster.node(1).http_port,
                    "kafka_server_followerreplication_throttle_rate_bytes",
                )? == RATE as f64)
        })?;

        let http = cluster.node(CONTROLLER).http_port;
        let started = Instant::now();
        let (status, body) = http_send(
            http,
            "PUT",
            "/admin/v1/removals/throttled",
            "{\"brokerIds\":[0]}",
            TIMEOUT,
        )?;
        ensure!(status == 201, "PUT removal: {status} {body}");
        let mut running_bytes = Vec::new();
        let mut moving = false;
        let mut last = serde_json::Value::Null;
        wait_for("the removal completed", TIMEOUT, || {
            last = admin_json(http, "/admin/v1/removals/throttled", 200)?;
            if last["state"] == "running" {
                running_bytes.push(last["bytesRemaining"].as_i64());
                moving |= last["partitions"][0]["state"] == "moving"
                    && last["partitions"][0]["addingReplicas"] == serde_json::json!([1]);
            }
            Ok(last["state"] == "completed")
        })?;
        let took = started.elapsed();
        let moved = (BATCHES * BATCH * RECORD) as f64;
        // Until the partition has moved, broker 0 holds all of it: at least the values.
        ensure!(
            !running_bytes.is_empty()
                && running_bytes
                    .iter()
                    .all(|b| b.is_some_and(|b| b as f64 >= moved)),
            "bytes remaining while running: {running_bytes:?}"
        );
        ensure!(moving, "the partition was never shown moving to broker 1");
        ensure!(
            last["bytesRemaining"] == 0
                && last["brokers"][0]["bytesRemaining"] == 0
                && last["partitions"] == serde_json::json!([]),
            "after: {last}"
        );
        let mib_per_s = moved / took.as_secs_f64() / f64::from(1 << 20);
        println!("moved 8 MiB in {took:?}: {mib_per_s:.2} MiB/s at a 2 MiB/s throttle");
        // Each side may start with one second of burst, so the floor is (8 - 2) / 2 s.
        ensure!(
            took >= Duration::from_millis(2500),
            "8 MiB moved in {took:?}: faster than the throttle allows"
        );
        ensure!(
            took <= Duration::from_secs(16),
            "8 MiB took {took:?}: far slower than the 2 MiB/s throttle"
        );
        let p = first_partition(cluster, 1, TOPIC)?;
        ensure!(p.replicas == [1] && p.leader == 1, "{p:?}");
        let sent = metric(
            cluster.node(0).http_port,
            "kafka_server_leaderreplication_throttled_bytes_total",
        )?;
        let fetched = metric(
            cluster.node(1).http_port,
            "kafka_server_followerreplication_throttled_bytes_total",
        )?;
        ensure!(
            sent >= moved && fetched >= moved,
            "throttled bytes: leader {sent}, follower {fetched}"
        );
        Ok(())
    })
}
