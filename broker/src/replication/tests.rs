//! A real leader node and a follower made of this module's parts: a second
//! replica manager with its own logs, fetching over a real socket, with the
//! follower registered as broker 2 in the leader's metadata.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::*;
use crate::config::BrokerConfig;
use crate::controller::lifecycle_tests;
use crate::controller::{monotonic_ms, BrokerRegistration, NewTopic};
use crate::server::Node;
use crate::storage::batch::testutil::simple;
use crate::storage::{BackgroundConfig, LogConfig};

const LAG_MS: u64 = 1_500;
const TOPIC: &str = "replicated";

async fn leader_node(dir: &std::path::Path) -> Node {
    crate::server::testing::start_node(dir, 0, &format!("replica.lag.time.max.ms={LAG_MS}\n")).await
}

/// Registers broker 2 with the leader's controller and unfences it.
fn register_follower(node: &Node) {
    let controller = &node.broker().controller;
    let registration = BrokerRegistration {
        cluster_id: controller.image().cluster_id.clone(),
        ..lifecycle_tests::registration(2, 2)
    };
    let epoch = controller
        .register_broker(registration, monotonic_ms())
        .unwrap();
    let reply = controller
        .broker_heartbeat(
            lifecycle_tests::heartbeat(2, epoch, controller.image().metadata_offset),
            monotonic_ms(),
        )
        .unwrap();
    assert!(!reply.is_fenced);
}

/// Broker 2's replica manager over its own logs, fetching per the leader's image.
fn start_follower(
    node: &Node,
    logs: &Arc<LogManager>,
    dir: &std::path::Path,
) -> Arc<ReplicaManager> {
    let config = BrokerConfig {
        node_id: 2,
        log_dirs: vec![dir.to_path_buf()],
        replica_fetch_wait_max_ms: 100,
        replica_fetch_backoff_ms: 50,
        ..BrokerConfig::default()
    };
    let follower = ReplicaManager::new(
        ReplicationConfig::from_broker(&config),
        logs.clone(),
        watch::channel(0).0,
        // A follower never changes the ISR.
        Arc::new(alter_partition::LocalController(
            node.broker().controller.clone(),
        )),
        &prometheus::Registry::new(),
    );
    let image = node.broker().image();
    logs.get_or_create(
        &TopicPartition::new(TOPIC, 0),
        image.topic(TOPIC).unwrap().id,
        LogConfig::from_broker(&config),
    )
    .unwrap();
    follower.apply_image(&image);
    follower
}

async fn produce(node: &Node, timeout_ms: i32) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(simple(3, 0)))])]);
    let response = crate::handlers::produce::handle(node.broker(), 9, request).await;
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn isr(node: &Node) -> Vec<i32> {
    node.broker().image().topics[TOPIC].partitions[0]
        .isr
        .clone()
}

async fn wait_for_isr(node: &Node, want: &[i32]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while isr(node) != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ISR stays {:?}",
            isr(node)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_waits_for_the_follower_and_the_isr_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = leader_node(&dir.path().join("leader")).await;
    register_follower(&node);
    let created = node
        .broker()
        .controller
        .create_topics(
            vec![NewTopic {
                assignments: vec![(0, vec![1, 2])],
                configs: vec![("min.insync.replicas".into(), Some("2".into()))],
                ..NewTopic::with_defaults(TOPIC)
            }],
            false,
        )
        .unwrap();
    assert!(created[0].is_ok());
    let follower_dir = dir.path().join("follower");
    let follower_logs = LogManager::open(
        std::slice::from_ref(&follower_dir),
        LogConfig::from_broker(&BrokerConfig::default()),
        BackgroundConfig::from_broker(&BrokerConfig::default()),
    )
    .unwrap();
    let follower_log = || follower_logs.get(&TopicPartition::new(TOPIC, 0)).unwrap();

    // With the follower fetching, acks=all completes once it has the batch.
    let follower = start_follower(&node, &follower_logs, &follower_dir);
    for expected in [0, 3] {
        let (error, base) = produce(&node, 10_000).await;
        assert_eq!((error, base), (0, expected));
        assert!(follower_log().log_end_offset() >= expected + 3);
    }
    assert_eq!(isr(&node), [1, 2]);

    // Without it, acks=all times out, then the ISR shrinks after the lag
    // time and acks=all is refused.
    drop(follower);
    let (error, _) = produce(&node, 300).await;
    assert_eq!(error, ResponseError::RequestTimedOut.code());
    wait_for_isr(&node, &[1]).await;
    let (error, _) = produce(&node, 1_000).await;
    assert_eq!(error, ResponseError::NotEnoughReplicas.code());
    assert_eq!(node.broker().replicas.metrics.isr_shrinks.get(), 1);
    node.broker().replicas.check_isr(&node.broker().image());
    assert_eq!(node.broker().replicas.metrics.under_replicated.get(), 1);

    // Back again: it catches up, rejoins the ISR, and acks=all works again.
    let follower = start_follower(&node, &follower_logs, &follower_dir);
    wait_for_isr(&node, &[1, 2]).await;
    // The produce takes the image's ISR, if the leader had not yet.
    let (error, base) = produce(&node, 10_000).await;
    assert_eq!(node.broker().replicas.metrics.isr_expands.get(), 1);
    assert_eq!((error, base), (0, 9));
    assert_eq!(follower_log().log_end_offset(), 12);
    // The follower's high watermark follows the leader's.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while follower
        .partition(&TopicPartition::new(TOPIC, 0))
        .unwrap()
        .high_watermark()
        < 12
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(follower);
    node.stop().await.unwrap();
}
