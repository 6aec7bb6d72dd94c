//! Prometheus metrics with Kafka's names (JMX MBean paths flattened).

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::controller::reassigning;
use crate::metadata::MetadataImage;

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub bytes_in: IntCounterVec,
    pub messages_in: IntCounterVec,
    pub bytes_out: IntCounterVec,
    /// Record bytes sent to follower replicas (Kafka's ReplicationBytesOutPerSec).
    pub replication_bytes_out: IntCounter,
    pub connections: IntCounter,
    pub bad_frames: IntCounter,
    /// Kafka's `raft-metrics`: the quorum as this node sees it.
    pub raft_current_leader: IntGauge,
    pub raft_current_epoch: IntGauge,
    pub raft_high_watermark: IntGauge,
    /// Kafka's `broker-metadata-metrics` last-applied-record-offset: how far
    /// this node's metadata image has got, to compare nodes' convergence.
    pub metadata_last_applied_offset: IntGauge,
    /// Kafka's `KafkaController` gauges: the cluster as the active controller
    /// sees it; zero on every other node, so sums over nodes are right.
    pub controller: ControllerGauges,
}

pub struct ControllerGauges {
    pub active: IntGauge,
    pub offline_partitions: IntGauge,
    pub preferred_replica_imbalance: IntGauge,
    pub global_partitions: IntGauge,
    pub global_topics: IntGauge,
    pub active_brokers: IntGauge,
    pub fenced_brokers: IntGauge,
    /// Brokers with `broker.excluded`: no new replicas or preferred leaderships.
    pub excluded_brokers: IntGauge,
    pub reassigning_partitions: IntGauge,
    /// Replicas the running broker removal still has to move.
    pub removal_partitions_remaining: IntGauge,
}

impl ControllerGauges {
    /// Sets every gauge from `image` on the active controller, or to zero.
    pub fn update(&self, image: Option<&MetadataImage>) {
        let Some(image) = image else {
            for g in self.all() {
                g.set(0);
            }
            return;
        };
        let partitions = || image.topics.values().flat_map(|t| t.partitions.iter());
        let count = |n: usize| n as i64;
        self.active.set(1);
        self.offline_partitions
            .set(count(partitions().filter(|p| p.leader < 0).count()));
        self.preferred_replica_imbalance.set(count(
            partitions()
                .filter(|p| image.preferred_leader(p).is_some_and(|r| r != p.leader))
                .count(),
        ));
        self.global_partitions.set(count(partitions().count()));
        self.global_topics.set(count(image.topics.len()));
        self.active_brokers
            .set(count(image.brokers.values().filter(|b| !b.fenced).count()));
        self.fenced_brokers
            .set(count(image.brokers.values().filter(|b| b.fenced).count()));
        self.excluded_brokers
            .set(count(image.excluded_brokers().count()));
        self.reassigning_partitions
            .set(count(partitions().filter(|p| reassigning(p)).count()));
        self.removal_partitions_remaining.set(count(
            image.running_removal().map_or(0, |(_, task)| {
                task.brokers.iter().map(|b| image.partitions_on(*b)).sum()
            }),
        ));
    }

    fn all(&self) -> [&IntGauge; 10] {
        [
            &self.active,
            &self.offline_partitions,
            &self.preferred_replica_imbalance,
            &self.global_partitions,
            &self.global_topics,
            &self.active_brokers,
            &self.fenced_brokers,
            &self.excluded_brokers,
            &self.reassigning_partitions,
            &self.removal_partitions_remaining,
        ]
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c =
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
            registry
                .register(Box::new(c.clone()))
                .expect("metric registered once");
            c
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric definition");
            registry
                .register(Box::new(c.clone()))
                .expect("metric registered once");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric definition");
            registry
                .register(Box::new(g.clone()))
                .expect("metric registered once");
            g
        };
        let controller = ControllerGauges {
            active: gauge(
                "kafka_controller_kafkacontroller_activecontrollercount",
                "1 on the active controller, else 0",
            ),
            offline_partitions: gauge(
                "kafka_controller_kafkacontroller_offlinepartitionscount",
                "Partitions without a leader",
            ),
            preferred_replica_imbalance: gauge(
                "kafka_controller_kafkacontroller_preferredreplicaimbalancecount",
                "Partitions not led by their preferred (first) replica",
            ),
            global_partitions: gauge(
                "kafka_controller_kafkacontroller_globalpartitioncount",
                "Partitions in the cluster",
            ),
            global_topics: gauge(
                "kafka_controller_kafkacontroller_globaltopiccount",
                "Topics in the cluster",
            ),
            active_brokers: gauge(
                "kafka_controller_kafkacontroller_activebrokercount",
                "Registered brokers that are not fenced",
            ),
            fenced_brokers: gauge(
                "kafka_controller_kafkacontroller_fencedbrokercount",
                "Registered brokers that are fenced",
            ),
            excluded_brokers: gauge(
                "kafka_controller_excluded_brokers",
                "Brokers excluded from new replicas and preferred leaderships",
            ),
            reassigning_partitions: gauge(
                "kafka_controller_reassigning_partitions",
                "Partitions with a replica reassignment in flight",
            ),
            removal_partitions_remaining: gauge(
                "kafka_controller_removal_partitions_remaining",
                "Replicas the running broker removal still has to move off its brokers",
            ),
        };
        Metrics {
            controller,
            raft_current_leader: gauge(
                "kafka_server_raftmetrics_current_leader",
                "Node id of the metadata quorum leader, -1 when unknown",
            ),
            raft_current_epoch: gauge(
                "kafka_server_raftmetrics_current_epoch",
                "Current epoch of the metadata quorum",
            ),
            raft_high_watermark: gauge(
                "kafka_server_raftmetrics_high_watermark",
                "Offset below which metadata records are committed",
            ),
            metadata_last_applied_offset: gauge(
                "kafka_server_broker_metadata_metrics_last_applied_record_offset",
                "Offset of the last metadata record in this node's image, -1 before any",
            ),
            requests: counter_vec(
                "kafka_network_requestmetrics_requests_total",
                "Requests received, by API",
                &["request"],
            ),
            bytes_in: counter_vec(
                "kafka_server_brokertopicmetrics_bytesin_total",
                "Record bytes appended by producers, by topic",
                &["topic"],
            ),
            messages_in: counter_vec(
                "kafka_server_brokertopicmetrics_messagesin_total",
                "Records appended by producers, by topic",
                &["topic"],
            ),
            bytes_out: counter_vec(
                "kafka_server_brokertopicmetrics_bytesout_total",
                "Record bytes returned to consumers, by topic",
                &["topic"],
            ),
            replication_bytes_out: counter(
                "kafka_server_brokertopicmetrics_replicationbytesout_total",
                "Record bytes returned to follower replicas",
            ),
            connections: counter(
                "kafka_server_socketservermetrics_connection_creation_total",
                "Client connections accepted",
            ),
            bad_frames: counter(
                "kafka_network_requestmetrics_malformed_requests_total",
                "Connections closed because a request could not be parsed or is not supported",
            ),
            registry,
        }
    }

    pub fn record_produce(&self, topic: &str, bytes: u64, messages: i64) {
        self.bytes_in.with_label_values(&[topic]).inc_by(bytes);
        self.messages_in
            .with_label_values(&[topic])
            .inc_by(messages.max(0) as u64);
    }

    /// The text exposition format Prometheus scrapes.
    pub fn render(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
