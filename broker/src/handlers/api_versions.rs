//! ApiVersions: what this broker implements, and the features it finalizes.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::server::BrokerState;

pub const VERSIONS: &[(ApiKey, i16, i16)] = &[(ApiKey::ApiVersions, 0, 4)];

pub async fn handle(
    state: &BrokerState,
    _version: i16,
    _request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    let image = state.image();
    let metadata_version = image.metadata_version;
    ApiVersionsResponse::default()
        .with_api_keys(state.api_versions.to_response_keys())
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
pub fn unsupported_version(state: &BrokerState) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(state.api_versions.to_response_keys())
}
