//! DescribeConfigs (v1-4), AlterConfigs (v0-2) and IncrementalAlterConfigs (v0-1).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::controller::{
    run_checked, AlterOp, ApiError, ConfigEntry, ConfigResource, ConfigUpdate, Controller,
};

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn opt_text(s: Option<&str>) -> Option<StrBytes> {
    s.map(text)
}

pub async fn describe_configs(
    controller: &Controller,
    version: i16,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .iter()
        .map(|r| {
            // Null or empty asks for every key.
            let keys: Option<Vec<String>> = r
                .configuration_keys
                .as_ref()
                .filter(|keys| !keys.is_empty())
                .map(|keys| keys.iter().map(|k| k.to_string()).collect());
            let described = ConfigResource::from_wire(r.resource_type, &r.resource_name)
                .and_then(|resource| controller.describe_configs(&resource, keys.as_deref()));
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match described {
                Ok(entries) => result.with_configs(
                    entries
                        .into_iter()
                        .map(|e| entry(e, version, request.include_synonyms))
                        .collect(),
                ),
                Err(e) => result
                    .with_error_code(e.code())
                    .with_error_message(Some(text(&e.message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn entry(e: ConfigEntry, version: i16, include_synonyms: bool) -> DescribeConfigsResourceResult {
    let synonyms = if include_synonyms {
        e.synonyms
            .iter()
            .map(|s| {
                DescribeConfigsSynonym::default()
                    .with_name(text(&s.name))
                    .with_value(opt_text(s.value.as_deref()))
                    .with_source(s.source as i8)
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut result = DescribeConfigsResourceResult::default()
        .with_name(text(&e.name))
        .with_value(opt_text(e.value.as_deref()))
        .with_read_only(e.read_only)
        .with_config_source(e.source as i8)
        .with_is_sensitive(false)
        .with_synonyms(synonyms)
        // Null: clients show Kafka's own documentation.
        .with_documentation(None);
    if version >= 3 {
        result = result.with_config_type(e.config_type);
    }
    result
}

pub async fn alter_configs(
    controller: &Controller,
    _version: i16,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let items = request
        .resources
        .iter()
        .map(|r| {
            let resource = ConfigResource::from_wire(r.resource_type, &r.resource_name)?;
            let configs = r
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect();
            Ok((resource, ConfigUpdate::Replace(configs)))
        })
        .collect();
    let responses = request
        .resources
        .iter()
        .zip(commit(controller, items, request.validate_only))
        .map(|(r, (code, message))| {
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

pub async fn incremental_alter_configs(
    controller: &Controller,
    _version: i16,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let items = request
        .resources
        .iter()
        .map(|r| {
            let resource = ConfigResource::from_wire(r.resource_type, &r.resource_name)?;
            let ops = r
                .configs
                .iter()
                .map(|c| {
                    let op = AlterOp::from_code(c.config_operation).ok_or_else(|| {
                        ApiError::new(
                            ResponseError::InvalidRequest,
                            format!(
                                "Unknown config operation {} for `{}`.",
                                c.config_operation,
                                c.name.as_str()
                            ),
                        )
                    })?;
                    Ok((
                        c.name.to_string(),
                        op,
                        c.value.as_ref().map(|v| v.to_string()),
                    ))
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            Ok((resource, ConfigUpdate::Incremental(ops)))
        })
        .collect();
    let responses = request
        .resources
        .iter()
        .zip(commit(controller, items, request.validate_only))
        .map(|(r, (code, message))| {
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// Commits the resources that passed their own checks (AlterConfigs and
/// IncrementalAlterConfigs alike) and returns each one's error fields, in order.
fn commit(
    controller: &Controller,
    items: Vec<Result<(ConfigResource, ConfigUpdate), ApiError>>,
    validate_only: bool,
) -> Vec<(i16, Option<StrBytes>)> {
    run_checked(items, |updates| {
        controller.alter_configs(updates, validate_only)
    })
    .into_iter()
    .map(error_fields)
    .collect()
}

/// Error code and message of one resource; a null message on success, as Kafka sends.
fn error_fields(result: Result<(), ApiError>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(()) => (0, None),
        Err(e) => (e.code(), Some(text(&e.message))),
    }
}

#[cfg(test)]
mod tests;
