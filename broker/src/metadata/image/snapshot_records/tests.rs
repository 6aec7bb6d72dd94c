use super::super::testutil::{large_image, random_image};
use super::*;

/// Rebuilds `image` from its records; the offset comes from the snapshot id.
fn rebuilt(image: &MetadataImage) -> MetadataImage {
    MetadataImage::empty(image.cluster_id.clone())
        .try_apply(&image.to_records(), image.metadata_offset)
        .expect("an image's own records fit an empty image")
}

#[test]
fn random_images_rebuild_equal_from_their_records() {
    let mut non_trivial = 0;
    for seed in 0..200 {
        let image = random_image(seed, 300);
        assert_eq!(rebuilt(&image), image, "seed {seed}");
        if image.brokers.len() > 1 && image.topics.len() > 1 && image.metadata_version != 0 {
            non_trivial += 1;
        }
    }
    // The generator must build rich images, or the check above proves little.
    assert!(non_trivial > 150, "only {non_trivial} rich images");
}

#[test]
fn records_survive_encoding() {
    let image = random_image(42, 500);
    let decoded: Vec<MetadataRecord> = image
        .to_records()
        .iter()
        .map(|r| MetadataRecord::decode(&r.encode()).unwrap())
        .collect();
    assert_eq!(decoded, image.to_records());
}

#[test]
fn broker_state_is_carried_by_the_registration_alone() {
    let image = random_image(3, 400);
    let records = image.to_records();
    assert!(records.iter().all(|r| !matches!(
        r,
        MetadataRecord::FenceBroker(_)
            | MetadataRecord::UnfenceBroker(_)
            | MetadataRecord::BrokerRegistrationChange(_)
    )));
    let registered = records
        .iter()
        .filter(|r| matches!(r, MetadataRecord::RegisterBroker(_)))
        .count();
    assert_eq!(registered, image.brokers.len());
}

#[test]
fn metadata_version_comes_first_and_empty_images_have_no_records() {
    assert!(MetadataImage::empty("c").to_records().is_empty());
    let image = large_image(3, 2);
    let records = image.to_records();
    assert!(matches!(
        &records[0],
        MetadataRecord::FeatureLevel(f) if f.name == METADATA_VERSION_FEATURE
    ));
    // 1 feature + 5 brokers + 3 * (topic + 2 partitions + 1 config).
    assert_eq!(records.len(), 1 + 5 + 3 * 4);
    assert_eq!(rebuilt(&image), image);
}

#[test]
fn broker_configs_are_written_back_default_first() {
    let mut image = large_image(1, 1);
    let config = |name: &str, key: &str, value: &str| {
        MetadataRecord::Config(ConfigRecord {
            resource_type: BROKER_RESOURCE,
            resource_name: name.into(),
            name: key.into(),
            value: Some(value.into()),
        })
    };
    image = image.apply(
        &[
            config("3", super::super::EXCLUDED_KEY, "true"),
            config("", "removal.r", "{}"),
        ],
        100,
    );
    let records = image.to_records();
    let broker_configs: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            MetadataRecord::Config(c) if c.resource_type == BROKER_RESOURCE => {
                Some((c.resource_name.as_str(), c.name.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        broker_configs,
        vec![("", "removal.r"), ("3", super::super::EXCLUDED_KEY)]
    );
    let rebuilt = rebuilt(&image);
    assert!(rebuilt.is_excluded(3));
    assert_eq!(rebuilt, image);
}
