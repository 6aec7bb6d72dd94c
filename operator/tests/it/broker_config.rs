//! Every properties file the operator generates, and every config key it lets users set,
//! goes through the broker's own parser: a file the broker would refuse would crash-loop
//! its pod.

use std::collections::BTreeMap;

use std::env::VarError;

use broker::config::{parse_properties, BrokerConfig, ConfigError};
use operator::config::{pod_properties, render, ALLOWED_KEYS};
use operator::crd::KafkaCluster;
use operator::names::{ClusterNames, Pool};

/// The rack a broker pod's environment carries (from its node's topology label).
const POD_RACK: &str = "zone-b";

fn example(name: &str) -> KafkaCluster {
    let path = format!(
        "{}/../deploy/examples/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut kc: KafkaCluster =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    kc.metadata.namespace = Some("kafka".into());
    kc
}

/// Parse as the broker does in a pod whose environment the StatefulSet filled.
fn broker_parse(text: &str) -> Result<BrokerConfig, ConfigError> {
    let props: BTreeMap<String, String> = parse_properties(text)?;
    BrokerConfig::from_properties_with_env(&props, &|name| match name {
        operator::config::RACK_ENV => Ok(POD_RACK.to_string()),
        _ => Err(VarError::NotPresent),
    })
}

#[test]
fn generated_files_load_in_the_broker() {
    for name in ["minimal", "production"] {
        let kc = example(name);
        let names = ClusterNames::new(&kc.metadata.name.clone().unwrap(), "kafka");
        for (pool, replicas) in [
            (Pool::Controller, kc.spec.controllers.replicas),
            (Pool::Broker, kc.spec.brokers.replicas),
        ] {
            for ordinal in 0..replicas {
                let text = render(&pod_properties(&kc.spec, &names, pool, ordinal));
                let config = broker_parse(&text)
                    .unwrap_or_else(|e| panic!("{name} {pool:?} {ordinal}: {e}\n{text}"));
                assert_eq!(config.node_id, pool.node_id(ordinal));
                assert_eq!(
                    config.quorum_voters.len(),
                    kc.spec.controllers.replicas as usize
                );
                if pool == Pool::Broker {
                    let client = config
                        .client_listener()
                        .expect("brokers have a client listener");
                    assert_eq!(client.name, "CLIENT");
                    let (host, port) = config.advertised_address(client);
                    assert_eq!(host, names.pod_host(pool, ordinal));
                    assert_eq!(i32::from(port), kc.spec.listeners.client_port);
                    let rack = kc.spec.brokers.rack_topology_key.as_ref().map(|_| POD_RACK);
                    assert_eq!(config.rack.as_deref(), rack);
                }
            }
        }
    }
}

#[test]
fn every_key_users_may_set_is_known_to_the_broker() {
    // Any plausible value will do: only "unknown key" matters here.
    for key in ALLOWED_KEYS {
        let known = ["1", "true", "delete", "CreateTime", "0.5", "producer"]
            .iter()
            .any(|value| {
                let text = format!(
                    "process.roles=broker\nlisteners=CLIENT://0.0.0.0:9092\n{key}={value}\n"
                );
                let props = parse_properties(&text).unwrap();
                !matches!(
                    BrokerConfig::from_properties(&props),
                    Err(ConfigError::UnknownKey(_))
                )
            });
        assert!(
            known,
            "the broker does not read {key:?}, which the operator lets users set"
        );
    }
}
