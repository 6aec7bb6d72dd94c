//! Broker removal through the admin HTTP API with real processes: 3 controllers
//! and 4 brokers. A removal that would leave a topic short is refused and writes
//! nothing; one of broker 3 completes although the active controller is
//! SIGKILLed right after it starts, with every record still readable; broker
//! 3 is then unregistered once stopped. A cancelled removal un-excludes.

use std::time::Duration;

use anyhow::{Context, Result};
use e2e::observe::{admin_json, metric, partitions, wait_for};
use e2e::ops::{api_versions, create_topic, fetch, produce, records};
use e2e::{http_request, http_send, Cluster, ClusterSpec};
use kafka_protocol::records::Compression;

const TIMEOUT: Duration = Duration::from_secs(90);
const LEAVING: i32 = 3;
const RECORDS: usize = 50;
const CONTROLLERS: [i32; 3] = [1000, 1001, 1002];

fn spec() -> ClusterSpec {
    let mut spec = ClusterSpec::external(&[
        ("broker.session.timeout.ms", "3000"),
        ("broker.heartbeat.interval.ms", "500"),
        ("replica.lag.time.max.ms", "2000"),
    ]);
    spec.brokers = 4;
    spec
}

fn put_removal(
    cluster: &mut Cluster,
    via: i32,
    id: &str,
    brokers: &[i32],
) -> Result<(u16, serde_json::Value)> {
    let body = format!("{{\"brokerIds\":{brokers:?}}}");
    let path = format!("/admin/v1/removals/{id}");
    let (status, text) = http_send(cluster.node(via).http_port, "PUT", &path, &body, TIMEOUT)?;
    Ok((
        status,
        serde_json::from_str(&text).with_context(|| text.clone())?,
    ))
}

fn removal_state(cluster: &mut Cluster, via: i32, id: &str) -> Result<String> {
    let r = admin_json(
        cluster.node(via).http_port,
        &format!("/admin/v1/removals/{id}"),
        200,
    )?;
    Ok(r["state"].as_str().unwrap_or_default().to_string())
}

/// Broker `id` in the cluster view of node `via`, if registered.
fn broker(cluster: &mut Cluster, via: i32, id: i32) -> Result<Option<serde_json::Value>> {
    let view = admin_json(cluster.node(via).http_port, "/admin/v1/cluster", 200)?;
    Ok(view["brokers"]
        .as_array()
        .context("brokers")?
        .iter()
        .find(|b| b["id"] == id)
        .cloned())
}

/// Creates `name` and writes RECORDS records to each partition through its leader.
fn topic_with_data(cluster: &mut Cluster, name: &str, count: i32, rf: i16) -> Result<()> {
    let mut conn = cluster.node(0).connect()?;
    let v = api_versions(&mut conn)?;
    create_topic(&mut conn, &v, name, count, rf)?;
    for (p, leader) in leaders(cluster, name, count)?.into_iter().enumerate() {
        let mut conn = cluster.node(leader).connect()?;
        produce(
            &mut conn,
            &v,
            name,
            p as i32,
            &records(RECORDS, 0),
            Compression::None,
        )?;
    }
    Ok(())
}

fn leaders(cluster: &mut Cluster, name: &str, count: i32) -> Result<Vec<i32>> {
    let mut found = Vec::new();
    wait_for("every partition led", TIMEOUT, || {
        let mut conn = cluster.node(0).connect()?;
        found = partitions(&mut conn, name)?
            .iter()
            .map(|p| p.leader)
            .collect();
        Ok(found.len() == count as usize && found.iter().all(|l| *l >= 0))
    })?;
    Ok(found)
}

fn readable(cluster: &mut Cluster, name: &str, count: i32) -> Result<Vec<usize>> {
    let mut counts = Vec::new();
    for (p, leader) in leaders(cluster, name, count)?.into_iter().enumerate() {
        let mut conn = cluster.node(leader).connect()?;
        let v = api_versions(&mut conn)?;
        counts.push(fetch(&mut conn, &v, name, p as i32, 0)?.1.len());
    }
    Ok(counts)
}

fn quorum_leader(cluster: &mut Cluster) -> Result<i32> {
    let view = admin_json(cluster.node(0).http_port, "/admin/v1/quorum", 200)?;
    Ok(view["leaderId"].as_i64().context("leaderId")? as i32)
}

#[test]
fn a_removal_drains_a_broker_across_a_controller_failover_then_it_is_unregistered() -> Result<()> {
    let mut cluster = Cluster::start(&spec())?;
    cluster.run(|cluster| {
        topic_with_data(cluster, "wide", 3, 3)?;
        topic_with_data(cluster, "data", 8, 2)?;
        let held = broker(cluster, 0, LEAVING)?.context("broker 3")?["replicas"].as_i64();
        assert!(held > Some(0), "broker 3 holds nothing to move: {held:?}");

        // Two of four brokers leaving would leave `wide` (3 replicas) short.
        let (status, body) = put_removal(cluster, 0, "too-many", &[2, LEAVING])?;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["code"], "REPLICATION_FACTOR_UNSATISFIABLE");
        assert!(
            body["error"].as_str().unwrap_or_default().contains("wide"),
            "{body}"
        );
        assert_eq!(
            broker(cluster, 0, 2)?.context("broker 2")?["excluded"],
            false
        );
        let (status, _) = http_request(
            cluster.node(0).http_port,
            "GET",
            "/admin/v1/removals/too-many",
            TIMEOUT,
        )?;
        assert_eq!(status, 404, "a refused removal leaves nothing behind");
        let (status, body) = put_removal(cluster, 0, "ghost", &[42])?;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("UNKNOWN_BROKER")),
            "{body}"
        );

        let (status, body) = put_removal(cluster, 0, "drain-3", &[LEAVING])?;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["state"], "running");
        assert_eq!(
            broker(cluster, 0, LEAVING)?.context("broker 3")?["excluded"],
            true
        );
        let (status, _) = put_removal(cluster, 0, "drain-3", &[LEAVING])?;
        assert_eq!(status, 200, "the same removal again");
        let (status, body) = put_removal(cluster, 1, "other", &[2])?;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("REMOVAL_CONFLICT")),
            "{body}"
        );

        let active = quorum_leader(cluster)?;
        cluster.node(active).kill9()?;
        wait_for(
            "the removal completed under the new controller",
            TIMEOUT,
            || Ok(removal_state(cluster, 1, "drain-3")? == "completed"),
        )?;
        let done = admin_json(cluster.node(1).http_port, "/admin/v1/removals/drain-3", 200)?;
        assert_eq!(done["partitionsRemaining"], 0, "{done}");
        assert_eq!(
            broker(cluster, 1, LEAVING)?.context("broker 3")?["replicas"],
            0
        );
        assert_eq!(readable(cluster, "data", 8)?, vec![RECORDS; 8]);
        assert_eq!(readable(cluster, "wide", 3)?, vec![RECORDS; 3]);

        // Unregistered only once stopped, then gone for good.
        let unregister = |cluster: &mut Cluster| {
            http_request(
                cluster.node(0).http_port,
                "DELETE",
                "/admin/v1/brokers/3",
                TIMEOUT,
            )
        };
        assert_eq!(unregister(cluster)?.0, 409, "still running");
        cluster.node(LEAVING).stop()?;
        wait_for("broker 3 fenced", TIMEOUT, || {
            Ok(broker(cluster, 0, LEAVING)?.is_some_and(|b| b["state"] != "running"))
        })?;
        wait_for("broker 3 unregistered", TIMEOUT, || {
            Ok(unregister(cluster)?.0 == 204)
        })?;
        assert_eq!(unregister(cluster)?.0, 404);
        wait_for("broker 3 gone from every view", TIMEOUT, || {
            Ok(broker(cluster, 2, LEAVING)?.is_none())
        })?;
        Ok(())
    })
}

#[test]
fn a_cancelled_removal_lifts_the_exclusion_and_leaves_no_move_behind() -> Result<()> {
    let mut cluster = Cluster::start(&spec())?;
    cluster.run(|cluster| {
        topic_with_data(cluster, "data", 12, 2)?;
        let (status, body) = put_removal(cluster, 0, "changed-mind", &[LEAVING])?;
        assert_eq!(status, 201, "{body}");
        let path = "/admin/v1/removals/changed-mind";
        // Through the node that answered the PUT: it has applied the removal.
        let (status, text) = http_request(cluster.node(0).http_port, "DELETE", path, TIMEOUT)?;
        assert_eq!(status, 200, "{text}");
        let body: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(body["state"], "cancelled");
        assert_eq!(
            broker(cluster, 0, LEAVING)?.context("broker 3")?["excluded"],
            false
        );
        let (status, _) = http_request(cluster.node(0).http_port, "DELETE", path, TIMEOUT)?;
        assert_eq!(status, 200, "cancelling again changes nothing");
        // The duty starts no move for a cancelled removal, and the cancel took back the rest.
        std::thread::sleep(Duration::from_secs(1));
        wait_for("no reassignment left in flight", TIMEOUT, || {
            let mut moving = 0.0;
            for id in CONTROLLERS {
                moving += metric(
                    cluster.node(id).http_port,
                    "kafka_controller_reassigning_partitions",
                )?;
            }
            Ok(moving == 0.0)
        })?;
        assert_eq!(readable(cluster, "data", 12)?, vec![RECORDS; 12]);
        let (status, _) = http_request(
            cluster.node(0).http_port,
            "DELETE",
            "/admin/v1/removals/nope",
            TIMEOUT,
        )?;
        assert_eq!(status, 404);
        Ok(())
    })
}
