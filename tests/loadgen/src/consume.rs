//! `loadgen consume`: ListOffsets, then one Fetch loop per leader connection.
//!
//! Records are counted from batch headers only (no decompression), which is what a
//! broker benchmark needs; `--verify` decodes every record as well.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse};
use kafka_protocol::records::RecordBatchDecoder;
use uuid::Uuid;

use crate::batch_header::{batch_ranges, scan};
use crate::cli::ConsumeArgs;
use crate::cluster::{self, error_name, topic_name};
use crate::conn::Connection;
use crate::report::{cpu_pct, ConsumeReport, MB};

struct FetchPlan {
    topic: String,
    topic_id: Uuid,
    version: i16,
    max_bytes: i32,
    partition_max_bytes: i32,
    max_wait_ms: i32,
    verify: bool,
    idle_timeout: Duration,
    /// Stop once this many records were consumed over all connections.
    target: Option<u64>,
    deadline: Option<Instant>,
}

#[derive(Default)]
struct FetchOutcome {
    records: u64,
    bytes: u64,
    value_bytes: u64,
    fetches: u64,
    errors: BTreeMap<String, u64>,
    detail: Option<String>,
    last_record: Option<Instant>,
}

impl FetchOutcome {
    fn merge(&mut self, o: FetchOutcome) {
        self.records += o.records;
        self.bytes += o.bytes;
        self.value_bytes += o.value_bytes;
        self.fetches += o.fetches;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        if self.detail.is_none() {
            self.detail = o.detail;
        }
        self.last_record = self.last_record.max(o.last_record);
    }
}

pub async fn run(args: &ConsumeArgs) -> Result<ConsumeReport> {
    let c = &args.common;
    let mut boot = Connection::connect(&c.bootstrap, &c.client_id, c.request_timeout).await?;
    let versions = cluster::api_versions(&mut boot).await?;
    let layout =
        cluster::wait_for_layout(&mut boot, &versions, &c.topic, c.request_timeout).await?;
    let version = versions.pick(ApiKey::Fetch, 4, 17)?;
    if version >= 13 && layout.topic_id.is_nil() {
        bail!("broker needs Fetch v13+ (topic ids) but Metadata gave no topic id");
    }
    let partitions: Vec<i32> = layout.leaders.keys().copied().collect();

    // Starting offsets, asked of each leader on the connection that will fetch.
    let mut fetchers = Vec::new();
    for (node, parts) in layout.by_leader(&partitions) {
        let addr = layout.broker_addr(node)?;
        let mut conn = Connection::connect(addr, &c.client_id, c.request_timeout).await?;
        let offsets = cluster::list_offsets(
            &mut conn,
            &versions,
            &c.topic,
            &parts,
            args.from.list_offsets_timestamp(),
        )
        .await?;
        fetchers.push((conn, offsets));
    }

    let start = Instant::now();
    let cpu_before = crate::cpu::process_cpu_time();
    let plan = Arc::new(FetchPlan {
        topic: c.topic.clone(),
        topic_id: layout.topic_id,
        version,
        max_bytes: args.fetch_max_bytes,
        partition_max_bytes: args.partition_max_bytes,
        max_wait_ms: args.fetch_max_wait_ms,
        verify: args.verify,
        idle_timeout: args.idle_timeout,
        target: c.messages,
        deadline: c.duration.map(|d| start + d),
    });
    let consumed = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = fetchers
        .into_iter()
        .map(|(conn, offsets)| {
            tokio::spawn(fetch_loop(plan.clone(), conn, offsets, consumed.clone()))
        })
        .collect();
    let mut total = FetchOutcome::default();
    for t in tasks {
        match t.await {
            Ok(o) => total.merge(o),
            Err(e) => total.detail = Some(format!("fetch task failed: {e}")),
        }
    }
    if let Some(n) = c.messages {
        if total.records < n && total.detail.is_none() {
            total.detail = Some(format!(
                "only {} of {n} records arrived (idle for {:?}{})",
                total.records,
                args.idle_timeout,
                if c.duration.is_some() {
                    " or out of time"
                } else {
                    ""
                }
            ));
        }
    }
    let seconds = total
        .last_record
        .map_or(0.0, |t| t.saturating_duration_since(start).as_secs_f64());
    let per_sec = |x: f64| if seconds > 0.0 { x / seconds } else { 0.0 };
    let mb = total.bytes as f64 / MB;
    let wall = start.elapsed().as_secs_f64();
    Ok(ConsumeReport {
        mode: "consume",
        topic: c.topic.clone(),
        partitions: partitions.len(),
        messages: total.records,
        mb,
        value_mb: args.verify.then(|| total.value_bytes as f64 / MB),
        seconds,
        msgs_per_sec: per_sec(total.records as f64),
        mb_per_sec: per_sec(mb),
        fetches: total.fetches,
        errors: total.errors,
        error_detail: total.detail,
        client_cpu_pct: cpu_pct(cpu_before, crate::cpu::process_cpu_time(), wall),
    })
}

fn build_request(plan: &FetchPlan, positions: &BTreeMap<i32, i64>) -> FetchRequest {
    let mut topic = FetchTopic::default();
    if plan.version >= 13 {
        topic.topic_id = plan.topic_id;
    } else {
        topic.topic = topic_name(&plan.topic);
    }
    topic.partitions = positions
        .iter()
        .map(|(&p, &offset)| {
            let mut fp = FetchPartition::default();
            fp.partition = p;
            fp.fetch_offset = offset;
            fp.partition_max_bytes = plan.partition_max_bytes;
            fp
        })
        .collect();
    let mut req = FetchRequest::default();
    req.max_wait_ms = plan.max_wait_ms;
    req.min_bytes = 1;
    req.max_bytes = plan.max_bytes;
    req.topics = vec![topic];
    req
}

async fn fetch_loop(
    plan: Arc<FetchPlan>,
    mut conn: Connection,
    mut positions: BTreeMap<i32, i64>,
    consumed: Arc<AtomicU64>,
) -> FetchOutcome {
    let mut out = FetchOutcome::default();
    let mut last_progress = Instant::now();
    loop {
        let done = plan
            .target
            .is_some_and(|n| consumed.load(Ordering::Relaxed) >= n)
            || plan.deadline.is_some_and(|d| Instant::now() >= d);
        if done {
            return out;
        }
        let req = build_request(&plan, &positions);
        let resp = match conn.call(&req, plan.version).await {
            Ok(r) => r,
            Err(e) => {
                *out.errors.entry("io".into()).or_default() += 1;
                out.detail = Some(format!("{e:#}"));
                return out;
            }
        };
        out.fetches += 1;
        let now = Instant::now();
        match apply(&plan, &resp, &mut positions, &mut out) {
            Ok(0) => {
                if now.saturating_duration_since(last_progress) >= plan.idle_timeout {
                    return out;
                }
            }
            Ok(got) => {
                consumed.fetch_add(got, Ordering::Relaxed);
                out.last_record = Some(now);
                last_progress = now;
            }
            Err(e) => {
                out.detail = Some(e.to_string());
                return out;
            }
        }
    }
}

/// Counts the records of one Fetch response and moves the positions; returns the
/// number of records, or an error that should stop this fetcher.
fn apply(
    plan: &FetchPlan,
    resp: &FetchResponse,
    positions: &mut BTreeMap<i32, i64>,
    out: &mut FetchOutcome,
) -> Result<u64> {
    if resp.error_code != 0 {
        *out.errors.entry(error_name(resp.error_code)).or_default() += 1;
        bail!("Fetch failed: {}", error_name(resp.error_code));
    }
    let mut got = 0;
    for p in resp.responses.iter().flat_map(|t| t.partitions.iter()) {
        if p.error_code != 0 {
            *out.errors.entry(error_name(p.error_code)).or_default() += 1;
            bail!(
                "Fetch of partition {}: {}",
                p.partition_index,
                error_name(p.error_code)
            );
        }
        let Some(records) = &p.records else { continue };
        let s = scan(records);
        if s.unsupported > 0 {
            bail!(
                "partition {} returned a batch that is not v2",
                p.partition_index
            );
        }
        if let Some(next) = s.next_offset {
            positions.insert(p.partition_index, next);
        }
        if plan.verify {
            out.value_bytes += verify(records, p.partition_index)?;
        }
        got += s.records;
        out.bytes += s.bytes;
    }
    out.records += got;
    Ok(got)
}

/// Decodes every record of the complete batches; returns their value bytes.
fn verify(records: &Bytes, partition: i32) -> Result<u64> {
    let mut value_bytes = 0;
    for r in batch_ranges(records) {
        let mut batch = records.slice(r);
        let expected = scan(&batch).records;
        let set = match RecordBatchDecoder::decode(&mut batch) {
            Ok(s) => s,
            Err(e) => bail!("partition {partition}: batch does not decode: {e}"),
        };
        if set.records.len() as u64 != expected && !set.records.iter().any(|r| r.control) {
            bail!(
                "partition {partition}: header says {expected} records, batch holds {}",
                set.records.len()
            );
        }
        value_bytes += set
            .records
            .iter()
            .map(|r| r.value.as_ref().map_or(0, |v| v.len() as u64))
            .sum::<u64>();
    }
    Ok(value_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::encode_batch;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::records::Compression;

    fn plan(version: i16, verify: bool) -> FetchPlan {
        FetchPlan {
            topic: "t".into(),
            topic_id: Uuid::from_u128(7),
            version,
            max_bytes: 1000,
            partition_max_bytes: 100,
            max_wait_ms: 500,
            verify,
            idle_timeout: Duration::from_secs(1),
            target: None,
            deadline: None,
        }
    }

    #[test]
    fn request_uses_names_or_ids_by_version() {
        let pos = BTreeMap::from([(0, 5), (1, 9)]);
        let r = build_request(&plan(12, false), &pos);
        assert_eq!(r.topics[0].topic.0.as_str(), "t");
        assert!(r.topics[0].topic_id.is_nil());
        assert_eq!(r.topics[0].partitions[1].fetch_offset, 9);
        let r = build_request(&plan(13, false), &pos);
        assert_eq!(r.topics[0].topic_id, Uuid::from_u128(7));
    }

    fn response(partition: i32, records: Option<Bytes>, error_code: i16) -> FetchResponse {
        let mut p = PartitionData::default();
        p.partition_index = partition;
        p.records = records;
        p.error_code = error_code;
        let mut t = FetchableTopicResponse::default();
        t.partitions = vec![p];
        let mut r = FetchResponse::default();
        r.responses = vec![t];
        r
    }

    #[test]
    fn apply_counts_and_advances() {
        let vals: Vec<Bytes> = (0..4).map(|_| Bytes::from_static(b"abcdef")).collect();
        let batch = encode_batch(&vals, 0, Compression::Lz4).unwrap();
        let mut pos = BTreeMap::from([(3, 0)]);
        let mut out = FetchOutcome::default();
        let got = apply(
            &plan(12, true),
            &response(3, Some(batch), 0),
            &mut pos,
            &mut out,
        )
        .unwrap();
        assert_eq!(got, 4);
        assert_eq!(pos[&3], 4);
        assert_eq!(out.value_bytes, 24);
    }

    #[test]
    fn apply_stops_on_partition_error() {
        let mut pos = BTreeMap::from([(0, 0)]);
        let mut out = FetchOutcome::default();
        assert!(apply(&plan(12, false), &response(0, None, 1), &mut pos, &mut out).is_err());
        assert_eq!(out.errors.values().sum::<u64>(), 1);
    }
}
