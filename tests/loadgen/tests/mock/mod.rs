//! A tiny in-memory Kafka broker for testing loadgen (and the bench script) without
//! a real broker. It speaks just enough Kafka (ApiVersions, Metadata, CreateTopics,
//! Produce, ListOffsets, Fetch): topics come from CreateTopics (unknown ones get
//! UNKNOWN_TOPIC_OR_PARTITION), every partition is led by node 1,
//! record batches are kept in memory with offsets assigned as a leader does.
//! Not a benchmark target: it answers Fetch at once even when there is no data.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
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

#[derive(Default)]
struct Log {
    /// (base offset, batch bytes)
    batches: Vec<(i64, Bytes)>,
    next: i64,
}

#[derive(Default)]
struct State {
    /// topic -> partition count
    topics: HashMap<String, i32>,
    logs: HashMap<(String, i32), Log>,
}

type Store = Arc<Mutex<State>>;

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

/// `Ok(None)`: no response (acks=0); `Err`: close the connection.
fn handle(store: &Store, port: u16, mut frame: Bytes) -> Result<Option<BytesMut>, ()> {
    let header = decode_request_header_from_buffer(&mut frame).map_err(|_| ())?;
    let (cid, v) = (header.correlation_id, header.request_api_version);
    let key = ApiKey::try_from(header.request_api_key).map_err(|_| ())?;
    Ok(Some(match key {
        ApiKey::ApiVersions => {
            let mut r = ApiVersionsResponse::default();
            r.api_keys = ranges();
            encode(cid, v, &r)
        }
        ApiKey::CreateTopics => {
            let req = CreateTopicsRequest::decode(&mut frame, v).unwrap();
            let mut state = store.lock().unwrap();
            let mut r = CreateTopicsResponse::default();
            r.topics = req
                .topics
                .into_iter()
                .map(|t| {
                    let mut res = CreatableTopicResult::default();
                    let name = t.name.0.to_string();
                    match state.topics.entry(name) {
                        Entry::Occupied(_) => res.error_code = 36, // TOPIC_ALREADY_EXISTS
                        Entry::Vacant(e) => {
                            e.insert(t.num_partitions.max(1));
                        }
                    }
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
            let state = store.lock().unwrap();
            let mut r = MetadataResponse::default();
            r.brokers = vec![b];
            r.topics = req
                .topics
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    let mut mt = MetadataResponseTopic::default();
                    let count = t
                        .name
                        .as_ref()
                        .and_then(|n| state.topics.get(n.0.as_str()).copied());
                    mt.name = t.name;
                    let Some(count) = count else {
                        mt.error_code = 3; // UNKNOWN_TOPIC_OR_PARTITION
                        return mt;
                    };
                    mt.partitions = (0..count)
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
            let mut state = store.lock().unwrap();
            for t in req.topic_data {
                let mut tr = TopicProduceResponse::default();
                let topic = t.name.0.to_string();
                tr.name = t.name;
                for p in t.partition_data {
                    let log = state.logs.entry((topic.clone(), p.index)).or_default();
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
                return Ok(None);
            }
            encode(cid, v, &r)
        }
        ApiKey::ListOffsets => {
            let req = ListOffsetsRequest::decode(&mut frame, v).unwrap();
            let state = store.lock().unwrap();
            let mut r = ListOffsetsResponse::default();
            for t in req.topics {
                let mut tr = ListOffsetsTopicResponse::default();
                let topic = t.name.0.to_string();
                tr.name = t.name;
                for p in t.partitions {
                    let mut pr = ListOffsetsPartitionResponse::default();
                    pr.partition_index = p.partition_index;
                    pr.offset = match p.timestamp {
                        -2 => 0,
                        _ => state
                            .logs
                            .get(&(topic.clone(), p.partition_index))
                            .map_or(0, |l| l.next),
                    };
                    tr.partitions.push(pr);
                }
                r.topics.push(tr);
            }
            encode(cid, v, &r)
        }
        ApiKey::Fetch => {
            let req = FetchRequest::decode(&mut frame, v).unwrap();
            let state = store.lock().unwrap();
            let mut r = FetchResponse::default();
            for t in req.topics {
                let mut tr = FetchableTopicResponse::default();
                let topic = t.topic.0.to_string();
                tr.topic = t.topic;
                for p in t.partitions {
                    let mut pd = PartitionData::default();
                    pd.partition_index = p.partition;
                    let mut out = BytesMut::new();
                    if let Some(log) = state.logs.get(&(topic.clone(), p.partition)) {
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
        other => {
            eprintln!("mock broker: closing connection on unhandled {other:?}");
            return Err(());
        }
    }))
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
            match handle(&store, port, frame) {
                Ok(Some(resp)) => {
                    if sock.write_all(&resp).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(()) => return,
            }
        }
        match sock.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Serves forever on `listener`.
pub async fn serve(listener: TcpListener) {
    let port = listener.local_addr().unwrap().port();
    let store: Store = Arc::default();
    loop {
        let (sock, _) = listener.accept().await.unwrap();
        sock.set_nodelay(true).unwrap();
        tokio::spawn(serve_conn(sock, store.clone(), port));
    }
}

/// Starts the mock on a free loopback port in a background thread.
#[allow(dead_code)]
pub fn start_mock() -> u16 {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = std_listener.local_addr().unwrap().port();
    std_listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move { serve(TcpListener::from_std(std_listener).unwrap()).await });
    });
    port
}
