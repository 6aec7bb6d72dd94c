//! End-to-end check of the loadgen binary against the in-process mock broker
//! (`tests/mock`): version negotiation, pipelined produce with in-order responses,
//! acks=0, rate limiting, offsets, fetch positions and failure exit codes.

mod mock;

use std::process::Command;

use mock::start_mock;

fn loadgen(args: &[String]) -> (bool, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    (out.status.success(), json, stderr)
}

fn args(s: &str, port: u16) -> Vec<String> {
    s.split_whitespace()
        .map(String::from)
        .chain([
            "--bootstrap".into(),
            format!("127.0.0.1:{port}"),
            "--json".into(),
        ])
        .collect()
}

#[test]
fn produce_then_consume_everything() {
    let port = start_mock();
    let (ok, p, err) = loadgen(&args(
        "produce -t t --create -p 4 -n 20000 -s 100 --acks all --producers 2 --linger-ms 1 --compression lz4",
        port,
    ));
    assert!(ok, "produce failed: {err} {p}");
    assert_eq!(p["messages"], 20000);
    assert_eq!(p["partitions"], 4);
    assert!(p["p99_ms"].as_f64().unwrap() >= p["p50_ms"].as_f64().unwrap());
    assert!(p["errors"].as_object().unwrap().is_empty());

    let (ok, c, err) = loadgen(&args("consume -t t -n 20000 --verify", port));
    assert!(ok, "consume failed: {err} {c}");
    assert_eq!(c["messages"], 20000);
    assert!((c["value_mb"].as_f64().unwrap() - 20000.0 * 100.0 / 1048576.0).abs() < 1e-6);
}

#[test]
fn rate_limit_and_duration() {
    let port = start_mock();
    let (ok, p, err) = loadgen(&args(
        "produce -t r --create -p 1 -d 1s -s 10 --rate 2000 --acks 1",
        port,
    ));
    assert!(ok, "produce failed: {err} {p}");
    let n = p["messages"].as_u64().unwrap();
    assert!(
        (1800..=2200).contains(&n),
        "about 2000 records in 1 s, got {n}"
    );
}

#[test]
fn acks_zero_gets_no_responses() {
    let port = start_mock();
    let (ok, p, err) = loadgen(&args("produce -t z --create -p 2 -n 5000 --acks 0", port));
    assert!(ok, "produce failed: {err} {p}");
    assert_eq!(p["messages"], 5000);
}

#[test]
fn consumer_reports_missing_records() {
    let port = start_mock();
    let (ok, _, _) = loadgen(&args("produce -t m --create -p 1 -n 10", port));
    assert!(ok);
    let (ok, c, err) = loadgen(&args("consume -t m -n 20 --idle-timeout 500ms", port));
    assert!(!ok, "must fail when fewer records arrive");
    assert_eq!(c["messages"], 10);
    assert!(err.contains("failed"), "{err}");
}

#[test]
fn unreachable_broker_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let (ok, _, err) = loadgen(&args("produce -t x -n 1", port));
    assert!(!ok);
    assert!(err.contains("connecting to 127.0.0.1"), "{err}");
}

#[test]
fn create_topic_then_unknown_topic_is_an_error() {
    let port = start_mock();
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["create-topic", "-t", "c", "-p", "3", "--bootstrap"])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, _, err) = loadgen(&args("produce -t nosuch -n 1 --request-timeout 1s", port));
    assert!(!ok);
    assert!(err.contains("use --create"), "{err}");
}
