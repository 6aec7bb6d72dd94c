//! Partition reassignment (KIP-455) with real processes: AlterPartitionReassignments
//! and ListPartitionReassignments sent to a broker, which forwards them to the
//! active controller. A move from brokers {0, 1} to {1, 2} catches broker 2 up,
//! completes, drops broker 0's copy from its disk and keeps every record; a
//! move to a paused broker stays in flight until cancelled.

use std::time::Duration;

use anyhow::{ensure, Result};
use e2e::observe::{first_partition, metric, wait_for};
use e2e::ops::{api_versions, create_on, fetch, produce, records, topic, Versions};
use e2e::{Cluster, ClusterSpec, KafkaConn};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::list_partition_reassignments_response::OngoingPartitionReassignment;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest,
};
use kafka_protocol::records::{Compression, Record};

const TIMEOUT: Duration = Duration::from_secs(30);
const TOPIC: &str = "moving";
const BATCHES: usize = 20;
const BATCH: usize = 50;
const CONTROLLERS: [i32; 3] = [1000, 1001, 1002];

fn spec() -> ClusterSpec {
    ClusterSpec::external(&[
        ("broker.session.timeout.ms", "3000"),
        ("broker.heartbeat.interval.ms", "500"),
        ("replica.lag.time.max.ms", "2000"),
        // Leadership moves only where the reassignment moves it.
        ("auto.leader.rebalance.enable", "false"),
    ])
}

/// AlterPartitionReassignments v0 for (topic, partition, target): each
/// partition's error code, in request order.
fn alter(conn: &mut KafkaConn, moves: &[(&str, i32, Option<&[i32]>)]) -> Result<Vec<i16>> {
    let topics = moves
        .iter()
        .map(|(name, partition, target)| {
            ReassignableTopic::default()
                .with_name(topic(name))
                .with_partitions(vec![ReassignablePartition::default()
                    .with_partition_index(*partition)
                    .with_replicas(
                        target.map(|t| t.iter().copied().map(BrokerId).collect()),
                    )])
        })
        .collect();
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(topics);
    let response = conn.send(&request, 0)?;
    ensure!(response.error_code == 0, "top level: {response:?}");
    Ok(response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.error_code)
        .collect())
}

/// ListPartitionReassignments v0 of partition 0 of the topic.
fn list(conn: &mut KafkaConn) -> Result<Vec<OngoingPartitionReassignment>> {
    let request = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(Some(vec![ListPartitionReassignmentsTopics::default()
            .with_name(topic(TOPIC))
            .with_partition_indexes(vec![0])]));
    let response = conn.send(&request, 0)?;
    ensure!(response.error_code == 0, "top level: {response:?}");
    Ok(response
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .collect())
}

fn ids(list: &[BrokerId]) -> Vec<i32> {
    list.iter().map(|b| b.0).collect()
}

fn sorted(mut ids: Vec<i32>) -> Vec<i32> {
    ids.sort_unstable();
    ids
}

/// The partitions in flight, as the active controller's gauge counts them.
fn reassigning(cluster: &mut Cluster) -> Result<f64> {
    let mut total = 0.0;
    for id in CONTROLLERS {
        total += metric(
            cluster.node(id).http_port,
            "kafka_controller_reassigning_partitions",
        )?;
    }
    Ok(total)
}

/// The topic on replicas [0, 1], both in sync, with records written to its leader.
/// Returns a connection to broker `via`, its API versions, the leader and the records.
fn topic_with_data(
    cluster: &mut Cluster,
    via: i32,
) -> Result<(KafkaConn, Versions, i32, Vec<Record>)> {
    let mut conn = cluster.node(via).connect()?;
    let v = api_versions(&mut conn)?;
    create_on(&mut conn, TOPIC, &[vec![0, 1]])?;
    wait_for("both replicas in the ISR", TIMEOUT, || {
        Ok(first_partition(cluster, via, TOPIC)?.isr.len() == 2)
    })?;
    let leader = first_partition(cluster, via, TOPIC)?.leader;
    let sent = produce_all(&mut cluster.node(leader).connect()?, &v)?;
    Ok((conn, v, leader, sent))
}

/// Moves the partition to brokers [1, 2] and waits until the move has completed.
fn move_to_1_and_2(cluster: &mut Cluster, conn: &mut KafkaConn) -> Result<()> {
    let codes = alter(conn, &[(TOPIC, 0, Some(&[1, 2]))])?;
    ensure!(codes == [0], "{codes:?}");
    wait_for("the move completed", TIMEOUT, || {
        let p = first_partition(cluster, 1, TOPIC)?;
        Ok(p.replicas == [1, 2] && sorted(p.isr) == [1, 2])
    })
}

fn produce_all(conn: &mut KafkaConn, v: &Versions) -> Result<Vec<Record>> {
    let mut sent = Vec::new();
    for i in 0..BATCHES {
        let batch = records(BATCH, 1_700_000_000_000 + (i * BATCH) as i64);
        produce(conn, v, TOPIC, 0, &batch, Compression::None)?;
        sent.extend(batch);
    }
    Ok(sent)
}

/// Every record `replica` serves, read from offset 0 on.
fn read_all(cluster: &mut Cluster, v: &Versions, replica: i32) -> Result<Vec<Record>> {
    let mut conn = cluster.node(replica).connect()?;
    let mut got: Vec<Record> = Vec::new();
    loop {
        let (hw, batch) = fetch(&mut conn, v, TOPIC, 0, got.len() as i64)?;
        ensure!(!batch.is_empty() || got.len() as i64 >= hw, "no progress");
        got.extend(batch);
        if got.len() as i64 >= hw {
            return Ok(got);
        }
    }
}

#[test]
fn a_move_catches_up_completes_drops_the_old_copy_and_a_stalled_one_can_be_cancelled() -> Result<()>
{
    Cluster::start(&spec())?.run(|cluster| {
        let (mut conn, v, leader, sent) = topic_with_data(cluster, 0)?;
        // Broker 0, the first replica, leads: the move must take leadership away.
        ensure!(leader == 0, "leader {leader}");
        let old_copy = cluster.node(0).data_dir().join(format!("{TOPIC}-0"));
        ensure!(old_copy.exists(), "broker 0 holds the partition");

        // Errors, each for its own partition; nothing changes.
        let codes = alter(
            &mut conn,
            &[
                (TOPIC, 0, Some(&[1, 9])),
                (TOPIC, 0, None),
                ("no-such-topic", 0, Some(&[1, 2])),
            ],
        )?;
        // The same partition twice in one request: the second is refused as such.
        ensure!(
            codes
                == [
                    ResponseError::InvalidReplicaAssignment.code(),
                    ResponseError::InvalidRequest.code(),
                    ResponseError::UnknownTopicOrPartition.code(),
                ],
            "{codes:?}"
        );
        let codes = alter(&mut conn, &[(TOPIC, 0, Some(&[2, 2]))])?;
        ensure!(codes == [ResponseError::InvalidReplicaAssignment.code()]);
        let codes = alter(&mut conn, &[(TOPIC, 0, None)])?;
        ensure!(codes == [ResponseError::NoReassignmentInProgress.code()]);
        ensure!(list(&mut conn)?.is_empty());

        // Broker 2 paused: it cannot catch up, so the move stays in flight.
        cluster.node(2).pause();
        let codes = alter(&mut conn, &[(TOPIC, 0, Some(&[1, 2]))])?;
        ensure!(codes == [0], "{codes:?}");
        let ongoing = list(&mut conn)?;
        ensure!(ongoing.len() == 1, "{ongoing:?}");
        ensure!(ids(&ongoing[0].replicas) == [1, 2, 0], "{ongoing:?}");
        ensure!(ids(&ongoing[0].adding_replicas) == [2], "{ongoing:?}");
        ensure!(ids(&ongoing[0].removing_replicas) == [0], "{ongoing:?}");
        wait_for("the gauge counts the move", TIMEOUT, || {
            Ok(reassigning(cluster)? == 1.0)
        })?;
        let codes = alter(&mut conn, &[(TOPIC, 0, None)])?;
        ensure!(codes == [0], "{codes:?}");
        ensure!(list(&mut conn)?.is_empty());
        wait_for("broker 1 sees the original replicas again", TIMEOUT, || {
            let p = first_partition(cluster, 1, TOPIC)?;
            Ok(sorted(p.replicas) == [0, 1] && p.leader == leader)
        })?;
        wait_for("the gauge is back to 0", TIMEOUT, || {
            Ok(reassigning(cluster)? == 0.0)
        })?;
        cluster.node(2).resume();

        // The real move: broker 2 catches up and joins, broker 0 leaves.
        move_to_1_and_2(cluster, &mut conn)?;
        ensure!(list(&mut conn)?.is_empty());
        let p = first_partition(cluster, 1, TOPIC)?;
        ensure!(
            p.leader == 1,
            "leadership went to the first target replica: {p:?}"
        );
        wait_for("broker 0 deleted its copy", TIMEOUT, || {
            Ok(!old_copy.exists())
        })?;
        wait_for("the gauge is back to 0", TIMEOUT, || {
            Ok(reassigning(cluster)? == 0.0)
        })?;
        for replica in [1, 2] {
            wait_for("the replica serves every record", TIMEOUT, || {
                Ok(read_all(cluster, &v, replica)?.len() == sent.len())
            })?;
            let got = read_all(cluster, &v, replica)?;
            for (i, (s, g)) in sent.iter().zip(&got).enumerate() {
                ensure!(g.offset == i as i64 && g.value == s.value, "record {i}");
            }
        }
        Ok(())
    })
}

#[test]
fn a_copy_left_on_a_stopped_broker_is_deleted_when_it_restarts() -> Result<()> {
    Cluster::start(&spec())?.run(|cluster| {
        let (mut conn, v, _, sent) = topic_with_data(cluster, 1)?;
        let old_copy = cluster.node(0).data_dir().join(format!("{TOPIC}-0"));

        // Broker 0 is down while the move completes, so its copy stays on disk.
        cluster.node(0).stop()?;
        move_to_1_and_2(cluster, &mut conn)?;
        ensure!(old_copy.exists());

        cluster.restart(0, false)?;
        wait_for("broker 0 deleted the leftover copy", TIMEOUT, || {
            Ok(!old_copy.exists())
        })?;
        let p = first_partition(cluster, 0, TOPIC)?;
        ensure!(p.replicas == [1, 2], "{p:?}");
        wait_for("broker 2 serves every record", TIMEOUT, || {
            Ok(read_all(cluster, &v, 2)?.len() == sent.len())
        })
    })
}
