//! Prometheus metrics of the reconciler and the /metrics endpoint.

use std::time::Instant;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "kafka_operator_reconciles_total",
                "Reconcile passes started",
            ),
            &["cluster"],
        )
        .expect("static metric definition");
        let errors = IntCounterVec::new(
            Opts::new(
                "kafka_operator_reconcile_errors_total",
                "Reconcile passes that failed, by error kind",
            ),
            &["cluster", "error"],
        )
        .expect("static metric definition");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "kafka_operator_reconcile_duration_seconds",
                "Duration of reconcile passes",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["cluster"],
        )
        .expect("static metric definition");
        for c in [
            Box::new(reconciles.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(duration.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Self {
            registry,
            reconciles,
            errors,
            duration,
        }
    }
}

/// Records the duration of one reconcile pass when dropped.
pub struct Timer<'a> {
    metrics: &'a Metrics,
    cluster: String,
    start: Instant,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.metrics
            .duration
            .with_label_values(&[self.cluster.as_str()])
            .observe(self.start.elapsed().as_secs_f64());
    }
}

impl Metrics {
    pub fn reconcile_started(&self, cluster: &str) -> Timer<'_> {
        self.reconciles.with_label_values(&[cluster]).inc();
        Timer {
            metrics: self,
            cluster: cluster.to_string(),
            start: Instant::now(),
        }
    }

    pub fn reconcile_failed(&self, cluster: &str, error: &str) {
        self.errors.with_label_values(&[cluster, error]).inc();
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// Serve /metrics, /healthz and /readyz on `listener` until the process ends.
pub async fn serve(metrics: Metrics, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        )
        .route("/healthz", get(|| std::future::ready("ok")))
        .route("/readyz", get(|| std::future::ready("ok")));
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_errors_are_rendered() {
        let m = Metrics::default();
        drop(m.reconcile_started("demo"));
        m.reconcile_failed("demo", "kube");
        let text = m.render();
        assert!(
            text.contains("kafka_operator_reconciles_total{cluster=\"demo\"} 1"),
            "{text}"
        );
        assert!(text
            .contains("kafka_operator_reconcile_errors_total{cluster=\"demo\",error=\"kube\"} 1"));
        assert!(
            text.contains("kafka_operator_reconcile_duration_seconds_count{cluster=\"demo\"} 1")
        );
    }
}
