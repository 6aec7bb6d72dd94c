//! Replication with real processes (3 controllers + 3 brokers, RF=3,
//! min.insync.replicas=2): a stopped follower catches up and rejoins the
//! ISR, a wiped one re-replicates everything from the leader, and with two of
//! three brokers gone acks=all is refused while consumers still read.

use std::time::Duration;

use anyhow::Result;
use e2e::observe::{admin_json, first_partition, in_sync_topic, metric, wait_for, PartitionView};
use e2e::ops::{fetch, produce, produce_once, records, Versions};
use e2e::{Cluster, ClusterSpec, KafkaConn};
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::Compression;

const TIMEOUT: Duration = Duration::from_secs(60);
const TOPIC: &str = "replicated";
const BATCH: usize = 5;

fn spec() -> ClusterSpec {
    ClusterSpec::external(&[
        ("broker.session.timeout.ms", "3000"),
        ("broker.heartbeat.interval.ms", "500"),
        ("replica.lag.time.max.ms", "2000"),
        ("min.insync.replicas", "2"),
        // Leadership stays where failures put it: the test follows it.
        ("auto.leader.rebalance.enable", "false"),
    ])
}

fn state(cluster: &mut Cluster, via: i32) -> Result<PartitionView> {
    first_partition(cluster, via, TOPIC)
}

fn replicated_topic(cluster: &mut Cluster) -> Result<(PartitionView, Versions)> {
    in_sync_topic(cluster, TOPIC, 3, TIMEOUT)
}

/// Produces `batches` acknowledged batches with acks=all through `leader`.
fn produce_batches(
    cluster: &mut Cluster,
    v: &Versions,
    leader: i32,
    batches: usize,
    ts: i64,
) -> Result<()> {
    let mut conn = cluster.node(leader).connect()?;
    for i in 0..batches {
        let batch = records(BATCH, ts + (i * BATCH) as i64);
        produce(&mut conn, v, TOPIC, 0, &batch, Compression::None)?;
    }
    Ok(())
}

/// Waits until `replica` has rejoined the ISR and serves (as a follower, to
/// a consumer) exactly `expected` records.
fn holds_everything(
    cluster: &mut Cluster,
    v: &Versions,
    via: i32,
    replica: i32,
    expected: usize,
) -> Result<()> {
    wait_for("the replica rejoined the ISR", TIMEOUT, || {
        Ok(state(cluster, via)?.isr.contains(&replica))
    })?;
    let mut conn: KafkaConn = cluster.node(replica).connect()?;
    wait_for("the replica serves every record", TIMEOUT, || {
        let (hw, got) = fetch(&mut conn, v, TOPIC, 0, 0)?;
        Ok(hw == expected as i64 && got.len() == expected)
    })
}

#[test]
fn stopped_and_wiped_followers_catch_up_and_rejoin_the_isr() -> Result<()> {
    Cluster::start(&spec())?.run(|cluster| {
        let (p, v) = replicated_topic(cluster)?;
        let leader = p.leader;
        let follower = *p.replicas.iter().find(|&&r| r != leader).unwrap();
        produce_batches(cluster, &v, leader, 10, 1_700_000_000_000)?;

        // Stopped: the ISR shrinks, writes go on with two in sync.
        cluster.node(follower).stop()?;
        wait_for("the stopped follower left the ISR", TIMEOUT, || {
            Ok(!state(cluster, leader)?.isr.contains(&follower))
        })?;
        produce_batches(cluster, &v, leader, 10, 1_700_000_100_000)?;
        cluster.restart(follower, false)?;
        holds_everything(cluster, &v, leader, follower, 20 * BATCH)?;

        // Replication traffic counts apart from consumers' (the fetch above was a consumer's).
        let leader_http = cluster.node(leader).http_port;
        let follower_http = cluster.node(follower).http_port;
        let consumed =
            format!("kafka_server_brokertopicmetrics_bytesout_total{{topic=\"{TOPIC}\"}}");
        assert!(
            metric(
                leader_http,
                "kafka_server_brokertopicmetrics_replicationbytesout_total"
            )? > 0.0
        );
        assert!(
            metric(
                follower_http,
                "kafka_server_brokertopicmetrics_replicationbytesin_total"
            )? > 0.0
        );
        assert!(metric(follower_http, &consumed)? > 0.0);

        // Wiped: a new, empty replica fetches the whole log again.
        let cluster_id = cluster.cluster_id.clone();
        cluster.node(follower).wipe(&cluster_id)?;
        produce_batches(cluster, &v, leader, 5, 1_700_000_200_000)?;
        cluster.node(follower).spawn()?;
        cluster.node(follower).wait_ready(TIMEOUT)?;
        holds_everything(cluster, &v, leader, follower, 25 * BATCH)
    })
}

#[test]
fn with_two_of_three_brokers_down_acks_all_is_refused_and_reads_go_on() -> Result<()> {
    Cluster::start(&spec())?.run(|cluster| {
        let (p, v) = replicated_topic(cluster)?;
        let leader = p.leader;
        produce_batches(cluster, &v, leader, 4, 1_700_000_000_000)?;
        // The admin API: with three in sync any one broker may stop.
        let admin = cluster.node(leader).http_port;
        let safety = format!("/admin/v1/brokers/{leader}/restart-safety");
        assert_eq!(admin_json(admin, &safety, 200)?["safe"], true);
        for id in p.replicas.iter().copied().filter(|&r| r != leader) {
            cluster.node(id).kill9()?;
        }
        wait_for("the ISR shrank to the leader", TIMEOUT, || {
            Ok(state(cluster, leader)?.isr == vec![leader])
        })?;
        let verdict = admin_json(admin, &safety, 200)?;
        assert_eq!(
            (&verdict["safe"], &verdict["partitionsAtMinIsr"]),
            (&false.into(), &1.into())
        );
        let view = admin_json(admin, "/admin/v1/cluster", 200)?;
        let brokers = view["brokers"].as_array().unwrap();
        assert_eq!(brokers.len(), 3);
        for b in brokers {
            let running = b["id"] == leader;
            assert_eq!(
                b["state"],
                if running { "running" } else { "fenced" },
                "{b}"
            );
            assert_eq!(b["replicas"], 1, "{b}");
        }
        assert_eq!(view["topics"][0]["replicationFactor"], 3);
        admin_json(admin, "/admin/v1/brokers/77/restart-safety", 404)?;

        let mut conn = cluster.node(leader).connect()?;
        let batch = records(BATCH, 1_700_000_100_000);
        let refused = produce_once(&mut conn, &v, TOPIC, 0, &batch, Compression::None, -1)?;
        assert_eq!(
            refused,
            Err(ResponseError::NotEnoughReplicas.code()),
            "acks=all with one replica in sync, min.insync.replicas=2"
        );
        // Consumers still read everything acknowledged before.
        let (hw, got) = fetch(&mut conn, &v, TOPIC, 0, 0)?;
        assert_eq!((hw, got.len()), (4 * BATCH as i64, 4 * BATCH));
        // acks=1 asks only the leader, which takes it.
        let taken = produce_once(&mut conn, &v, TOPIC, 0, &batch, Compression::None, 1)?;
        assert_eq!(taken, Ok(4 * BATCH as i64));
        Ok(())
    })
}
