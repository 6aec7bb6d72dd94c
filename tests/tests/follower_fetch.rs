//! Fetch from followers (KIP-392) with real processes: 3 controllers + 3
//! brokers in racks rack-0..rack-2 and the rack-aware replica selector. The
//! leader sends a consumer in another replica's rack there, and that follower
//! serves it up to the high watermark it learned from the leader.

use std::time::Duration;

use anyhow::{Context, Result};
use e2e::observe::{in_sync_topic, wait_for};
use e2e::ops::{produce, records, topic};
use e2e::{Cluster, ClusterSpec, KafkaConn};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{BrokerId, FetchRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

const TIMEOUT: Duration = Duration::from_secs(60);
const TOPIC: &str = "nearby";
const BROKERS: [i32; 3] = [0, 1, 2];
const RECORDS: usize = 10;

fn rack(id: i32) -> String {
    format!("rack-{id}")
}

/// One consumer fetch of partition 0 from offset 0, naming `client_rack`.
fn consumer_fetch(conn: &mut KafkaConn, version: i16, client_rack: &str) -> Result<PartitionData> {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_rack_id(StrBytes::from_string(client_rack.to_string()))
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic(TOPIC))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_current_leader_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(1 << 20)])]);
    let answer = conn.send(&request, version)?;
    answer.responses[0]
        .partitions
        .first()
        .cloned()
        .context("partition 0 in the answer")
}

fn record_count(p: &PartitionData) -> Result<usize> {
    let mut bytes = p.records.clone().unwrap_or_default();
    Ok(RecordBatchDecoder::decode_all(&mut bytes)?
        .iter()
        .map(|set| set.records.len())
        .sum())
}

#[test]
fn consumers_are_sent_to_and_served_by_an_in_sync_replica_in_their_rack() -> Result<()> {
    let spec = ClusterSpec::external(&[
        (
            "replica.selector.class",
            "org.apache.kafka.common.replica.RackAwareReplicaSelector",
        ),
        ("replica.lag.time.max.ms", "2000"),
    ]);
    Cluster::start(&spec)?.run(|cluster| {
        // Racks are registered at start: put each broker in its own.
        for id in BROKERS {
            cluster
                .node(id)
                .props
                .insert("broker.rack".into(), rack(id));
            cluster.restart(id, false)?;
        }
        let (p, v) = in_sync_topic(cluster, TOPIC, 3, TIMEOUT)?;
        let leader = p.leader;
        let follower = *p.replicas.iter().find(|&&r| r != leader).unwrap();
        let mut to_leader = cluster.node(leader).connect()?;
        produce(
            &mut to_leader,
            &v,
            TOPIC,
            0,
            &records(RECORDS, 1_700_000_000_000),
            Compression::None,
        )?;

        // In the follower's rack: sent there, with no records.
        let answer = consumer_fetch(&mut to_leader, 12, &rack(follower))?;
        assert_eq!(answer.error_code, 0);
        assert_eq!(answer.preferred_read_replica, BrokerId(follower));
        assert_eq!(record_count(&answer)?, 0);
        // In the leader's rack, or in no replica's: served by the leader.
        for here in [rack(leader), "rack-elsewhere".to_string()] {
            let answer = consumer_fetch(&mut to_leader, 12, &here)?;
            assert_eq!(answer.preferred_read_replica, BrokerId(-1), "{here}");
            assert_eq!(record_count(&answer)?, RECORDS, "{here}");
        }

        // The follower serves it all once it learned the high watermark.
        let mut to_follower = cluster.node(follower).connect()?;
        wait_for("the follower serves every record", TIMEOUT, || {
            let answer = consumer_fetch(&mut to_follower, 12, &rack(follower))?;
            Ok(answer.error_code == 0
                && answer.high_watermark == RECORDS as i64
                && record_count(&answer)? == RECORDS)
        })?;
        // Before v11 consumers read from leaders only.
        let old = consumer_fetch(&mut to_follower, 10, "")?;
        assert_eq!(
            old.error_code,
            ResponseError::NotLeaderOrFollower.code(),
            "a v10 fetch from a follower"
        );
        Ok(())
    })
}
