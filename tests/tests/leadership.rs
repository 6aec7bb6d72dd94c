//! Preferred leaders with real processes (3 controllers + 3 brokers): a
//! partition whose preferred replica stopped and came back is led by it again,
//! through ElectLeaders sent to any broker, or by the controller on its own.

use std::time::Duration;

use anyhow::Result;
use e2e::observe::{first_partition, in_sync_topic, metric, wait_for, PartitionView};
use e2e::ops::topic;
use e2e::{http_send, Cluster, ClusterSpec};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::ElectLeadersRequest;

const TIMEOUT: Duration = Duration::from_secs(60);
const TOPIC: &str = "preferred";

fn spec(extra: &[(&str, &str)]) -> ClusterSpec {
    let mut all = vec![
        ("broker.session.timeout.ms", "3000"),
        ("broker.heartbeat.interval.ms", "500"),
        // Followers rejoin the ISR soon after they catch up.
        ("replica.lag.time.max.ms", "2000"),
    ];
    all.extend_from_slice(extra);
    ClusterSpec::external(&all)
}

fn state(cluster: &mut Cluster, via: i32) -> Result<PartitionView> {
    first_partition(cluster, via, TOPIC)
}

/// Creates the topic, stops its preferred replica (leadership moves away) and
/// brings it back until it is in the ISR again but not leading. Returns
/// (preferred replica, a broker that is not it).
fn preferred_back_in_sync_but_not_leading(cluster: &mut Cluster) -> Result<(i32, i32)> {
    let (p, _) = in_sync_topic(cluster, TOPIC, 3, TIMEOUT)?;
    let preferred = p.replicas[0];
    assert_eq!(
        p.leader, preferred,
        "a new partition is led by its first replica"
    );
    let other = p.replicas[1];

    cluster.node(preferred).stop()?;
    wait_for("leadership moved off the stopped broker", TIMEOUT, || {
        let p = state(cluster, other)?;
        Ok(p.leader >= 0 && p.leader != preferred)
    })?;
    cluster.restart(preferred, false)?;
    wait_for("the preferred replica rejoined the ISR", TIMEOUT, || {
        Ok(state(cluster, other)?.isr.contains(&preferred))
    })?;
    Ok((preferred, other))
}

/// A controller gauge summed over every node: only the active controller
/// reports one, the others report 0.
fn controller_gauge(cluster: &Cluster, name: &str) -> Result<f64> {
    let series = format!("kafka_controller_kafkacontroller_{name}");
    cluster
        .nodes
        .iter()
        .map(|n| metric(n.http_port, &series))
        .sum()
}

fn elect(cluster: &mut Cluster, via: i32, kind: i8, partition: i32) -> Result<i16> {
    let mut conn = cluster.node(via).connect()?;
    let request = ElectLeadersRequest::default()
        .with_election_type(kind)
        .with_timeout_ms(30_000)
        .with_topic_partitions(Some(vec![TopicPartitions::default()
            .with_topic(topic(TOPIC))
            .with_partitions(vec![partition])]));
    let answer = conn.send(&request, 2)?;
    assert_eq!(answer.error_code, 0, "top-level error");
    let result = &answer.replica_election_results[0].partition_result[0];
    assert_eq!(result.partition_id, partition);
    Ok(result.error_code)
}

#[test]
fn elect_leaders_moves_leadership_back_to_the_preferred_replica() -> Result<()> {
    Cluster::start(&spec(&[("auto.leader.rebalance.enable", "false")]))?.run(|cluster| {
        let (preferred, other) = preferred_back_in_sync_but_not_leading(cluster)?;
        // Without balancing it stays where it moved, and the controller counts it.
        std::thread::sleep(Duration::from_secs(2));
        assert_ne!(state(cluster, other)?.leader, preferred);
        assert_eq!(controller_gauge(cluster, "activecontrollercount")?, 1.0);
        assert_eq!(controller_gauge(cluster, "globalpartitioncount")?, 1.0);
        assert_eq!(controller_gauge(cluster, "offlinepartitionscount")?, 0.0);
        assert_eq!(
            controller_gauge(cluster, "preferredreplicaimbalancecount")?,
            1.0
        );

        // Sent to a broker, forwarded to the active controller.
        const PREFERRED: i8 = 0;
        const UNCLEAN: i8 = 1;
        assert_eq!(elect(cluster, other, PREFERRED, 0)?, 0);
        wait_for("the preferred replica leads", TIMEOUT, || {
            Ok(state(cluster, other)?.leader == preferred)
        })?;
        wait_for("the controller counts no imbalance", TIMEOUT, || {
            Ok(controller_gauge(cluster, "preferredreplicaimbalancecount")? == 0.0)
        })?;
        assert_eq!(
            elect(cluster, other, PREFERRED, 0)?,
            ResponseError::ElectionNotNeeded.code()
        );
        assert_eq!(
            elect(cluster, other, UNCLEAN, 0)?,
            ResponseError::ElectionNotNeeded.code()
        );
        assert_eq!(
            elect(cluster, other, PREFERRED, 9)?,
            ResponseError::UnknownTopicOrPartition.code()
        );
        Ok(())
    })
}

#[test]
fn the_controller_balances_leaders_back_on_its_own() -> Result<()> {
    Cluster::start(&spec(&[("leader.imbalance.check.interval.seconds", "1")]))?.run(|cluster| {
        let (preferred, other) = preferred_back_in_sync_but_not_leading(cluster)?;
        wait_for("the controller moved leadership back", TIMEOUT, || {
            Ok(state(cluster, other)?.leader == preferred)
        })
    })
}

/// `POST /admin/v1/brokers/{id}/demote` on another broker: the leader hands its leadership
/// to an in-sync replica before a restart and the answer says none is left; an unknown
/// broker is 404 and a bad id 400.
#[test]
fn demote_moves_leadership_off_a_broker_through_the_admin_api() -> Result<()> {
    Cluster::start(&spec(&[("auto.leader.rebalance.enable", "false")]))?.run(|cluster| {
        let (p, _) = in_sync_topic(cluster, TOPIC, 3, TIMEOUT)?;
        let (leader, via) = (p.leader, p.replicas[1]);
        let http = cluster.node(via).http_port;
        let path = format!("/admin/v1/brokers/{leader}/demote");
        let (status, body) = http_send(http, "POST", &path, "", TIMEOUT)?;
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body)?;
        assert_eq!(answer["brokerId"], leader, "{body}");
        assert_eq!(answer["leadersRemaining"], 0, "{body}");
        let p = state(cluster, via)?;
        assert!(p.leader >= 0 && p.leader != leader, "{p:?}");
        assert_eq!(p.isr.len(), 3, "the ISR is unchanged: {p:?}");

        let (status, body) = http_send(http, "POST", "/admin/v1/brokers/42/demote", "", TIMEOUT)?;
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("UNKNOWN_BROKER"), "{body}");
        let (status, body) = http_send(http, "POST", "/admin/v1/brokers/x/demote", "", TIMEOUT)?;
        assert_eq!(status, 400, "{body}");
        Ok(())
    })
}
