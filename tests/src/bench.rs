//! What the benchmark binaries in `tests/examples/` share: the binary they measure and the
//! Markdown table they print for BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A release build of a benchmark measures the release broker unless `BROKER_BIN` says
/// otherwise. Call it first in `main`, before any thread starts: it sets the environment.
pub fn use_release_binary_by_default() {
    if std::env::var_os("BROKER_BIN").is_some() || cfg!(debug_assertions) {
        return;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    std::env::set_var("BROKER_BIN", target.join("release").join("broker"));
}

pub fn fmt_secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub fn fmt_bytes(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
    } else if b >= 1 << 20 {
        format!("{:.2} MiB", b as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

/// Two columns, printed as a Markdown table (ready for BENCHMARKS.md); each row is also
/// logged as it is measured.
#[derive(Default)]
pub struct Table {
    rows: Vec<(String, String)>,
}

impl Table {
    pub fn row(&mut self, what: &str, value: String) {
        eprintln!("  {what}: {value}");
        self.rows.push((what.to_string(), value));
    }

    pub fn print(&self) {
        println!("\n| measurement | value |\n| --- | --- |");
        for (what, value) in &self.rows {
            println!("| {what} | {value} |");
        }
    }
}
