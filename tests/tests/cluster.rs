//! KRaft with real processes: 3 controller-only nodes and 3 broker-only nodes
//! (external mode, as the operator deploys them). Failover of the active
//! controller (SIGKILL and graceful), fencing of a dead broker, and a wiped
//! controller rejoining from a snapshot.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use e2e::observe::{admin_json, partitions, wait_for};
use e2e::ops::{api_versions, create_topic, fetch, produce, records, Versions};
use e2e::{Cluster, ClusterSpec, KafkaConn};
use kafka_protocol::messages::{DescribeQuorumRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

const CONTROLLERS: [i32; 3] = [1000, 1001, 1002];
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);

fn spec() -> ClusterSpec {
    ClusterSpec::external(&[
        // Fence a dead broker quickly, and snapshot often so a wiped
        // controller has a snapshot to start from.
        ("broker.session.timeout.ms", "3000"),
        ("broker.heartbeat.interval.ms", "500"),
        ("metadata.log.max.record.bytes.between.snapshots", "500"),
    ])
}

/// (leader, epoch) as a running controller reports it, if one knows a leader.
fn quorum_leader(cluster: &Cluster, exclude: &[i32]) -> Option<(i32, i32)> {
    for node in cluster.nodes.iter().filter(|n| !exclude.contains(&n.id)) {
        let Some(port) = node.controller_port else {
            continue;
        };
        let Ok(mut conn) = KafkaConn::connect(([127, 0, 0, 1], port).into()) else {
            continue;
        };
        let Ok(answer) = conn.send(
            &DescribeQuorumRequest::default().with_topics(vec![
                kafka_protocol::messages::describe_quorum_request::TopicData::default()
                    .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
                    .with_partitions(vec![Default::default()]),
            ]),
            1,
        ) else {
            continue;
        };
        let Some(p) = answer.topics.first().and_then(|t| t.partitions.first()) else {
            continue;
        };
        // A standby answers NOT_LEADER_OR_FOLLOWER but still names the leader it follows.
        if p.leader_id.0 >= 0 {
            return Some((p.leader_id.0, p.leader_epoch));
        }
    }
    None
}

/// The leader every running controller agrees on.
fn settled_leader(cluster: &Cluster) -> Result<(i32, i32)> {
    let mut agreed = None;
    wait_for(
        "the controllers agree on a leader",
        FAILOVER_TIMEOUT,
        || {
            let views: Vec<_> = CONTROLLERS
                .iter()
                .map(|&id| quorum_leader(cluster, &others(id)))
                .collect();
            agreed = views[0].filter(|first| views.iter().all(|v| *v == Some(*first)));
            Ok(agreed.is_some())
        },
    )?;
    agreed.context("a settled leader")
}

/// Every controller but `id`, to ask `id` alone.
fn others(id: i32) -> Vec<i32> {
    CONTROLLERS.iter().copied().filter(|&c| c != id).collect()
}

/// Waits for a leader other than `old` in an epoch after `old_epoch`; returns it and how long it took.
fn await_new_leader(cluster: &Cluster, old: i32, old_epoch: i32) -> Result<(i32, Duration)> {
    let started = Instant::now();
    while started.elapsed() < FAILOVER_TIMEOUT {
        if let Some((leader, epoch)) = quorum_leader(cluster, &[old]) {
            if leader != old && epoch > old_epoch {
                return Ok((leader, started.elapsed()));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("no new quorum leader within {FAILOVER_TIMEOUT:?}")
}

/// `GET /admin/v1/quorum` on node `via`: (leader, epoch, caught-up voters).
fn quorum_view(cluster: &mut Cluster, via: i32) -> Result<(i32, i64, Vec<i64>)> {
    let view = admin_json(cluster.node(via).http_port, "/admin/v1/quorum", 200)?;
    let voters = view["voters"].as_array().context("voters")?;
    let mut ids: Vec<i64> = voters.iter().filter_map(|v| v["id"].as_i64()).collect();
    ids.sort();
    assert_eq!(ids, [1000, 1001, 1002], "{view}");
    let caught_up = voters
        .iter()
        .filter(|v| v["caughtUp"] == true)
        .filter_map(|v| v["id"].as_i64())
        .collect();
    let leader = view["leaderId"].as_i64().context("leaderId")?;
    Ok((
        leader as i32,
        view["epoch"].as_i64().context("epoch")?,
        caught_up,
    ))
}

/// The leader of each partition of `topic`, as broker `via` knows it.
fn leaders(cluster: &mut Cluster, via: i32, topic: &str) -> Result<Vec<i32>> {
    let mut conn = cluster.node(via).connect()?;
    Ok(partitions(&mut conn, topic)?
        .into_iter()
        .map(|p| p.leader)
        .collect())
}

/// Produces a batch to partition 0 of `topic` through its leader and reads it back.
fn round_trip(cluster: &mut Cluster, topic: &str, via: i32) -> Result<()> {
    // A broker learns of a new topic one metadata fetch after it is committed.
    let mut leader = -1;
    wait_for("partition 0 has a leader", Duration::from_secs(30), || {
        leader = leaders(cluster, via, topic)?.first().copied().unwrap_or(-1);
        Ok(leader >= 0)
    })?;
    let mut conn = cluster.node(leader).connect()?;
    let v: Versions = api_versions(&mut conn)?;
    let sent = records(5, 1_700_000_000_000);
    let base = produce(&mut conn, &v, topic, 0, &sent, Compression::None)?;
    let (_, got) = fetch(&mut conn, &v, topic, 0, base)?;
    assert!(got.len() >= sent.len(), "read back what was produced");
    Ok(())
}

#[test]
fn external_mode_fails_over_fences_and_rejoins() -> Result<()> {
    Cluster::start(&spec())?.run(fail_over_fence_and_rejoin)
}

fn fail_over_fence_and_rejoin(cluster: &mut Cluster) -> Result<()> {
    let (leader, epoch) = quorum_leader(cluster, &[]).context("a quorum leader")?;
    assert!(CONTROLLERS.contains(&leader));
    // The admin API's quorum view is the same from the leader, a standby
    // (which asks the leader) and a broker-only node.
    let standby = *CONTROLLERS.iter().find(|&&c| c != leader).unwrap();
    wait_for("every voter is caught up", FAILOVER_TIMEOUT, || {
        Ok(quorum_view(cluster, leader)?.2.len() == 3)
    })?;
    for via in [leader, standby, 0] {
        let (seen, seen_epoch, _) = quorum_view(cluster, via)?;
        assert_eq!((seen, seen_epoch), (leader, i64::from(epoch)), "via {via}");
    }

    // Metadata changes reach the controller through any broker.
    let mut conn = cluster.node(0).connect()?;
    let v = api_versions(&mut conn)?;
    create_topic(&mut conn, &v, "before", 3, 3)?;
    round_trip(cluster, "before", 1)?;

    // SIGKILL of the active controller: a voter takes over after the fetch timeout.
    cluster.node(leader).kill9()?;
    let (_, killed_after) = await_new_leader(cluster, leader, epoch)?;
    println!("failover after SIGKILL of the active controller: {killed_after:?}");
    // The dead voter falls out of "caught up" once the fetch timeout passes.
    wait_for(
        "the killed voter is reported behind",
        FAILOVER_TIMEOUT,
        || {
            let (_, _, caught_up) = quorum_view(cluster, 1)?;
            Ok(!caught_up.contains(&i64::from(leader)) && caught_up.len() == 2)
        },
    )?;
    create_topic(&mut conn, &v, "after-kill", 2, 3)?;
    round_trip(cluster, "before", 2)?;
    cluster.restart(leader, false)?;

    // Graceful stop: the leader resigns and a successor is elected at once.
    let (current, epoch) = settled_leader(cluster)?;
    let stopping = Instant::now();
    cluster.node(current).stop()?;
    await_new_leader(cluster, current, epoch)?;
    let stopped_after = stopping.elapsed();
    println!("failover after graceful shutdown of the active controller: {stopped_after:?}");
    create_topic(&mut conn, &v, "after-stop", 1, 3)?;
    cluster.restart(current, false)?;

    // A broker that stops heartbeating is fenced and its leaderships move.
    let victim = 2;
    cluster.node(victim).kill9()?;
    wait_for(
        "leaderships moved off the dead broker",
        Duration::from_secs(30),
        || {
            let now = leaders(cluster, 0, "before")?;
            Ok(now.iter().all(|&l| l != victim && l >= 0))
        },
    )?;
    round_trip(cluster, "before", 0)?;
    // It returns, is unfenced (ready means unfenced), and serves again.
    cluster.restart(victim, false)?;

    // A controller that lost its disk rejoins from the leader's snapshot.
    let (leader, _) = quorum_leader(cluster, &[]).context("a quorum leader")?;
    let follower = *CONTROLLERS.iter().find(|&&c| c != leader).unwrap();
    let cluster_id = cluster.cluster_id.clone();
    cluster.node(follower).wipe(&cluster_id)?;
    cluster.node(follower).spawn()?;
    cluster.node(follower).wait_ready(Duration::from_secs(60))?;
    let snapshots = std::fs::read_dir(
        cluster
            .node(follower)
            .data_dir()
            .join("__cluster_metadata-0"),
    )?
    .filter_map(|e| e.ok())
    .filter(|e| e.file_name().to_string_lossy().ends_with(".checkpoint"))
    .count();
    assert!(snapshots > 0, "the wiped controller installed a snapshot");
    create_topic(&mut conn, &v, "after-wipe", 1, 3)?;

    assert!(
        killed_after < Duration::from_secs(5) && stopped_after < Duration::from_secs(5),
        "failover took {killed_after:?} (kill) / {stopped_after:?} (graceful)"
    );
    Ok(())
}

#[test]
fn combined_nodes_form_a_quorum_and_serve_clients() -> Result<()> {
    Cluster::start(&ClusterSpec {
        combined: 3,
        ..ClusterSpec::default()
    })?
    .run(serve_and_fail_over_combined)
}

fn serve_and_fail_over_combined(cluster: &mut Cluster) -> Result<()> {
    let (leader, epoch) = quorum_leader(cluster, &[]).context("a quorum leader")?;
    let via = (leader + 1) % 3;
    let mut conn = cluster.node(via).connect()?;
    let v = api_versions(&mut conn)?;
    create_topic(&mut conn, &v, "combined", 3, 3)?;
    round_trip(cluster, "combined", via)?;

    // The node leading the quorum goes down: the other two elect a leader and keep serving.
    cluster.node(leader).kill9()?;
    let (_, after) = await_new_leader(cluster, leader, epoch)?;
    println!("combined mode failover after SIGKILL: {after:?}");
    wait_for(
        "leaderships moved off the dead node",
        Duration::from_secs(30),
        || {
            Ok(leaders(cluster, via, "combined")?
                .iter()
                .all(|&l| l != leader && l >= 0))
        },
    )?;
    round_trip(cluster, "combined", via)?;
    cluster.restart(leader, true)?;
    Ok(())
}
