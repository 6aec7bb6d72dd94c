//! The tool's own CPU time, so a benchmark can show how much of the machine the load
//! generator itself used (it shares the cores with the broker).

use std::time::Duration;

/// Linux reports process times in USER_HZ ticks, which is 100 on every architecture.
const TICKS_PER_SEC: u64 = 100;

/// User + system CPU time of this process so far; `None` where /proc is not available.
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat(&stat)
}

/// Fields 14 and 15 (utime, stime) of /proc/<pid>/stat. The command name (field 2)
/// may contain spaces, so counting starts after its closing parenthesis.
fn parse_stat(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 is the first after ')'
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SEC,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime() {
        let stat = "1234 (load gen) R 1 1234 1234 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(parse_stat(stat), Some(Duration::from_secs(3)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_own_process() {
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(process_cpu_time().is_some());
        }
    }
}
