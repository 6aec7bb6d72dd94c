//! End-to-end check of the loadgen binary against a tiny in-process mock broker.
//!
//! The mock speaks just enough Kafka (ApiVersions, Metadata, CreateTopics, Produce,
//! ListOffsets, Fetch) to prove the client side: version negotiation, pipelined
//! produce with in-order responses, offsets and fetch positions. It keeps record
//! batches in memory and assigns offsets like a leader does.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{
    decode_request_header_from_buffer, Decodable, Encodable, HeaderVersion, StrBytes,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PARTITIONS: i32 = 4;

#[derive(Default)]
struct Log {
    /// (base offset, batch bytes)
    batches: Vec<(i64, Bytes)>,
    next: i64,
}

type Store = Arc<Mutex<HashMap<i32, Log>>>;

fn encode<R: Encodable + HeaderVersion>(cid: i32, version: i16, resp: &R) -> BytesMut {
    let mut body = BytesMut::new();
    let mut h = ResponseHeader::default();
    h.correlation_id = cid;
    h.encode(&mut body, R::header_version(version)).unwrap();
    resp.encode(&mut body, version).unwrap();
    let mut out = BytesMut::new();
    out.put_i32(body.len() as i32);
    out.extend_from_slice(&body);
    out
}

fn ranges() -> Vec<ApiVersion> {
    [
        (ApiKey::Produce, 3, 9),
        (ApiKey::Fetch, 4, 12),
        (ApiKey::ListOffsets, 1, 7),
        (ApiKey::Metadata, 1, 12),
        (ApiKey::ApiVersions, 0, 3),
        (ApiKey::CreateTopics, 2, 7),
    ]
    .into_iter()
    .map(|(k, lo, hi)| {
        let mut v = ApiVersion::default();
        v.api_key = k as i16;
        v.min_version = lo;
        v.max_version = hi;
        v
    })
    .collect()
}

fn handle(store: &Store, port: u16, mut frame: Bytes) -> Option<BytesMut> {
    let header = decode_request_header_from_buffer(&mut frame).unwrap();
    let (cid, v) = (header.correlation_id, header.request_api_version);
    let key = ApiKey::try_from(header.request_api_key).unwrap();
    Some(match key {
        ApiKey::ApiVersions => {
            let mut r = ApiVersionsResponse::default();
            r.api_keys = ranges();
            encode(cid, v, &r)
        }
        ApiKey::CreateTopics => {
            let req = CreateTopicsRequest::decode(&mut frame, v).unwrap();
            let mut r = CreateTopicsResponse::default();
            r.topics = req
                .topics
                .into_iter()
                .map(|t| {
                    let mut res = CreatableTopicResult::default();
                    res.name = t.name;
                    res
                })
                .collect();
            encode(cid, v, &r)
        }
        ApiKey::Metadata => {
            let req = MetadataRequest::decode(&mut frame, v).unwrap();
            let mut b = MetadataResponseBroker::default();
            b.node_id = 1.into();
            b.host = StrBytes::from_static_str("127.0.0.1");
            b.port = port as i32;
            let mut r = MetadataResponse::default();
            r.brokers = vec![b];
            r.topics = req
                .topics
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    let mut mt = MetadataResponseTopic::default();
                    mt.name = t.name;
                    mt.partitions = (0..PARTITIONS)
                        .map(|i| {
                            let mut p = MetadataResponsePartition::default();
                            p.partition_index = i;
                            p.leader_id = 1.into();
                            p
                        })
                        .collect();
                    mt
                })
                .collect();
            encode(cid, v, &r)
        }
        ApiKey::Produce => {
            let req = ProduceRequest::decode(&mut frame, v).unwrap();
            let acks = req.acks;
            let mut r = ProduceResponse::default();
            let mut logs = store.lock().unwrap();
            for t in req.topic_data {
                let mut tr = TopicProduceResponse::default();
                tr.name = t.name;
                for p in t.partition_data {
                    let log = logs.entry(p.index).or_default();
                    let mut batch = BytesMut::from(&p.records.unwrap()[..]);
                    let base = log.next;
                    batch[0..8].copy_from_slice(&base.to_be_bytes());
                    let last_delta = (&batch[23..27]).get_i32();
                    log.next += last_delta as i64 + 1;
                    log.batches.push((base, batch.freeze()));
                    let mut pr = PartitionProduceResponse::default();
                    pr.index = p.index;
                    pr.base_offset = base;
                    tr.partition_responses.push(pr);
                }
                r.responses.push(tr);
            }
            if acks == 0 {
                return None;
            }
            encode(cid, v, &r)
        }
        ApiKey::ListOffsets => {
            let req = ListOffsetsRequest::decode(&mut frame, v).unwrap();
            let logs = store.lock().unwrap();
            let mut r = ListOffsetsResponse::default();
            for t in req.topics {
                let mut tr = ListOffsetsTopicResponse::default();
                tr.name = t.name;
                for p in t.partitions {
                    let mut pr = ListOffsetsPartitionResponse::default();
                    pr.partition_index = p.partition_index;
                    pr.offset = match p.timestamp {
                        -2 => 0,
                        _ => logs.get(&p.partition_index).map_or(0, |l| l.next),
                    };
                    tr.partitions.push(pr);
                }
                r.topics.push(tr);
            }
            encode(cid, v, &r)
        }
        ApiKey::Fetch => {
            let req = FetchRequest::decode(&mut frame, v).unwrap();
            let logs = store.lock().unwrap();
            let mut r = FetchResponse::default();
            for t in req.topics {
                let mut tr = FetchableTopicResponse::default();
                tr.topic = t.topic;
                for p in t.partitions {
                    let mut pd = PartitionData::default();
                    pd.partition_index = p.partition;
                    let mut out = BytesMut::new();
                    if let Some(log) = logs.get(&p.partition) {
                        pd.high_watermark = log.next;
                        for (base, b) in &log.batches {
                            let last = base + (&b[23..27]).get_i32() as i64;
                            if last < p.fetch_offset {
                                continue;
                            }
                            if !out.is_empty()
                                && out.len() + b.len() > p.partition_max_bytes as usize
                            {
                                break;
                            }
                            out.extend_from_slice(b);
                        }
                    }
                    pd.records = Some(out.freeze());
                    tr.partitions.push(pd);
                }
                r.responses.push(tr);
            }
            encode(cid, v, &r)
        }
        other => panic!("mock broker does not handle {other:?}"),
    })
}

async fn serve_conn(mut sock: TcpStream, store: Store, port: u16) {
    let mut buf = BytesMut::new();
    loop {
        while buf.len() >= 4 {
            let len = (&buf[..4]).get_i32() as usize;
            if buf.len() < 4 + len {
                break;
            }
            buf.advance(4);
            let frame = buf.split_to(len).freeze();
            if let Some(resp) = handle(&store, port, frame) {
                if sock.write_all(&resp).await.is_err() {
                    return;
                }
            }
        }
        match sock.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Starts the mock on a free loopback port in a background thread.
fn start_mock() -> u16 {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = std_listener.local_addr().unwrap().port();
    std_listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            let store: Store = Arc::default();
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                tokio::spawn(serve_conn(sock, store.clone(), port));
            }
        });
    });
    port
}

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
