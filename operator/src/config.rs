//! Generation of the Kafka-style server properties of every pod. Pure: the same spec always
//! yields the same text, which is what makes the config hash (and so restarts) meaningful.

use std::collections::BTreeMap;

use crate::crd::{ExternalType, KafkaClusterSpec};
use crate::names::{ClusterNames, Pool, ADMIN_PORT, CONTROLLER_PORT, DATA_DIR, REPLICATION_PORT};

/// Environment variable that carries the rack (filled from the pod's topology label).
pub const RACK_ENV: &str = "KAFKA_RACK";

/// Keys the operator owns: a user override would break naming, quorum or storage.
pub const MANAGED_KEYS: &[&str] = &[
    "process.roles",
    "node.id",
    "broker.id",
    "controller.quorum.voters",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "controller.listener.names",
    "inter.broker.listener.name",
    "log.dirs",
    "log.dir",
    "metadata.log.dir",
    "broker.rack",
    "admin.http.listener",
    "config.providers",
];

/// Keys with a typed field in `spec.topicDefaults`, which is where they are set.
const TOPIC_DEFAULT_KEYS: &[(&str, &str)] = &[
    ("num.partitions", "partitions"),
    ("default.replication.factor", "replicationFactor"),
    ("min.insync.replicas", "minInsyncReplicas"),
    ("log.retention.ms", "retentionMs"),
    ("log.retention.bytes", "retentionBytes"),
    ("log.segment.bytes", "segmentBytes"),
];

/// Keys a user may set: those the broker reads (broker/src/config.rs) that the operator
/// does not own. A key the broker does not know would make its pods crash-loop, so it is
/// refused here instead; a test feeds every key to the broker's own parser.
pub const ALLOWED_KEYS: &[&str] = &[
    "auto.create.topics.enable",
    // How fast a broker that stopped heartbeating is fenced (read by the controllers).
    "broker.heartbeat.interval.ms",
    "broker.session.timeout.ms",
    "compression.type",
    "delete.topic.enable",
    "group.initial.rebalance.delay.ms",
    "group.max.session.timeout.ms",
    "group.max.size",
    "group.min.session.timeout.ms",
    "log.cleaner.backoff.ms",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.enable",
    "log.cleaner.min.cleanable.ratio",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleanup.policy",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.flush.offset.checkpoint.interval.ms",
    "log.index.interval.bytes",
    "log.index.size.max.bytes",
    "log.message.timestamp.type",
    "log.retention.check.interval.ms",
    "log.retention.hours",
    "log.retention.minutes",
    "log.roll.hours",
    "log.roll.ms",
    "message.max.bytes",
    "offsets.retention.check.interval.ms",
    "offsets.retention.minutes",
    "offsets.topic.num.partitions",
    "offsets.topic.replication.factor",
    // Replication and leadership.
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "replica.fetch.backoff.ms",
    "replica.fetch.max.bytes",
    "replica.fetch.response.max.bytes",
    "replica.fetch.wait.max.ms",
    "replica.high.watermark.checkpoint.interval.ms",
    "replica.lag.time.max.ms",
    "replica.selector.class",
    "unclean.leader.election.enable",
    "socket.request.max.bytes",
    "transaction.state.log.min.isr",
    "transaction.state.log.replication.factor",
    // Accepted by the broker for compatibility with Kafka property files, without effect.
    "background.threads",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.buffer.size",
    "log.cleaner.threads",
    "log.preallocate",
    "num.io.threads",
    "num.network.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.fetchers",
    "queued.max.requests",
    "socket.receive.buffer.bytes",
    "socket.send.buffer.bytes",
];

/// Why a user-supplied key cannot be used; reported verbatim in the Degraded condition.
pub fn check_user_key(key: &str) -> Option<String> {
    if MANAGED_KEYS.contains(&key) {
        Some(format!(
            "config key {key:?} is managed by the operator and cannot be overridden"
        ))
    } else if let Some((_, field)) = TOPIC_DEFAULT_KEYS.iter().find(|(k, _)| *k == key) {
        Some(format!(
            "config key {key:?} is set through topicDefaults.{field}"
        ))
    } else if ALLOWED_KEYS.contains(&key) {
        None
    } else {
        Some(format!("unknown config key {key:?}"))
    }
}

/// `id@host:port` for every controller, in ordinal order.
pub fn quorum_voters(names: &ClusterNames, controllers: i32) -> String {
    (0..controllers)
        .map(|o| {
            format!(
                "{}@{}:{}",
                Pool::Controller.node_id(o),
                names.pod_host(Pool::Controller, o),
                CONTROLLER_PORT
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Properties of one pod.
pub fn pod_properties(
    spec: &KafkaClusterSpec,
    names: &ClusterNames,
    pool: Pool,
    ordinal: i32,
) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        p.insert(k.to_string(), v);
    };
    set("node.id", pool.node_id(ordinal).to_string());
    set(
        "controller.quorum.voters",
        quorum_voters(names, spec.controllers.replicas),
    );
    set("controller.listener.names", "CONTROLLER".into());
    set("log.dirs", DATA_DIR.into());
    set("admin.http.listener", format!("0.0.0.0:{ADMIN_PORT}"));
    let host = names.pod_host(pool, ordinal);
    let user = match pool {
        Pool::Controller => {
            set("process.roles", "controller".into());
            set(
                "listeners",
                format!("CONTROLLER://0.0.0.0:{CONTROLLER_PORT}"),
            );
            set(
                "advertised.listeners",
                format!("CONTROLLER://{host}:{CONTROLLER_PORT}"),
            );
            set(
                "listener.security.protocol.map",
                "CONTROLLER:PLAINTEXT".into(),
            );
            &spec.controllers.config
        }
        Pool::Broker => {
            let client = spec.listeners.client_port;
            let mut listeners = vec![
                format!("CLIENT://0.0.0.0:{client}"),
                format!("REPLICATION://0.0.0.0:{REPLICATION_PORT}"),
            ];
            let mut advertised = vec![
                format!("CLIENT://{host}:{client}"),
                format!("REPLICATION://{host}:{REPLICATION_PORT}"),
            ];
            let mut protocols =
                "CLIENT:PLAINTEXT,REPLICATION:PLAINTEXT,CONTROLLER:PLAINTEXT".to_string();
            if let Some(ext) = &spec.listeners.external {
                let ext_host = ext
                    .advertised_host_template
                    .replace("{ordinal}", &ordinal.to_string());
                let ext_port = match ext.type_ {
                    ExternalType::LoadBalancer => ext.port,
                    ExternalType::NodePort => ext.node_port_base.unwrap_or(ext.port) + ordinal,
                };
                listeners.push(format!("EXTERNAL://0.0.0.0:{}", ext.port));
                advertised.push(format!("EXTERNAL://{ext_host}:{ext_port}"));
                protocols.push_str(",EXTERNAL:PLAINTEXT");
            }
            set("process.roles", "broker".into());
            set("listeners", listeners.join(","));
            set("advertised.listeners", advertised.join(","));
            set("listener.security.protocol.map", protocols);
            set("inter.broker.listener.name", "REPLICATION".into());
            let t = &spec.topic_defaults;
            set("num.partitions", t.partitions.to_string());
            set(
                "default.replication.factor",
                t.replication_factor.to_string(),
            );
            set("min.insync.replicas", t.min_insync_replicas.to_string());
            set(
                "offsets.topic.replication.factor",
                t.replication_factor.to_string(),
            );
            set(
                "transaction.state.log.replication.factor",
                t.replication_factor.to_string(),
            );
            // Kafka's default of 2 would block transactions on a one-replica cluster.
            set(
                "transaction.state.log.min.isr",
                t.min_insync_replicas.to_string(),
            );
            if let Some(v) = t.retention_ms {
                set("log.retention.ms", v.to_string());
            }
            if let Some(v) = t.retention_bytes {
                set("log.retention.bytes", v.to_string());
            }
            if let Some(v) = t.segment_bytes {
                set("log.segment.bytes", v.to_string());
            }
            if spec.brokers.rack_topology_key.is_some() {
                // Kafka's env config provider: the rack comes from the pod's topology label.
                set("config.providers", "env".into());
                set(
                    "config.providers.env.class",
                    "org.apache.kafka.common.config.provider.EnvVarConfigProvider".into(),
                );
                set("broker.rack", format!("${{env:{RACK_ENV}}}"));
            }
            &spec.brokers.config
        }
    };
    // User overrides come last; validation has already rejected managed and unknown keys.
    p.extend(user.iter().map(|(k, v)| (k.clone(), v.clone())));
    p
}

/// Kafka cluster ids are 16 random bytes in URL-safe base64 without padding (22 chars).
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in uuid::Uuid::new_v4().into_bytes() {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 0x3f) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 0x3f) as usize] as char);
    }
    out
}

/// Java-properties text, one `key=value` a line, sorted so the output is deterministic.
pub fn render(props: &BTreeMap<String, String>) -> String {
    props.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ExternalAccess, KafkaClusterSpec};

    fn spec() -> KafkaClusterSpec {
        serde_json::from_value(serde_json::json!({"image": "broker:1"})).unwrap()
    }

    #[test]
    fn voters_list_every_controller_by_stable_dns() {
        let n = ClusterNames::new("kc", "ns");
        assert_eq!(
            quorum_voters(&n, 3),
            "1000@kc-controller-0.kc-controller.ns.svc:9093,\
             1001@kc-controller-1.kc-controller.ns.svc:9093,\
             1002@kc-controller-2.kc-controller.ns.svc:9093"
        );
    }

    #[test]
    fn broker_properties_advertise_own_pod() {
        let n = ClusterNames::new("kc", "ns");
        let p = pod_properties(&spec(), &n, Pool::Broker, 1);
        assert_eq!(p["process.roles"], "broker");
        assert_eq!(p["node.id"], "1");
        assert_eq!(
            p["advertised.listeners"],
            "CLIENT://kc-broker-1.kc-broker.ns.svc:9092,REPLICATION://kc-broker-1.kc-broker.ns.svc:9091"
        );
        assert_eq!(p["inter.broker.listener.name"], "REPLICATION");
        assert_eq!(p["min.insync.replicas"], "2");
        assert_eq!(p["transaction.state.log.min.isr"], "2");
        assert!(!p.contains_key("broker.rack"));
    }

    #[test]
    fn controller_properties_have_no_client_listener() {
        let n = ClusterNames::new("kc", "ns");
        let p = pod_properties(&spec(), &n, Pool::Controller, 2);
        assert_eq!(p["process.roles"], "controller");
        assert_eq!(p["node.id"], "1002");
        assert_eq!(p["listeners"], "CONTROLLER://0.0.0.0:9093");
        assert!(!p.contains_key("inter.broker.listener.name"));
    }

    #[test]
    fn external_node_port_is_advertised_per_ordinal_and_rack_from_env() {
        let mut s = spec();
        s.listeners.external = Some(ExternalAccess {
            type_: ExternalType::NodePort,
            port: 9094,
            advertised_host_template: "node-{ordinal}.example.test".into(),
            node_port_base: Some(31000),
            annotations: Default::default(),
        });
        s.brokers.rack_topology_key = Some("topology.kubernetes.io/zone".into());
        s.brokers
            .config
            .insert("message.max.bytes".into(), "2097152".into());
        let p = pod_properties(&s, &ClusterNames::new("kc", "ns"), Pool::Broker, 2);
        assert!(p["advertised.listeners"].ends_with(",EXTERNAL://node-2.example.test:31002"));
        assert!(p["listeners"].ends_with(",EXTERNAL://0.0.0.0:9094"));
        assert_eq!(p["broker.rack"], "${env:KAFKA_RACK}");
        assert_eq!(p["message.max.bytes"], "2097152");
    }

    #[test]
    fn user_keys_are_checked() {
        assert!(check_user_key("log.retention.hours").is_none());
        assert!(check_user_key("message.max.bytes").is_none());
        assert!(check_user_key("broker.session.timeout.ms").is_none());
        assert!(check_user_key("node.id")
            .unwrap()
            .contains("managed by the operator"));
        assert!(check_user_key("min.insync.replicas")
            .unwrap()
            .contains("topicDefaults.minInsyncReplicas"));
        assert!(check_user_key("log.retension.ms")
            .unwrap()
            .contains("unknown config key"));
    }

    #[test]
    fn cluster_ids_look_like_kafka_ones() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        // The last char carries 2 data bits and 4 zero padding bits.
        assert!("AQgw".contains(id.chars().last().unwrap()));
        assert_ne!(id, new_cluster_id());
    }

    #[test]
    fn render_is_sorted_lines() {
        let p = BTreeMap::from([
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string()),
        ]);
        assert_eq!(render(&p), "a=1\nb=2\n");
    }
}
