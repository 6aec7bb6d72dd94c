//! Prometheus metrics with Kafka's names (JMX MBean paths flattened).

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub bytes_in: IntCounterVec,
    pub messages_in: IntCounterVec,
    pub bytes_out: IntCounter,
    pub connections: IntCounter,
    pub bad_frames: IntCounter,
    /// Kafka's `raft-metrics`: the quorum as this node sees it.
    pub raft_current_leader: IntGauge,
    pub raft_current_epoch: IntGauge,
    pub raft_high_watermark: IntGauge,
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
        Metrics {
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
            bytes_out: counter(
                "kafka_server_brokertopicmetrics_bytesout_total",
                "Record bytes returned to fetchers",
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
