//! Integration tests of the operator, in one binary so that kube is linked once.

mod broker_api;
mod broker_config;
mod cel_rules;
mod crd_stale;
mod golden;
mod leader;
mod metrics_http;
mod rbac;
mod reconcile;
mod shrink_real_cluster;
mod support;
