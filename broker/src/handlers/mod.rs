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
