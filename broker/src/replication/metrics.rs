//! Replication metrics under Kafka's names (JMX MBean paths flattened, as
//! in server/metrics.rs).

use prometheus::{IntCounter, IntGauge, Registry};

pub struct ReplicationMetrics {
    pub under_replicated: IntGauge,
    pub isr_shrinks: IntCounter,
    pub isr_expands: IntCounter,
    /// Largest lag, in messages, of any follower of ours or of this node as a follower.
    pub max_lag: IntGauge,
    /// Record bytes this node appended as a follower (Kafka's ReplicationBytesInPerSec).
    pub replication_bytes_in: IntCounter,
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
        }
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
