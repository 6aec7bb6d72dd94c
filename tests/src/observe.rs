//! What a test watches a cluster for: partition state as a broker's Metadata
//! reports it, and waiting until a condition holds.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::MetadataRequest;

use crate::ops::{api_versions, create_topic, topic, Versions};
use crate::{http_get, Cluster, KafkaConn};

/// One partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// The partitions of `name`, by partition index, as the broker behind `conn` knows them.
pub fn partitions(conn: &mut KafkaConn, name: &str) -> Result<Vec<PartitionView>> {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic(name)))
        ]))
        .with_allow_auto_topic_creation(false);
    let answer = conn.send(&request, 12)?;
    let t = answer.topics.first().context("topic in metadata")?;
    let mut found: Vec<_> = t
        .partitions
        .iter()
        .map(|p| {
            let ids = |v: &[kafka_protocol::messages::BrokerId]| v.iter().map(|b| b.0).collect();
            (
                p.partition_index,
                PartitionView {
                    leader: p.leader_id.0,
                    replicas: ids(&p.replica_nodes),
                    isr: ids(&p.isr_nodes),
                },
            )
        })
        .collect();
    found.sort_unstable_by_key(|(index, _)| *index);
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Partition 0 of `name`, as node `via` knows it.
pub fn first_partition(cluster: &mut Cluster, via: i32, name: &str) -> Result<PartitionView> {
    let mut conn = cluster.node(via).connect()?;
    partitions(&mut conn, name)?
        .into_iter()
        .next()
        .context("partition 0")
}

/// Creates `name` with one partition and `replicas` replicas through broker 0,
/// and waits until they are all in the ISR; returns the partition and the
/// versions broker 0 speaks.
pub fn in_sync_topic(
    cluster: &mut Cluster,
    name: &str,
    replicas: usize,
    timeout: Duration,
) -> Result<(PartitionView, Versions)> {
    let mut conn = cluster.node(0).connect()?;
    let v = api_versions(&mut conn)?;
    create_topic(&mut conn, &v, name, 1, replicas as i16)?;
    wait_for("every replica in the ISR", timeout, || {
        let p = first_partition(cluster, 0, name)?;
        Ok(p.leader >= 0 && p.isr.len() == replicas)
    })?;
    Ok((first_partition(cluster, 0, name)?, v))
}

/// Polls `check` until it is true (an error counts as not yet), for up to `timeout`.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if check().unwrap_or(false) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out waiting: {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the sample `series` (a metric name with its labels as
/// Prometheus prints them, e.g. `name{topic="t"}`) on the node's `/metrics`.
pub fn metric(http_port: u16, series: &str) -> Result<f64> {
    let (_, body) = http_get(http_port, "/metrics")?;
    body.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
        .with_context(|| format!("no sample {series} on /metrics"))
}

/// `GET path` of the admin API on the node's admin port, as JSON; fails on a
/// status other than `status`.
pub fn admin_json(http_port: u16, path: &str, status: u16) -> Result<serde_json::Value> {
    let (got, body) = http_get(http_port, path)?;
    if got != status {
        bail!("GET {path}: {got}, expected {status}: {body}");
    }
    Ok(serde_json::from_str(&body)?)
}
