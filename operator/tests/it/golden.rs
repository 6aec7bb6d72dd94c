//! Golden files of the desired objects for the minimal and the production-like example.
//! A reviewed change is recorded with `UPDATE_GOLDEN=1 cargo test -p operator --test it golden`.

use std::path::PathBuf;

use operator::crd::KafkaCluster;
use operator::resources::{desired, to_yaml, BuildInput};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn check(example: &str) {
    let text = std::fs::read_to_string(
        root()
            .join("deploy/examples")
            .join(format!("{example}.yaml")),
    )
    .unwrap();
    let mut kc: KafkaCluster = serde_yaml::from_str(&text).unwrap();
    kc.metadata.namespace = Some("kafka".into());
    kc.metadata.uid = Some("5f0c8d6e-0000-4000-8000-000000000001".into());
    assert!(
        operator::validate::problems(&kc.spec).is_empty(),
        "{example} example is invalid"
    );
    let replicas = kc.spec.brokers.replicas;
    let yaml = to_yaml(&desired(&BuildInput::new(
        &kc,
        "q1Sh-9_ISia_zwGINzRvyQ",
        replicas,
    )))
    .unwrap();
    let golden = root()
        .join("operator/tests/golden")
        .join(format!("{example}.yaml"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &yaml).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        expected == yaml,
        "{} differs from the builders' output; review and rerun with UPDATE_GOLDEN=1",
        golden.display()
    );
}

#[test]
fn minimal_example() {
    check("minimal");
}

#[test]
fn production_example() {
    check("production");
}
