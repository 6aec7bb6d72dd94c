//! Running a request whose items were partly refused before reaching the controller.

use super::error::{ApiError, ControllerError};

/// Runs `op` on the items that passed the handler's own checks and returns
/// every item's result in request order. If the controller itself fails,
/// each item it was given gets that failure.
pub fn run_checked<T, U>(
    items: Vec<Result<T, ApiError>>,
    op: impl FnOnce(Vec<T>) -> Result<Vec<Result<U, ApiError>>, ControllerError>,
) -> Vec<Result<U, ApiError>> {
    let mut valid = Vec::new();
    let mut refused = Vec::new();
    for item in items {
        match item {
            Ok(item) => {
                valid.push(item);
                refused.push(None);
            }
            Err(e) => refused.push(Some(e)),
        }
    }
    let count = valid.len();
    let mut done = match op(valid) {
        Ok(results) => results.into_iter(),
        Err(e) => {
            tracing::error!(error = %e, "controller operation failed");
            let error = e.to_api_error();
            (0..count)
                .map(|_| Err(error.clone()))
                .collect::<Vec<_>>()
                .into_iter()
        }
    };
    refused
        .into_iter()
        .map(|r| match r {
            Some(e) => Err(e),
            None => done.next().unwrap_or_else(|| {
                Err(ApiError::new(
                    kafka_protocol::error::ResponseError::UnknownServerError,
                    "the controller returned fewer results than items",
                ))
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use kafka_protocol::error::ResponseError;

    use super::*;
    use crate::controller::MetadataLogError;

    #[test]
    fn results_go_back_in_request_order() {
        let bad = ApiError::new(ResponseError::InvalidRequest, "bad");
        let items = vec![Ok(1), Err(bad.clone()), Ok(2)];
        let results = run_checked(items, |valid: Vec<i32>| {
            assert_eq!(valid, vec![1, 2]);
            Ok(valid.into_iter().map(|v| Ok(v * 10)).collect())
        });
        assert_eq!(results, vec![Ok(10), Err(bad.clone()), Ok(20)]);

        let results = run_checked(
            vec![Ok(1), Err(bad.clone())],
            |_: Vec<i32>| -> Result<Vec<Result<i32, ApiError>>, _> {
                Err(ControllerError::Log(MetadataLogError::Storage("x".into())))
            },
        );
        assert_eq!(
            results[0].as_ref().unwrap_err().error,
            ResponseError::UnknownServerError
        );
        assert_eq!(results[1], Err(bad));
    }
}
