//! PodDisruptionBudgets: voluntary evictions may never break the controller quorum, and
//! brokers go one at a time.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::BuildInput;
use crate::names::Pool;

pub fn pool(input: &BuildInput, pool: Pool) -> PodDisruptionBudget {
    let max_unavailable = match pool {
        // A majority of n voters must stay up: at most (n - 1) / 2 may be disrupted.
        Pool::Controller => (input.replicas(pool) - 1) / 2,
        Pool::Broker => 1,
    };
    PodDisruptionBudget {
        metadata: input.meta(input.names.pool(pool), input.names.pool_labels(pool)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(max_unavailable)),
            selector: Some(LabelSelector {
                match_labels: Some(input.names.selector(pool)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::cluster;

    fn max_unavailable(controllers: i32, pool_kind: Pool) -> IntOrString {
        let kc =
            cluster(serde_json::json!({"image": "b:1", "controllers": {"replicas": controllers}}));
        pool(&BuildInput::new(&kc, "id", 3), pool_kind)
            .spec
            .unwrap()
            .max_unavailable
            .unwrap()
    }

    #[test]
    fn controllers_keep_a_majority() {
        assert_eq!(max_unavailable(1, Pool::Controller), IntOrString::Int(0));
        assert_eq!(max_unavailable(3, Pool::Controller), IntOrString::Int(1));
        assert_eq!(max_unavailable(5, Pool::Controller), IntOrString::Int(2));
        assert_eq!(max_unavailable(5, Pool::Broker), IntOrString::Int(1));
    }
}
