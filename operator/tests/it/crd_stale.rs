//! The checked-in CRD must be exactly what `operator crd` prints; regenerate with
//! `cargo run -p operator -- crd > crds/kafkacluster.yaml` (the chart copies it too).

use std::path::PathBuf;

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

#[test]
fn checked_in_crd_is_current() {
    let generated = operator::crd::crd_yaml().unwrap();
    for rel in [
        "crds/kafkacluster.yaml",
        "charts/kafka-operator/crds/kafkacluster.yaml",
    ] {
        let on_disk = std::fs::read_to_string(repo_file(rel)).unwrap_or_default();
        assert!(
            on_disk == generated,
            "{rel} is stale: run `cargo run -p operator -- crd > {rel}`"
        );
    }
}
