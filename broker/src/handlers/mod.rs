//! Request handlers, one file per API family.

pub mod configs;
pub mod producer_ids;
pub mod topics;

use kafka_protocol::messages::ApiKey;

/// The admin APIs these handlers implement, as (api, min version, max version) for ApiVersions.
pub const ADMIN_API_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::InitProducerId, 0, 5),
];

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;

    use super::*;

    /// We never advertise a version kafka-protocol cannot encode.
    #[test]
    fn advertised_versions_are_encodable() {
        for &(api, min, max) in ADMIN_API_VERSIONS {
            let range = match api {
                ApiKey::CreateTopics => CreateTopicsResponse::VERSIONS,
                ApiKey::DeleteTopics => DeleteTopicsResponse::VERSIONS,
                ApiKey::CreatePartitions => CreatePartitionsResponse::VERSIONS,
                ApiKey::DescribeConfigs => DescribeConfigsResponse::VERSIONS,
                ApiKey::AlterConfigs => AlterConfigsResponse::VERSIONS,
                ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsResponse::VERSIONS,
                ApiKey::InitProducerId => InitProducerIdRequest::VERSIONS,
                other => panic!("unexpected api {other:?}"),
            };
            assert!(range.min <= min && max <= range.max, "{api:?}");
        }
    }
}
