//! Results: a table for people, one JSON line for scripts.
//!
//! MB means 2^20 bytes, as kafka-producer-perf-test and rdkafka_performance count.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::histogram::Histogram;

pub const MB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Serialize)]
pub struct ProduceReport {
    pub mode: &'static str,
    pub topic: String,
    pub size: usize,
    pub partitions: usize,
    pub acks: String,
    pub compression: String,
    pub producers: usize,
    /// Records acknowledged without error.
    pub messages: u64,
    /// Value bytes of acknowledged records, in MB.
    pub mb: f64,
    pub seconds: f64,
    pub msgs_per_sec: f64,
    pub mb_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// Failed records by error name (Kafka error code, or "io" for connection failures).
    pub errors: BTreeMap<String, u64>,
    pub error_detail: Option<String>,
    /// CPU time loadgen itself used, as a percentage of one core over `seconds`.
    pub client_cpu_pct: Option<f64>,
}

impl ProduceReport {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        topic: &str,
        size: usize,
        partitions: usize,
        acks: i16,
        compression: String,
        producers: usize,
        hist: &Histogram,
        seconds: f64,
        errors: BTreeMap<String, u64>,
        error_detail: Option<String>,
    ) -> Self {
        let messages = hist.count();
        let mb = messages as f64 * size as f64 / MB;
        let ms = |us: u64| us as f64 / 1000.0;
        let per_sec = |x: f64| if seconds > 0.0 { x / seconds } else { 0.0 };
        Self {
            mode: "produce",
            topic: topic.to_string(),
            size,
            partitions,
            acks: if acks < 0 {
                "all".into()
            } else {
                acks.to_string()
            },
            compression,
            producers,
            messages,
            mb,
            seconds,
            msgs_per_sec: per_sec(messages as f64),
            mb_per_sec: per_sec(mb),
            p50_ms: ms(hist.quantile(0.50)),
            p99_ms: ms(hist.quantile(0.99)),
            p999_ms: ms(hist.quantile(0.999)),
            max_ms: ms(hist.max()),
            mean_ms: hist.mean() / 1000.0,
            errors,
            error_detail,
            client_cpu_pct: None,
        }
    }

    pub fn failed(&self) -> bool {
        !self.errors.is_empty() || self.error_detail.is_some()
    }

    pub fn table(&self) -> String {
        let head = [
            "messages", "MB", "seconds", "msgs/s", "MB/s", "p50 ms", "p99 ms", "p99.9 ms",
            "max ms", "errors",
        ];
        let row = [
            self.messages.to_string(),
            format!("{:.1}", self.mb),
            format!("{:.2}", self.seconds),
            format!("{:.0}", self.msgs_per_sec),
            format!("{:.1}", self.mb_per_sec),
            format!("{:.2}", self.p50_ms),
            format!("{:.2}", self.p99_ms),
            format!("{:.2}", self.p999_ms),
            format!("{:.2}", self.max_ms),
            errors_cell(&self.errors),
        ];
        let mut out = format!(
            "produce topic={} size={} partitions={} acks={} compression={} producers={}\n",
            self.topic, self.size, self.partitions, self.acks, self.compression, self.producers
        );
        out.push_str(&render(&head, &row));
        out.push_str(&cpu_line(self.client_cpu_pct));
        if let Some(d) = &self.error_detail {
            out.push_str(&format!("error: {d}\n"));
        }
        out
    }
}

#[derive(Debug, Serialize)]
pub struct ConsumeReport {
    pub mode: &'static str,
    pub topic: String,
    pub partitions: usize,
    pub messages: u64,
    /// Record batch bytes received (wire size), in MB.
    pub mb: f64,
    /// Value bytes, only known with --verify.
    pub value_mb: Option<f64>,
    pub seconds: f64,
    pub msgs_per_sec: f64,
    pub mb_per_sec: f64,
    pub fetches: u64,
    pub errors: BTreeMap<String, u64>,
    pub error_detail: Option<String>,
    /// CPU time loadgen itself used, as a percentage of one core over `seconds`.
    pub client_cpu_pct: Option<f64>,
}

impl ConsumeReport {
    pub fn failed(&self) -> bool {
        !self.errors.is_empty() || self.error_detail.is_some()
    }

    pub fn table(&self) -> String {
        let head = [
            "messages", "MB", "seconds", "msgs/s", "MB/s", "fetches", "errors",
        ];
        let row = [
            self.messages.to_string(),
            format!("{:.1}", self.mb),
            format!("{:.2}", self.seconds),
            format!("{:.0}", self.msgs_per_sec),
            format!("{:.1}", self.mb_per_sec),
            self.fetches.to_string(),
            errors_cell(&self.errors),
        ];
        let mut out = format!(
            "consume topic={} partitions={} (MB = record batch bytes{})\n",
            self.topic,
            self.partitions,
            self.value_mb
                .map(|v| format!(", values {v:.1} MB"))
                .unwrap_or_default()
        );
        out.push_str(&render(&head, &row));
        out.push_str(&cpu_line(self.client_cpu_pct));
        if let Some(d) = &self.error_detail {
            out.push_str(&format!("error: {d}\n"));
        }
        out
    }
}

fn cpu_line(pct: Option<f64>) -> String {
    pct.map(|p| format!("loadgen CPU: {p:.0}% of one core\n"))
        .unwrap_or_default()
}

/// CPU used between two process CPU readings, as a percentage of one core.
pub fn cpu_pct(
    before: Option<std::time::Duration>,
    after: Option<std::time::Duration>,
    seconds: f64,
) -> Option<f64> {
    let used = after?.checked_sub(before?)?;
    (seconds > 0.0).then(|| 100.0 * used.as_secs_f64() / seconds)
}

fn errors_cell(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        "0".into()
    } else {
        errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Two-line, right-aligned table.
fn render(head: &[&str], row: &[String]) -> String {
    let widths: Vec<usize> = head
        .iter()
        .zip(row)
        .map(|(h, r)| h.len().max(r.len()))
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            + "\n"
    };
    line(head.to_vec()) + &line(row.iter().map(String::as_str).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_numbers() {
        let mut h = Histogram::new();
        h.record_n(2_000, 1024);
        let r = ProduceReport::new(
            "t",
            1024,
            8,
            -1,
            "none".into(),
            1,
            &h,
            2.0,
            BTreeMap::new(),
            None,
        );
        assert_eq!(r.messages, 1024);
        assert!((r.mb - 1.0).abs() < 1e-9);
        assert!((r.mb_per_sec - 0.5).abs() < 1e-9);
        assert_eq!(r.msgs_per_sec, 512.0);
        assert_eq!(r.acks, "all");
        assert!(!r.failed());
        let t = r.table();
        assert!(t.contains("p99.9 ms"), "{t}");
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"mb_per_sec\":0.5"), "{json}");
    }

    #[test]
    fn cpu_percentage() {
        use std::time::Duration;
        let pct = cpu_pct(
            Some(Duration::from_secs(1)),
            Some(Duration::from_secs(2)),
            4.0,
        );
        assert_eq!(pct, Some(25.0));
        assert_eq!(cpu_pct(None, Some(Duration::ZERO), 1.0), None);
        assert_eq!(
            cpu_pct(Some(Duration::ZERO), Some(Duration::ZERO), 0.0),
            None
        );
    }

    #[test]
    fn errors_make_it_fail() {
        let mut errors = BTreeMap::new();
        errors.insert("io".to_string(), 3);
        let r = ProduceReport::new(
            "t",
            1,
            1,
            1,
            "none".into(),
            1,
            &Histogram::new(),
            0.0,
            errors,
            None,
        );
        assert!(r.failed());
        assert_eq!(r.msgs_per_sec, 0.0);
        assert!(r.table().contains("io: 3"));
    }
}
