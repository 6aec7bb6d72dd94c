//! ApiVersions: what this broker implements, and the features it finalizes.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::metadata::MetadataImage;
use crate::protocol::ApiVersionTable;

pub const VERSIONS: &[(ApiKey, i16, i16)] = &[(ApiKey::ApiVersions, 0, 4)];

/// What a listener serving `table` answers, with the metadata version of `image`.
pub async fn handle(
    table: &ApiVersionTable,
    image: &MetadataImage,
    _request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    let metadata_version = image.metadata_version;
    ApiVersionsResponse::default()
        .with_api_keys(table.to_response_keys())
        .with_supported_features(vec![SupportedFeatureKey::default()
            .with_name(StrBytes::from_static_str("metadata.version"))
            .with_min_version(1)
            .with_max_version(metadata_version)])
        .with_finalized_features_epoch(image.metadata_offset)
        .with_finalized_features(vec![FinalizedFeatureKey::default()
            .with_name(StrBytes::from_static_str("metadata.version"))
            .with_min_version_level(metadata_version)
            .with_max_version_level(metadata_version)])
}

/// The answer to an ApiVersions request at a version newer than ours.
pub fn unsupported_version(table: &ApiVersionTable) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(table.to_response_keys())
}
