//! Replication metrics under Kafka's names (JMX MBean paths flattened, as
//! in server/metrics.rs).

use prometheus::{IntCounter, IntGauge, Registry};

use super::throttle::Throttles;

pub struct ReplicationMetrics {
    pub under_replicated: IntGauge,
    pub isr_shrinks: IntCounter,
    pub isr_expands: IntCounter,
    /// Largest lag, in messages, of any follower of ours or of this node as a follower.
    pub max_lag: IntGauge,
    /// Record bytes this node appended as a follower (Kafka's ReplicationBytesInPerSec).
    pub replication_bytes_in: IntCounter,
    /// Bytes copied under the leader-side and follower-side replication throttles.
    pub leader_throttled_bytes: IntCounter,
    pub follower_throttled_bytes: IntCounter,
    /// The throttle rates in force, bytes/s (0: unlimited).
    leader_throttle_rate: IntGauge,
    follower_throttle_rate: IntGauge,
}

impl ReplicationMetrics {
    pub fn new(registry: &Registry) -> Self {
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric definition");
            registry
                .register(Box::new(g.clone()))
                .expect("metric registered once");
            g
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric definition");
            registry
                .register(Box::new(c.clone()))
                .expect("metric registered once");
            c
        };
        ReplicationMetrics {
            under_replicated: gauge(
                "kafka_server_replicamanager_underreplicatedpartitions",
                "Partitions led here whose ISR is smaller than their replica set",
            ),
            isr_shrinks: counter(
                "kafka_server_replicamanager_isrshrinks_total",
                "ISR shrinks committed for partitions led here",
            ),
            isr_expands: counter(
                "kafka_server_replicamanager_isrexpands_total",
                "ISR expansions committed for partitions led here",
            ),
            max_lag: gauge(
                "kafka_server_replicafetchermanager_maxlag",
                "Largest replica lag in messages",
            ),
            replication_bytes_in: counter(
                "kafka_server_brokertopicmetrics_replicationbytesin_total",
                "Record bytes appended as a follower replica",
            ),
            leader_throttled_bytes: counter(
                "kafka_server_leaderreplication_throttled_bytes_total",
                "Bytes sent to throttled follower replicas (leader.replication.throttled.rate)",
            ),
            follower_throttled_bytes: counter(
                "kafka_server_followerreplication_throttled_bytes_total",
                "Bytes fetched by throttled replicas here (follower.replication.throttled.rate)",
            ),
            leader_throttle_rate: gauge(
                "kafka_server_leaderreplication_throttle_rate_bytes",
                "leader.replication.throttled.rate in force, bytes/s (0: unlimited)",
            ),
            follower_throttle_rate: gauge(
                "kafka_server_followerreplication_throttle_rate_bytes",
                "follower.replication.throttled.rate in force, bytes/s (0: unlimited)",
            ),
        }
    }

    pub fn show_throttle_rates(&self, throttles: &Throttles) {
        let show = |gauge: &IntGauge, rate: Option<u64>| {
            gauge.set(rate.map_or(0, |r| i64::try_from(r).unwrap_or(i64::MAX)))
        };
        show(&self.leader_throttle_rate, throttles.leader.rate());
        show(&self.follower_throttle_rate, throttles.follower.rate());
    }

    /// Counts a committed ISR change from `before` to `after` members.
    pub fn count_isr_change(&self, before: usize, after: usize) {
        if after < before {
            self.isr_shrinks.inc();
        } else if after > before {
            self.isr_expands.inc();
        }
    }
}
