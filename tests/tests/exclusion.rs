//! Broker exclusion with real processes (3 controllers + 3 brokers): set and
//! lifted through any node's admin API, seen by every node, honoured by
//! placement and preferred elections, and kept across a controller failover.

use std::time::Duration;

use anyhow::{Context, Result};
use e2e::observe::{admin_json, partitions, wait_for, PartitionView};
use e2e::ops::{api_versions, create_topic, topic};
use e2e::{http_request, Cluster, ClusterSpec};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::ElectLeadersRequest;

const TIMEOUT: Duration = Duration::from_secs(30);
const CONTROLLERS: [i32; 3] = [1000, 1001, 1002];
const EXCLUDED: i32 = 2;

fn spec() -> ClusterSpec {
    ClusterSpec::external(&[
        ("broker.session.timeout.ms", "3000"),
        ("broker.heartbeat.interval.ms", "500"),
    ])
}

/// `method` on the exclusion of `broker` through node `via`: status and body.
fn exclusion(cluster: &mut Cluster, via: i32, method: &str, broker: &str) -> Result<(u16, String)> {
    let port = cluster.node(via).http_port;
    http_request(
        port,
        method,
        &format!("/admin/v1/brokers/{broker}/exclusion"),
        TIMEOUT,
    )
}

/// The excluded broker ids in node `via`'s cluster view.
fn excluded_seen_by(cluster: &mut Cluster, via: i32) -> Result<Vec<i64>> {
    let view = admin_json(cluster.node(via).http_port, "/admin/v1/cluster", 200)?;
    let brokers = view["brokers"].as_array().context("brokers")?;
    Ok(brokers
        .iter()
        .filter(|b| b["excluded"] == true)
        .filter_map(|b| b["id"].as_i64())
        .collect())
}

/// Waits until every running node's cluster view excludes exactly `expected`.
fn every_node_shows(cluster: &mut Cluster, running: &[i32], expected: &[i64]) -> Result<()> {
    for &via in running {
        wait_for(
            &format!("node {via} shows {expected:?} excluded"),
            TIMEOUT,
            || Ok(excluded_seen_by(cluster, via)? == expected),
        )?;
    }
    Ok(())
}

/// `kafka_controller_excluded_brokers` summed over the running nodes: only
/// the active controller reports it.
fn excluded_gauge(cluster: &Cluster, running: &[i32]) -> Result<f64> {
    cluster
        .nodes
        .iter()
        .filter(|n| running.contains(&n.id))
        .map(|n| e2e::observe::metric(n.http_port, "kafka_controller_excluded_brokers"))
        .sum()
}

fn topic_partitions(cluster: &mut Cluster, name: &str) -> Result<Vec<PartitionView>> {
    let mut conn = cluster.node(0).connect()?;
    partitions(&mut conn, name)
}

/// Creates `name` through broker 0 and returns its replica lists once
/// Metadata lists every partition.
fn create(cluster: &mut Cluster, name: &str, count: i32, rf: i16) -> Result<Vec<Vec<i32>>> {
    let mut conn = cluster.node(0).connect()?;
    let v = api_versions(&mut conn)?;
    create_topic(&mut conn, &v, name, count, rf)?;
    wait_for(&format!("{name} is led everywhere"), TIMEOUT, || {
        let p = topic_partitions(cluster, name)?;
        Ok(p.len() == count as usize && p.iter().all(|p| p.leader >= 0))
    })?;
    Ok(topic_partitions(cluster, name)?
        .into_iter()
        .map(|p| p.replicas)
        .collect())
}

fn elect_preferred(cluster: &mut Cluster, name: &str, partition: i32) -> Result<i16> {
    let mut conn = cluster.node(1).connect()?;
    let request = ElectLeadersRequest::default()
        .with_election_type(0)
        .with_timeout_ms(30_000)
        .with_topic_partitions(Some(vec![TopicPartitions::default()
            .with_topic(topic(name))
            .with_partitions(vec![partition])]));
    let answer = conn.send(&request, 2)?;
    Ok(answer.replica_election_results[0].partition_result[0].error_code)
}

fn quorum_leader(cluster: &mut Cluster, via: i32) -> Result<i32> {
    let view = admin_json(cluster.node(via).http_port, "/admin/v1/quorum", 200)?;
    Ok(view["leaderId"].as_i64().context("leaderId")? as i32)
}

#[test]
fn an_excluded_broker_gets_no_new_replicas_or_leaderships_and_survives_failover() -> Result<()> {
    let mut cluster = Cluster::start(&spec())?;
    cluster.run(|cluster| {
        let mut running: Vec<i32> = CONTROLLERS.iter().copied().chain(0..3).collect();
        // Made before the exclusion: broker 2 is the first replica of one partition.
        let before = create(cluster, "before", 3, 3)?;
        let led_by_2 = before
            .iter()
            .position(|r| r[0] == EXCLUDED)
            .context("a partition preferring broker 2")? as i32;
        wait_for("every replica of `before` is in sync", TIMEOUT, || {
            Ok(topic_partitions(cluster, "before")?
                .iter()
                .all(|p| p.isr.len() == 3))
        })?;

        // Excluded through a broker-only node; repeating it is harmless.
        for _ in 0..2 {
            let (status, body) = exclusion(cluster, 0, "PUT", "2")?;
            assert_eq!(status, 204, "{body}");
        }
        every_node_shows(cluster, &running, &[2])?;
        wait_for("the gauge counts one exclusion", TIMEOUT, || {
            Ok(excluded_gauge(cluster, &running)? == 1.0)
        })?;

        let after = create(cluster, "after", 6, 2)?;
        assert!(
            after.iter().all(|r| r.len() == 2 && !r.contains(&EXCLUDED)),
            "{after:?}"
        );

        // A preferred election hands the partition to the next replica in sync.
        assert_eq!(
            topic_partitions(cluster, "before")?[led_by_2 as usize].leader,
            EXCLUDED
        );
        assert_eq!(elect_preferred(cluster, "before", led_by_2)?, 0);
        wait_for("leadership left the excluded broker", TIMEOUT, || {
            let p = &topic_partitions(cluster, "before")?[led_by_2 as usize];
            Ok(p.leader == p.replicas[1])
        })?;

        // The active controller dies; the next one keeps the exclusion.
        let leader = quorum_leader(cluster, 0)?;
        cluster.node(leader).kill9()?;
        running.retain(|id| *id != leader);
        wait_for("a new active controller", TIMEOUT, || {
            Ok(quorum_leader(cluster, 0)? != leader)
        })?;
        every_node_shows(cluster, &running, &[2])?;
        wait_for(
            "the new active controller counts the exclusion",
            TIMEOUT,
            || Ok(excluded_gauge(cluster, &running)? == 1.0),
        )?;
        let after_failover = create(cluster, "after-failover", 6, 2)?;
        assert!(
            after_failover.iter().all(|r| !r.contains(&EXCLUDED)),
            "{after_failover:?}"
        );
        // The new controller's balancing leaves the partition where it is.
        assert_ne!(
            topic_partitions(cluster, "before")?[led_by_2 as usize].leader,
            EXCLUDED
        );

        // Lifted through a standby controller; repeating it is harmless.
        let standby = quorum_leader(cluster, 0)?;
        let standby = *running
            .iter()
            .find(|id| CONTROLLERS.contains(id) && **id != standby)
            .context("a standby controller")?;
        for _ in 0..2 {
            let (status, body) = exclusion(cluster, standby, "DELETE", "2")?;
            assert_eq!(status, 204, "{body}");
        }
        every_node_shows(cluster, &running, &[])?;
        let lifted = create(cluster, "lifted", 6, 2)?;
        assert!(lifted.iter().any(|r| r.contains(&EXCLUDED)), "{lifted:?}");

        // Unknown and malformed broker ids.
        let (status, body) = exclusion(cluster, 1, "PUT", "9")?;
        assert_eq!(status, 404, "{body}");
        let error: serde_json::Value = serde_json::from_str(&body)?;
        assert_eq!(error["code"], "UNKNOWN_BROKER");
        assert!(
            error["error"].as_str().is_some_and(|e| e.contains('9')),
            "{body}"
        );
        let (status, body) = exclusion(cluster, 1, "PUT", "two")?;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body)?["code"],
            "INVALID_BROKER_ID"
        );
        every_node_shows(cluster, &running, &[])?;
        Ok(())
    })
}
