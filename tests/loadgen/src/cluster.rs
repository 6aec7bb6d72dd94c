//! Cluster discovery: ApiVersions, Metadata (partition leaders), CreateTopics, ListOffsets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use kafka_protocol::error::ParseResponseErrorCode;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, ListOffsetsRequest,
    MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::conn::Connection;
use crate::versions::Versions;

const UNSUPPORTED_VERSION: i16 = 35;
const TOPIC_ALREADY_EXISTS: i16 = 36;

/// A readable name for a Kafka error code, e.g. `NOT_LEADER_OR_FOLLOWER (6)`.
pub fn error_name(code: i16) -> String {
    match code.err() {
        None => "NONE (0)".into(),
        Some(e) => format!("{e:?} ({code})"),
    }
}

pub fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// The leader of each partition of one topic, and where to reach the leaders.
#[derive(Debug, Clone)]
pub struct TopicLayout {
    pub topic_id: Uuid,
    /// partition -> leader node id
    pub leaders: BTreeMap<i32, i32>,
    /// node id -> host:port
    pub brokers: BTreeMap<i32, String>,
}

impl TopicLayout {
    /// Reads the layout of `topic` from a Metadata response; `None` while the topic
    /// or any leader is not there yet.
    pub fn from_metadata(resp: &MetadataResponse, topic: &str) -> Result<Option<Self>> {
        let brokers: BTreeMap<i32, String> = resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        let Some(t) = resp
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        else {
            return Ok(None);
        };
        match t.error_code {
            0 => {}
            // Not created yet, or leaders still being elected: worth waiting for.
            3 | 5 => return Ok(None),
            code => bail!("metadata for topic '{topic}': {}", error_name(code)),
        }
        let mut leaders = BTreeMap::new();
        for p in &t.partitions {
            if p.error_code != 0 || p.leader_id.0 < 0 || !brokers.contains_key(&p.leader_id.0) {
                return Ok(None);
            }
            leaders.insert(p.partition_index, p.leader_id.0);
        }
        if leaders.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self {
            topic_id: t.topic_id,
            leaders,
            brokers,
        }))
    }

    /// Partitions grouped by leader node.
    pub fn by_leader(&self, partitions: &[i32]) -> BTreeMap<i32, Vec<i32>> {
        let mut out: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in partitions {
            if let Some(&leader) = self.leaders.get(p) {
                out.entry(leader).or_default().push(*p);
            }
        }
        out
    }

    pub fn broker_addr(&self, node: i32) -> Result<&str> {
        self.brokers
            .get(&node)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("metadata names leader {node} but not its address"))
    }
}

/// ApiVersions, falling back to v0 when the broker does not know v3.
pub async fn api_versions(conn: &mut Connection) -> Result<Versions> {
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("loadgen"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
    let resp: Result<ApiVersionsResponse> = conn.call(&req, 3).await;
    let resp = match resp {
        Ok(r) if r.error_code == 0 => r,
        Ok(r) if r.error_code == UNSUPPORTED_VERSION => conn.call(&req, 0).await?,
        Ok(r) => bail!("ApiVersions: {}", error_name(r.error_code)),
        // A broker that does not speak v3 answers in v0 format, which fails to decode.
        Err(_) => conn.call(&ApiVersionsRequest::default(), 0).await?,
    };
    if resp.error_code != 0 {
        bail!("ApiVersions: {}", error_name(resp.error_code));
    }
    Ok(Versions::from_response(&resp))
}

pub async fn metadata(
    conn: &mut Connection,
    versions: &Versions,
    topic: &str,
) -> Result<MetadataResponse> {
    let v = versions.pick(ApiKey::Metadata, 1, 12)?;
    let mut t = MetadataRequestTopic::default();
    t.name = Some(topic_name(topic));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = false;
    conn.call(&req, v).await.context("Metadata request")
}

/// Polls Metadata until every partition of `topic` has a reachable leader.
pub async fn wait_for_layout(
    conn: &mut Connection,
    versions: &Versions,
    topic: &str,
    timeout: Duration,
) -> Result<TopicLayout> {
    let until = Instant::now() + timeout;
    loop {
        let resp = metadata(conn, versions, topic).await?;
        if let Some(layout) = TopicLayout::from_metadata(&resp, topic)? {
            return Ok(layout);
        }
        if Instant::now() >= until {
            bail!("topic '{topic}' has no leader for every partition after {timeout:?} (does it exist? use --create)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates the topic; an existing topic is not an error.
pub async fn create_topic(
    conn: &mut Connection,
    versions: &Versions,
    topic: &str,
    partitions: i32,
    replication_factor: i16,
) -> Result<()> {
    let v = versions.pick(ApiKey::CreateTopics, 2, 7)?;
    // -1 (broker default) needs v4+; older brokers get 1.
    let rf = if replication_factor < 0 && v < 4 {
        1
    } else {
        replication_factor
    };
    let mut t = CreatableTopic::default();
    t.name = topic_name(topic);
    t.num_partitions = partitions;
    t.replication_factor = rf;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 30_000;
    let resp = conn.call(&req, v).await.context("CreateTopics request")?;
    for r in resp.topics {
        match r.error_code {
            0 | TOPIC_ALREADY_EXISTS => {}
            code => bail!(
                "creating topic '{topic}': {}{}",
                error_name(code),
                r.error_message
                    .map(|m| format!(": {}", m.as_str()))
                    .unwrap_or_default()
            ),
        }
    }
    Ok(())
}

/// Offsets of `partitions` at `timestamp` (-2 earliest, -1 latest).
pub async fn list_offsets(
    conn: &mut Connection,
    versions: &Versions,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> Result<BTreeMap<i32, i64>> {
    let v = versions.pick(ApiKey::ListOffsets, 1, 10)?;
    let mut t = ListOffsetsTopic::default();
    t.name = topic_name(topic);
    t.partitions = partitions
        .iter()
        .map(|&p| {
            let mut lp = ListOffsetsPartition::default();
            lp.partition_index = p;
            lp.timestamp = timestamp;
            lp
        })
        .collect();
    let mut req = ListOffsetsRequest::default();
    req.replica_id = (-1).into();
    req.topics = vec![t];
    req.timeout_ms = 30_000;
    let resp = conn.call(&req, v).await.context("ListOffsets request")?;
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            if p.error_code != 0 {
                bail!(
                    "ListOffsets for partition {}: {}",
                    p.partition_index,
                    error_name(p.error_code)
                );
            }
            out.insert(p.partition_index, p.offset);
        }
    }
    for p in partitions {
        if !out.contains_key(p) {
            bail!("ListOffsets answer has no partition {p}");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };

    fn response(leaders: &[i32], topic_error: i16) -> MetadataResponse {
        let mut b = MetadataResponseBroker::default();
        b.node_id = 1.into();
        b.host = StrBytes::from_static_str("127.0.0.1");
        b.port = 9092;
        let mut t = MetadataResponseTopic::default();
        t.name = Some(topic_name("t"));
        t.error_code = topic_error;
        t.partitions = leaders
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                let mut p = MetadataResponsePartition::default();
                p.partition_index = i as i32;
                p.leader_id = l.into();
                p
            })
            .collect();
        let mut r = MetadataResponse::default();
        r.brokers = vec![b];
        r.topics = vec![t];
        r
    }

    #[test]
    fn layout_when_all_leaders_known() {
        let l = TopicLayout::from_metadata(&response(&[1, 1], 0), "t")
            .unwrap()
            .unwrap();
        assert_eq!(l.leaders.len(), 2);
        assert_eq!(l.broker_addr(1).unwrap(), "127.0.0.1:9092");
        assert_eq!(l.by_leader(&[0, 1]).get(&1), Some(&vec![0, 1]));
    }

    #[test]
    fn waits_for_missing_leaders_and_topics() {
        assert!(TopicLayout::from_metadata(&response(&[1, -1], 0), "t")
            .unwrap()
            .is_none());
        assert!(TopicLayout::from_metadata(&response(&[1], 3), "t")
            .unwrap()
            .is_none());
        assert!(TopicLayout::from_metadata(&response(&[1], 0), "other")
            .unwrap()
            .is_none());
        // A leader whose address the broker did not send.
        assert!(TopicLayout::from_metadata(&response(&[2], 0), "t")
            .unwrap()
            .is_none());
    }

    #[test]
    fn hard_errors_are_reported() {
        let err = TopicLayout::from_metadata(&response(&[1], 29), "t").unwrap_err();
        assert!(err.to_string().contains("29"), "{err}");
    }

    #[test]
    fn error_names() {
        assert_eq!(error_name(0), "NONE (0)");
        assert!(error_name(6).contains("(6)"));
        assert!(error_name(9999).contains("9999"));
    }
}
