//! Typed Kafka operations the end-to-end tests share: version negotiation,
//! topic creation, produce (acks=all, retrying while leadership settles) and
//! fetch, with records that exercise keys, nulls and headers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, BrokerId, CreateTopicsRequest, FetchRequest,
    IncrementalAlterConfigsRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::KafkaConn;

/// API key → (min, max) version the peer serves.
pub type Versions = HashMap<i16, (i16, i16)>;

pub fn api_versions(conn: &mut KafkaConn) -> Result<Versions> {
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("e2e-rust"))
        .with_client_software_version(StrBytes::from_static_str("0.1.0"));
    let resp = conn.send(&req, 3)?;
    assert_eq!(resp.error_code, 0, "ApiVersions v3 error");
    Ok(resp
        .api_keys
        .iter()
        .map(|k| (k.api_key, (k.min_version, k.max_version)))
        .collect())
}

/// The highest version both sides speak, capped at `cap` (the last version this test encodes
/// with topic names rather than topic ids).
pub fn pick(v: &Versions, key: ApiKey, cap: i16) -> i16 {
    let (lo, hi) = *v
        .get(&(key as i16))
        .unwrap_or_else(|| panic!("{key:?} missing from ApiVersions"));
    let version = hi.min(cap);
    assert!(
        version >= lo,
        "{key:?}: broker supports v{lo}..v{hi}, test needs <= v{cap}"
    );
    version
}

pub fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub fn records(n: usize, base_ts: i64) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let mut headers = kafka_protocol::indexmap::IndexMap::new();
            headers.insert(
                StrBytes::from_string(format!("h{i}")),
                Some(Bytes::from(vec![i as u8, 0, 255])),
            );
            let key = (i % 3 != 2).then(|| Bytes::from(format!("key-{i}")));
            let value = [&b"\x00\xffvalue-"[..], i.to_string().as_bytes()].concat();
            Record {
                key,
                headers,
                ..record(i, base_ts + i as i64, Bytes::from(value))
            }
        })
        .collect()
}

/// A plain record at `offset` (relative to its batch) with `value`, no key or headers.
fn record(offset: usize, timestamp: i64, value: Bytes) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: offset as i64,
        sequence: -1,
        timestamp,
        key: None,
        value: Some(value),
        headers: Default::default(),
    }
}

/// Creates `name` with `partitions` partitions of `replication_factor` replicas.
pub fn create_topic(
    conn: &mut KafkaConn,
    v: &Versions,
    name: &str,
    partitions: i32,
    replication_factor: i16,
) -> Result<()> {
    let version = pick(v, ApiKey::CreateTopics, 7);
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic(name))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("retention.ms"))
                .with_value(Some(StrBytes::from_static_str("86400000")))])]);
    let resp = conn.send(&req, version)?;
    assert_eq!(resp.topics.len(), 1);
    assert_eq!(
        resp.topics[0].error_code, 0,
        "CreateTopics: {:?}",
        resp.topics[0].error_message
    );
    Ok(())
}

/// Produces `recs` as one batch with acks=all, retrying while leadership
/// settles; returns the base offset.
pub fn produce(
    conn: &mut KafkaConn,
    v: &Versions,
    name: &str,
    partition: i32,
    recs: &[Record],
    c: Compression,
) -> Result<i64> {
    // the partition may need a moment to get its leader after CreateTopics
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match produce_once(conn, v, name, partition, recs, c, -1)? {
            Ok(base_offset) => return Ok(base_offset),
            Err(3 | 5 | 6) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(e) => bail!("produce error {e}"),
        }
    }
}

/// One Produce of `recs` as one batch with `acks`: the base offset, or the
/// partition's error code.
pub fn produce_once(
    conn: &mut KafkaConn,
    v: &Versions,
    name: &str,
    partition: i32,
    recs: &[Record],
    c: Compression,
    acks: i16,
) -> Result<std::result::Result<i64, i16>> {
    let version = pick(v, ApiKey::Produce, 9);
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        recs.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: c,
        },
    )?;
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic(name))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch.freeze()))])]);
    let resp = conn.send(&req, version)?;
    let p = &resp.responses[0].partition_responses[0];
    Ok(match p.error_code {
        0 => Ok(p.base_offset),
        e => Err(e),
    })
}

pub fn fetch(
    conn: &mut KafkaConn,
    v: &Versions,
    name: &str,
    partition: i32,
    offset: i64,
) -> Result<(i64, Vec<Record>)> {
    let version = pick(v, ApiKey::Fetch, 12);
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(10 << 20)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic(name))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_current_leader_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(1 << 20)])]);
    let resp = conn.send(&req, version)?;
    assert_eq!(resp.error_code, 0);
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0, "fetch partition error");
    let mut out = Vec::new();
    if let Some(mut bytes) = p.records.clone() {
        for set in RecordBatchDecoder::decode_all(&mut bytes)? {
            out.extend(set.records);
        }
    }
    Ok((p.high_watermark, out))
}

pub fn assert_same(sent: &[Record], got: &[Record], base_offset: i64) {
    assert_eq!(got.len(), sent.len(), "record count");
    for (i, (s, g)) in sent.iter().zip(got).enumerate() {
        assert_eq!(g.offset, base_offset + i as i64, "offset of record {i}");
        assert_eq!(g.key, s.key, "key of record {i}");
        assert_eq!(g.value, s.value, "value of record {i}");
        assert_eq!(g.headers, s.headers, "headers of record {i}");
        assert_eq!(g.timestamp, s.timestamp, "timestamp of record {i}");
    }
}

/// `n` records of `value`, no key, for workloads where only the size matters.
pub fn value_records(n: usize, value: &[u8]) -> Vec<Record> {
    let value = Bytes::copy_from_slice(value);
    (0..n)
        .map(|i| record(i, 1_700_000_000_000, value.clone()))
        .collect()
}

/// Creates `name` with partition `i` on exactly the brokers `assignments[i]`.
pub fn create_on(conn: &mut KafkaConn, name: &str, assignments: &[Vec<i32>]) -> Result<()> {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic(name))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(
                assignments
                    .iter()
                    .enumerate()
                    .map(|(i, brokers)| {
                        CreatableReplicaAssignment::default()
                            .with_partition_index(i as i32)
                            .with_broker_ids(brokers.iter().copied().map(BrokerId).collect())
                    })
                    .collect(),
            )]);
    let response = conn.send(&request, 5)?;
    if response.topics[0].error_code != 0 {
        bail!(
            "CreateTopics {name}: {:?}",
            response.topics[0].error_message
        );
    }
    Ok(())
}

/// The BROKER config resource type of (Incremental)AlterConfigs.
pub const BROKER_RESOURCE: i8 = 4;

/// IncrementalAlterConfigs v0 on one resource: SET each key with a value, DELETE each
/// without; fails on an error code.
pub fn alter_configs(
    conn: &mut KafkaConn,
    resource_type: i8,
    name: &str,
    configs: &[(&str, Option<&str>)],
) -> Result<()> {
    let configs = configs
        .iter()
        .map(|(key, value)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(key.to_string()))
                .with_config_operation(if value.is_some() { 0 } else { 1 })
                .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
        })
        .collect();
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(configs),
    ]);
    let response = conn.send(&request, 0)?;
    for r in &response.responses {
        if r.error_code != 0 {
            bail!(
                "IncrementalAlterConfigs on {name}: error {} {:?}",
                r.error_code,
                r.error_message
            );
        }
    }
    Ok(())
}

/// Both replication throttle rates (`leader.` and `follower.replication.throttled.rate`)
/// at `bytes_per_s` on the cluster default, which every broker without its own takes.
pub fn throttle_replication(conn: &mut KafkaConn, bytes_per_s: u64) -> Result<()> {
    let rate = bytes_per_s.to_string();
    alter_configs(
        conn,
        BROKER_RESOURCE,
        "",
        &[
            ("leader.replication.throttled.rate", Some(&rate)),
            ("follower.replication.throttled.rate", Some(&rate)),
        ],
    )
}
