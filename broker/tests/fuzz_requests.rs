//! Mutation fuzzing of the whole request path on a real node (real files):
//! valid requests of every API and version we serve, randomly damaged, go
//! through `dispatch`. Nothing may panic, every produced batch that the log
//! accepted must still read back with a valid CRC, and the node must keep
//! answering. Bounded by FUZZ_SECONDS (default 20); FUZZ_SEED reproduces a run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use broker::config::{parse_properties, BrokerConfig};
use broker::handlers::{dispatch, implemented_versions};
use broker::server::Node;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::Compression;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn frame<T: Encodable>(api: ApiKey, version: i16, body: &T) -> Option<Bytes> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, api.request_header_version(version))
        .ok()?;
    body.encode(&mut buf, version).ok()?;
    Some(buf.freeze())
}

fn batch(values: &[&[u8]], compression: Compression) -> Bytes {
    let pairs: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                Some(Bytes::from(format!("k{i}"))),
                Some(Bytes::copy_from_slice(v)),
            )
        })
        .collect();
    broker::server::record_io::encode_batch(&pairs, 1_700_000_000_000, compression).unwrap()
}

fn produce(records: Bytes) -> ProduceRequest {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("fuzz")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

/// Valid frames to start from: a populated request where we have one,
/// the default (mostly empty) request for every other API and version.
fn seeds(produce_batch: &Bytes) -> Vec<Bytes> {
    let mut seeds = Vec::new();
    for (api, min, max) in implemented_versions().to_response_keys().iter().map(|k| {
        (
            ApiKey::try_from(k.api_key).unwrap(),
            k.min_version,
            k.max_version,
        )
    }) {
        for v in min..=max {
            let populated = match api {
                ApiKey::Produce => frame(api, v, &produce(produce_batch.clone())),
                ApiKey::Metadata => frame(
                    api,
                    v,
                    &MetadataRequest::default()
                        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                        )
                        .with_name(Some(TopicName(StrBytes::from_static_str("fuzz"))))])),
                ),
                ApiKey::Fetch => frame(
                    api,
                    v,
                    &FetchRequest::default()
                        .with_max_wait_ms(10)
                        .with_max_bytes(1 << 20)
                        .with_topics(vec![fetch_request::FetchTopic::default()
                            .with_topic(TopicName(StrBytes::from_static_str("fuzz")))
                            .with_partitions(vec![fetch_request::FetchPartition::default()
                                .with_partition_max_bytes(1 << 20)])]),
                ),
                ApiKey::CreateTopics => frame(
                    api,
                    v,
                    &CreateTopicsRequest::default().with_topics(vec![
                        create_topics_request::CreatableTopic::default()
                            .with_name(TopicName(StrBytes::from_static_str("fuzz2")))
                            .with_num_partitions(2)
                            .with_replication_factor(1),
                    ]),
                ),
                ApiKey::JoinGroup => frame(
                    api,
                    v,
                    &JoinGroupRequest::default()
                        .with_group_id(GroupId(StrBytes::from_static_str("g")))
                        .with_session_timeout_ms(10_000)
                        .with_rebalance_timeout_ms(100)
                        .with_protocol_type(StrBytes::from_static_str("consumer"))
                        .with_protocols(vec![
                            join_group_request::JoinGroupRequestProtocol::default()
                                .with_name(StrBytes::from_static_str("range"))
                                .with_metadata(Bytes::from_static(b"\0\0\0\0")),
                        ]),
                ),
                ApiKey::ListOffsets => frame(
                    api,
                    v,
                    &ListOffsetsRequest::default().with_topics(vec![
                        list_offsets_request::ListOffsetsTopic::default()
                            .with_name(TopicName(StrBytes::from_static_str("fuzz")))
                            .with_partitions(
                                [-1, -2, -3, 1_700_000_000_001]
                                    .into_iter()
                                    .map(|ts| {
                                        list_offsets_request::ListOffsetsPartition::default()
                                            .with_timestamp(ts)
                                    })
                                    .collect(),
                            ),
                    ]),
                ),
                ApiKey::DeleteRecords => frame(
                    api,
                    v,
                    &DeleteRecordsRequest::default().with_topics(vec![
                        delete_records_request::DeleteRecordsTopic::default()
                            .with_name(TopicName(StrBytes::from_static_str("fuzz")))
                            .with_partitions(vec![
                                delete_records_request::DeleteRecordsPartition::default()
                                    .with_offset(1),
                            ]),
                    ]),
                ),
                ApiKey::OffsetForLeaderEpoch => frame(
                    api,
                    v,
                    &OffsetForLeaderEpochRequest::default().with_topics(vec![
                        offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                            .with_topic(TopicName(StrBytes::from_static_str("fuzz")))
                            .with_partitions(vec![
                                offset_for_leader_epoch_request::OffsetForLeaderPartition::default(
                                ),
                            ]),
                    ]),
                ),
                ApiKey::FindCoordinator => frame(
                    api,
                    v,
                    &FindCoordinatorRequest::default()
                        .with_key(StrBytes::from_static_str("g"))
                        .with_coordinator_keys(vec![StrBytes::from_static_str("g")]),
                ),
                ApiKey::ElectLeaders => frame(
                    api,
                    v,
                    &ElectLeadersRequest::default()
                        .with_election_type(if v == 0 { 0 } else { 1 })
                        .with_topic_partitions(Some(vec![
                            elect_leaders_request::TopicPartitions::default()
                                .with_topic(TopicName(StrBytes::from_static_str("fuzzed")))
                                .with_partitions(vec![0, 7]),
                        ])),
                ),
                ApiKey::AlterPartitionReassignments => frame(
                    api,
                    v,
                    &AlterPartitionReassignmentsRequest::default()
                        .with_timeout_ms(1000)
                        .with_topics(vec![
                            alter_partition_reassignments_request::ReassignableTopic::default()
                                .with_name(TopicName(StrBytes::from_static_str("fuzz")))
                                .with_partitions(
                                    [Some(vec![1, 1]), Some(vec![-7]), Some(vec![]), None]
                                        .into_iter()
                                        .enumerate()
                                        .map(|(i, target)| {
                                            alter_partition_reassignments_request::ReassignablePartition::default()
                                                .with_partition_index(i as i32 - 1)
                                                .with_replicas(target.map(|t| {
                                                    t.into_iter().map(BrokerId).collect()
                                                }))
                                        })
                                        .collect(),
                                ),
                        ]),
                ),
                ApiKey::ListPartitionReassignments => frame(
                    api,
                    v,
                    &ListPartitionReassignmentsRequest::default().with_topics(Some(vec![
                        list_partition_reassignments_request::ListPartitionReassignmentsTopics::default()
                            .with_name(TopicName(StrBytes::from_static_str("fuzz")))
                            .with_partition_indexes(vec![0, -1, 99]),
                    ])),
                ),
                _ => None,
            };
            seeds.extend(populated);
            seeds.extend(frame_default(api, v));
        }
    }
    seeds
}

fn frame_default(api: ApiKey, v: i16) -> Option<Bytes> {
    match api {
        ApiKey::ApiVersions => frame(api, v, &ApiVersionsRequest::default()),
        ApiKey::Metadata => frame(api, v, &MetadataRequest::default()),
        ApiKey::ListOffsets => frame(api, v, &ListOffsetsRequest::default()),
        ApiKey::OffsetCommit => frame(api, v, &OffsetCommitRequest::default()),
        ApiKey::OffsetFetch => frame(api, v, &OffsetFetchRequest::default()),
        ApiKey::FindCoordinator => frame(api, v, &FindCoordinatorRequest::default()),
        ApiKey::Heartbeat => frame(api, v, &HeartbeatRequest::default()),
        ApiKey::LeaveGroup => frame(api, v, &LeaveGroupRequest::default()),
        ApiKey::SyncGroup => frame(api, v, &SyncGroupRequest::default()),
        ApiKey::DescribeGroups => frame(api, v, &DescribeGroupsRequest::default()),
        ApiKey::ListGroups => frame(api, v, &ListGroupsRequest::default()),
        ApiKey::DeleteTopics => frame(api, v, &DeleteTopicsRequest::default()),
        ApiKey::DeleteRecords => frame(api, v, &DeleteRecordsRequest::default()),
        ApiKey::InitProducerId => frame(api, v, &InitProducerIdRequest::default()),
        ApiKey::OffsetForLeaderEpoch => frame(api, v, &OffsetForLeaderEpochRequest::default()),
        ApiKey::DescribeConfigs => frame(api, v, &DescribeConfigsRequest::default()),
        ApiKey::AlterConfigs => frame(api, v, &AlterConfigsRequest::default()),
        ApiKey::CreatePartitions => frame(api, v, &CreatePartitionsRequest::default()),
        ApiKey::DeleteGroups => frame(api, v, &DeleteGroupsRequest::default()),
        ApiKey::IncrementalAlterConfigs => {
            frame(api, v, &IncrementalAlterConfigsRequest::default())
        }
        ApiKey::OffsetDelete => frame(api, v, &OffsetDeleteRequest::default()),
        ApiKey::DescribeCluster => frame(api, v, &DescribeClusterRequest::default()),
        ApiKey::ElectLeaders => frame(api, v, &ElectLeadersRequest::default()),
        ApiKey::AlterPartitionReassignments => {
            frame(api, v, &AlterPartitionReassignmentsRequest::default())
        }
        ApiKey::ListPartitionReassignments => {
            frame(api, v, &ListPartitionReassignmentsRequest::default())
        }
        _ => None,
    }
}

/// Damages a frame the ways that break parsers: flipped bits, hostile
/// lengths and counts, truncation, trailing junk.
fn mutate(rng: &mut StdRng, seed: &Bytes) -> Bytes {
    let mut bytes = seed.to_vec();
    for _ in 0..rng.random_range(1..4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..6) {
            0 => bytes[at] ^= 1 << rng.random_range(0..8),
            1 => bytes[at] = rng.random(),
            2 => {
                let word: [u8; 4] = [
                    [0x7f, 0xff, 0xff, 0xff],
                    [0xff; 4],
                    [0x80, 0, 0, 0],
                    [0, 0, 0, 0],
                ][rng.random_range(0..4)];
                for (i, b) in word.iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + i) {
                        *slot = *b;
                    }
                }
            }
            3 => bytes.truncate(at),
            4 => bytes.extend((0..rng.random_range(1..16)).map(|_| rng.random::<u8>())),
            _ => bytes[at] = 0xff,
        }
    }
    Bytes::from(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_requests_never_panic_or_corrupt_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap()
    };
    let (port, controller_port) = (free_port(), free_port());
    let props: BTreeMap<String, String> = parse_properties(&format!(
        "process.roles=broker,controller\nnode.id=1\n\
         listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}\n\
         controller.listener.names=CONTROLLER\ncontroller.quorum.voters=1@127.0.0.1:{controller_port}\n\
         log.dirs={}\ngroup.initial.rebalance.delay.ms=0\n\
         offsets.topic.num.partitions=2\nlog.segment.bytes=65536\n",
        dir.path().display()
    ))
    .unwrap();
    let config = BrokerConfig::from_properties(&props).unwrap();
    broker::meta_properties::format(&config, &broker::meta_properties::random_uuid(), false)
        .unwrap();
    let node = Node::start(config).await.unwrap();
    node.wait_ready(std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let state = node.broker().clone();

    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20u64);
    println!("fuzz seed {seed} (rerun with FUZZ_SEED={seed}), {seconds} s");
    let mut rng = StdRng::seed_from_u64(seed);

    // Create the topic through the normal path so produce seeds hit a real log.
    let valid_batch = batch(&[b"one", b"two", b"three"], Compression::None);
    let create = frame(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default()
            .with_allow_auto_topic_creation(true)
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(TopicName(StrBytes::from_static_str("fuzz"))))])),
    )
    .unwrap();
    dispatch(&state, "/127.0.0.1", create).await.unwrap();

    let seeds = seeds(&valid_batch);
    // Every well-formed seed is answered: no version gets a response it cannot encode.
    for seed in &seeds {
        let raw = broker::protocol::peek_header(seed).unwrap();
        match tokio::time::timeout(
            Duration::from_millis(200),
            dispatch(&state, "/127.0.0.1", seed.clone()),
        )
        .await
        {
            Ok(Err(e)) => panic!("api {} v{} failed: {e}", raw.api_key, raw.api_version),
            Ok(Ok(None)) => panic!("api {} v{} gave no response", raw.api_key, raw.api_version),
            _ => {}
        }
    }
    let compressed = [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runs = 0u64;
    while Instant::now() < deadline {
        let input = if rng.random_bool(0.3) {
            // Damage the records inside an otherwise well-formed produce request.
            let good = batch(
                &[b"payload-a", b"payload-b"],
                compressed[rng.random_range(0..4)],
            );
            frame(
                ApiKey::Produce,
                rng.random_range(3..=9),
                &produce(mutate(&mut rng, &good)),
            )
            .unwrap()
        } else {
            let pick = rng.random_range(0..seeds.len());
            mutate(&mut rng, &seeds[pick])
        };
        // Long polls and group waits are cut short: only panics matter here.
        let _ = tokio::time::timeout(
            Duration::from_millis(50),
            dispatch(&state, "/127.0.0.1", input),
        )
        .await;
        runs += 1;
    }
    println!("{runs} damaged requests");
    assert!(runs > 100, "fuzzing made too little progress: {runs} runs");

    // The node still answers, and what the log accepted is intact.
    let versions = frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).unwrap();
    assert!(dispatch(&state, "/127.0.0.1", versions)
        .await
        .unwrap()
        .is_some());
    let log = state
        .logs
        .get(&broker::storage::TopicPartition::new("fuzz", 0))
        .expect("fuzz log exists");
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let mut chunk = log.read(offset, 1 << 20, end, true).unwrap();
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut chunk)
            .unwrap_or_else(|e| panic!("log holds an unreadable batch at {offset}: {e:#}"));
        let last = sets
            .iter()
            .flat_map(|s| &s.records)
            .map(|r| r.offset)
            .max()
            .expect("a batch has records");
        offset = last + 1;
    }
    node.stop().await.unwrap();
}
