//! The operator's broker scale-down end to end: the Kubernetes API mocked (support::FakeApi),
//! the broker admin API real, served by 3 controllers + 4 brokers running as local processes
//! (the e2e harness). Lowering `brokers.replicas` from 4 to 3 must drain broker 3 through a
//! removal, lower the StatefulSet only once broker 3 holds no replica, show the drain's
//! progress in status along the way, and unregister broker 3 once its pod is gone, with
//! every record still readable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use e2e::observe::{admin_json, partitions, wait_for};
use e2e::ops::{api_versions, create_topic, fetch, produce, records};
use e2e::{Cluster, ClusterSpec};
use kafka_protocol::records::Compression;
use operator::broker_api::HttpBrokerAdmin;
use operator::reconcile::reconcile;
use serde_json::{json, Value};

use crate::support::{context_with, FakeApi, KC_PATH};

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 8;
const RECORDS_PER_PARTITION: usize = 200;
const LEAVING: i32 = 3;
const TIMEOUT: Duration = Duration::from_secs(180);

fn spec() -> ClusterSpec {
    let mut spec = ClusterSpec::external(&[
        ("broker.session.timeout.ms", "3000"),
        ("broker.heartbeat.interval.ms", "500"),
        ("replica.lag.time.max.ms", "2000"),
    ]);
    spec.brokers = 4;
    spec
}

/// Broker `id` as the real cluster view reports it, or None once it is unregistered.
fn broker_view(cluster: &mut Cluster, id: i32) -> Result<Option<Value>> {
    let view = admin_json(cluster.node(0).http_port, "/admin/v1/cluster", 200)?;
    Ok(view["brokers"]
        .as_array()
        .context("cluster view without brokers")?
        .iter()
        .find(|b| b["id"] == id)
        .cloned())
}

/// The leader of every partition, once each has one, as broker `via` knows it.
fn leaders(cluster: &mut Cluster, via: i32) -> Result<Vec<i32>> {
    let mut found = Vec::new();
    wait_for("every partition led", Duration::from_secs(30), || {
        let mut conn = cluster.node(via).connect()?;
        found = partitions(&mut conn, TOPIC)?
            .iter()
            .map(|p| p.leader)
            .collect();
        Ok(found.len() == PARTITIONS as usize && found.iter().all(|&l| l >= 0))
    })?;
    Ok(found)
}

fn fill(cluster: &mut Cluster) -> Result<()> {
    let mut conn = cluster.node(0).connect()?;
    let v = api_versions(&mut conn)?;
    create_topic(&mut conn, &v, TOPIC, PARTITIONS, 2)?;
    for (p, leader) in leaders(cluster, 0)?.into_iter().enumerate() {
        let mut conn = cluster.node(leader).connect()?;
        let recs = records(RECORDS_PER_PARTITION, 1_700_000_000_000);
        produce(&mut conn, &v, TOPIC, p as i32, &recs, Compression::None)?;
    }
    Ok(())
}

/// Records readable in each partition from its leader, wherever it is now.
fn readable(cluster: &mut Cluster) -> Result<Vec<usize>> {
    let mut counts = Vec::new();
    for (p, leader) in leaders(cluster, 0)?.into_iter().enumerate() {
        let mut conn = cluster.node(leader).connect()?;
        let v = api_versions(&mut conn)?;
        counts.push(fetch(&mut conn, &v, TOPIC, p as i32, 0)?.1.len());
    }
    Ok(counts)
}

fn scale_down(api: &FakeApi) -> Value {
    api.get(KC_PATH).unwrap()["status"]["operation"]["scaleDown"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn shrink_drains_a_real_broker_before_its_pod_goes() -> Result<()> {
    let mut cluster = tokio::task::block_in_place(|| Cluster::start(&spec()))?;
    tokio::task::block_in_place(|| fill(&mut cluster))?;
    let held = tokio::task::block_in_place(|| broker_view(&mut cluster, LEAVING))?
        .context("broker 3 not registered")?["replicas"]
        .as_i64()
        .unwrap_or(0);
    assert!(held > 0, "broker 3 holds no replica to drain");

    let (client, api) = FakeApi::start();
    let admin_url = format!("http://127.0.0.1:{}", cluster.node(0).http_port);
    let ctx = context_with(client, Arc::new(HttpBrokerAdmin::default()), &admin_url);
    api.create_cluster(json!({"image": "broker:1", "brokers": {"replicas": 4}}));
    reconcile(api.cluster(), ctx.clone()).await?;
    api.sync_workloads();
    reconcile(api.cluster(), ctx.clone()).await?;
    api.edit_spec(json!({"brokers": {"replicas": 3}}));

    let started = Instant::now();
    let mut progress_seen = Vec::new();
    let mut pod_stopped = false;
    loop {
        assert!(
            started.elapsed() < TIMEOUT,
            "scale-down not done in {TIMEOUT:?}"
        );
        // An error is what a requeue retries, e.g. unregistering before broker 3 is fenced.
        let _ = reconcile(api.cluster(), ctx.clone()).await;
        let op = scale_down(&api);
        let sts_replicas = api.sts("broker")["spec"]["replicas"].as_i64();
        let leaving = tokio::task::block_in_place(|| broker_view(&mut cluster, LEAVING))?;
        if sts_replicas == Some(3) {
            let replicas = leaving
                .as_ref()
                .map_or(0, |b| b["replicas"].as_i64().unwrap_or(-1));
            assert_eq!(
                replicas, 0,
                "StatefulSet lowered while broker 3 holds replicas"
            );
        } else {
            assert_eq!(
                sts_replicas,
                Some(4),
                "StatefulSet resized before the drain ended"
            );
        }
        if op["phase"] == "Draining" {
            progress_seen.push(
                op["brokers"][0]["partitionsRemaining"]
                    .as_i64()
                    .unwrap_or(-1),
            );
        }
        if op["phase"] == "Shrinking" && !pod_stopped {
            // What Kubernetes does with the lowered StatefulSet: the pod stops and goes.
            tokio::task::block_in_place(|| cluster.node(LEAVING).stop())?;
            api.sync_workloads();
            pod_stopped = true;
        }
        if op.is_null() && pod_stopped {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    assert!(
        progress_seen.iter().any(|&n| n > 0),
        "status never showed partitions left to move: {progress_seen:?}"
    );
    assert!(
        progress_seen.windows(2).all(|w| w[1] <= w[0]),
        "progress went backwards: {progress_seen:?}"
    );
    // Committed when the operator heard back; node 0 applies it a moment later.
    tokio::task::block_in_place(|| {
        wait_for("broker 3 unregistered", Duration::from_secs(10), || {
            Ok(broker_view(&mut cluster, LEAVING)?.is_none())
        })
    })?;
    assert!(api
        .event_reasons()
        .contains(&"ScaleDownFinished".to_string()));
    let counts = tokio::task::block_in_place(|| readable(&mut cluster))?;
    assert_eq!(
        counts,
        vec![RECORDS_PER_PARTITION; PARTITIONS as usize],
        "records per partition"
    );
    Ok(())
}
