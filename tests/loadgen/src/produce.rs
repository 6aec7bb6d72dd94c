//! `loadgen produce`: K producer tasks, each with one pipelined connection per leader.
//!
//! A producer task fills per-partition batches (see `accumulator`) and writes Produce
//! requests; a reader task per connection matches responses to requests in order
//! (Kafka answers in request order on one connection) and records each record's
//! latency from enqueue to ack. A semaphore bounds the requests in flight.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::accumulator::{Accumulator, PendingBatch};
use crate::batch::encode_batch;
use crate::cli::ProduceArgs;
use crate::cluster::{self, error_name, topic_name, TopicLayout};
use crate::conn::Connection;
use crate::histogram::Histogram;
use crate::payload::Payloads;
use crate::rate::RateLimiter;
use crate::report::{cpu_pct, ProduceReport};
use crate::wire::{decode_response, encode_request, FrameReader};

/// Settings every producer task shares.
struct Plan {
    topic: String,
    topic_id: Uuid,
    version: i16,
    acks: i16,
    ack_timeout_ms: i32,
    compression: Compression,
    batch_size: usize,
    linger: Duration,
    max_in_flight: usize,
    size: usize,
    request_timeout: Duration,
}

/// What one producer task (or one of its connections) observed.
#[derive(Default)]
struct Outcome {
    hist: Histogram,
    errors: BTreeMap<String, u64>,
    detail: Option<String>,
    last_ack: Option<Instant>,
}

impl Outcome {
    fn fail(&mut self, what: &str, records: u64) {
        if records > 0 {
            *self.errors.entry(what.to_string()).or_default() += records;
        }
    }

    fn merge(&mut self, other: Outcome) {
        self.hist.merge(&other.hist);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        if self.detail.is_none() {
            self.detail = other.detail;
        }
        self.last_ack = self.last_ack.max(other.last_ack);
    }
}

struct SentBatch {
    partition: i32,
    enqueued: Vec<Instant>,
}

/// A request on the wire, waiting for its response; holds its in-flight permit.
struct InFlight {
    correlation_id: i32,
    batches: Vec<SentBatch>,
    _permit: OwnedSemaphorePermit,
}

fn record_count(batches: &[SentBatch]) -> u64 {
    batches.iter().map(|b| b.enqueued.len() as u64).sum()
}

pub async fn run(args: &ProduceArgs) -> Result<ProduceReport> {
    let c = &args.common;
    let mut boot = Connection::connect(&c.bootstrap, &c.client_id, c.request_timeout).await?;
    let versions = cluster::api_versions(&mut boot).await?;
    if args.create {
        cluster::create_topic(
            &mut boot,
            &versions,
            &c.topic,
            args.partitions,
            args.replication_factor,
        )
        .await?;
    }
    let layout =
        cluster::wait_for_layout(&mut boot, &versions, &c.topic, c.request_timeout).await?;
    let partitions = choose_partitions(&layout, args.partitions)?;
    let version = versions.pick(ApiKey::Produce, 3, 13)?;
    if version >= 13 && layout.topic_id.is_nil() {
        bail!("broker needs Produce v13 (topic ids) but Metadata gave no topic id");
    }
    let plan = Arc::new(Plan {
        topic: c.topic.clone(),
        topic_id: layout.topic_id,
        version,
        acks: args.acks,
        ack_timeout_ms: args.ack_timeout_ms,
        compression: args.compression.to_compression(),
        batch_size: args.batch_size,
        linger: Duration::from_millis(args.linger_ms),
        max_in_flight: args.max_in_flight,
        size: args.size,
        request_timeout: c.request_timeout,
    });

    // Connect everything before the clock starts.
    let by_leader = layout.by_leader(&partitions);
    let mut producers = Vec::with_capacity(args.producers);
    for _ in 0..args.producers {
        let mut conns = Vec::new();
        for (&node, parts) in &by_leader {
            let addr = layout.broker_addr(node)?;
            let conn = Connection::connect(addr, &c.client_id, c.request_timeout).await?;
            conns.push((parts.clone(), conn));
        }
        producers.push(conns);
    }

    let start = Instant::now();
    let cpu_before = crate::cpu::process_cpu_time();
    let deadline = c.duration.map(|d| start + d);
    let per_task_rate = args.rate as f64 / args.producers as f64;
    let quotas = split_quota(c.messages, args.producers);
    let mut tasks = Vec::new();
    for (i, (conns, quota)) in producers.into_iter().zip(quotas).enumerate() {
        let plan = plan.clone();
        let partitions = partitions.clone();
        tasks.push(tokio::spawn(async move {
            producer_task(
                plan,
                conns,
                partitions,
                i,
                quota,
                per_task_rate,
                start,
                deadline,
            )
            .await
        }));
    }
    let mut total = Outcome::default();
    for t in tasks {
        match t.await {
            Ok(o) => total.merge(o),
            Err(e) => total.detail = Some(format!("producer task failed: {e}")),
        }
    }
    let end = total.last_ack.unwrap_or_else(Instant::now);
    let seconds = end.saturating_duration_since(start).as_secs_f64();
    let wall = start.elapsed().as_secs_f64();
    let mut report = ProduceReport::new(
        &c.topic,
        args.size,
        partitions.len(),
        args.acks,
        format!("{:?}", args.compression).to_lowercase(),
        args.producers,
        &total.hist,
        seconds,
        total.errors,
        total.detail,
    );
    report.client_cpu_pct = cpu_pct(cpu_before, crate::cpu::process_cpu_time(), wall);
    Ok(report)
}

/// Partitions 0..n-1 of the topic (all when n == 0).
fn choose_partitions(layout: &TopicLayout, n: i32) -> Result<Vec<i32>> {
    let all: Vec<i32> = layout.leaders.keys().copied().collect();
    if n == 0 {
        return Ok(all);
    }
    if n as usize > all.len() {
        bail!(
            "--partitions {n} but topic has only {} partitions",
            all.len()
        );
    }
    Ok(all.into_iter().take(n as usize).collect())
}

/// Splits a record count over producers; `None` (duration mode) means no limit.
fn split_quota(total: Option<u64>, producers: usize) -> Vec<u64> {
    let k = producers as u64;
    (0..k)
        .map(|i| match total {
            None => u64::MAX,
            Some(n) => n / k + u64::from(i < n % k),
        })
        .collect()
}

/// One connection as seen by the producer task: the write half plus its reader task.
struct LeaderConn {
    partitions: Vec<i32>,
    writer: OwnedWriteHalf,
    permits: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<InFlight>,
    reader: JoinHandle<Outcome>,
    next_correlation_id: i32,
    client_id: StrBytes,
    buf: BytesMut,
}

#[allow(clippy::too_many_arguments)]
async fn producer_task(
    plan: Arc<Plan>,
    conns: Vec<(Vec<i32>, Connection)>,
    partitions: Vec<i32>,
    index: usize,
    quota: u64,
    rate: f64,
    start: Instant,
    deadline: Option<Instant>,
) -> Outcome {
    let mut own = Outcome::default();
    let mut leaders: Vec<LeaderConn> = conns
        .into_iter()
        .map(|(parts, conn)| {
            let p = conn.into_parts();
            let (tx, rx) = mpsc::unbounded_channel();
            let reader = tokio::spawn(read_acks(plan.clone(), p.reader, p.frames, rx));
            LeaderConn {
                partitions: parts,
                writer: p.writer,
                permits: Arc::new(Semaphore::new(plan.max_in_flight)),
                tx,
                reader,
                next_correlation_id: p.next_correlation_id,
                client_id: p.client_id,
                buf: BytesMut::new(),
            }
        })
        .collect();
    let leader_of: HashMap<i32, usize> = leaders
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.partitions.iter().map(move |&p| (p, i)))
        .collect();
    let mut acc = Accumulator::new(partitions, plan.batch_size, plan.linger, index);
    let mut payloads = Payloads::new(plan.size, index * 1009);
    let mut limiter = RateLimiter::new(rate, start);
    let mut remaining = quota;

    if let Err(e) = generate(
        &plan,
        &mut leaders,
        &leader_of,
        &mut acc,
        &mut payloads,
        &mut limiter,
        &mut remaining,
        deadline,
        &mut own,
    )
    .await
    {
        own.detail = Some(e.to_string());
        let unsent: u64 = acc
            .drain_ready(Instant::now(), true, |_| true)
            .iter()
            .map(|b| b.values.len() as u64)
            .sum();
        own.fail("not sent", unsent);
    }
    // Closing the channel lets each reader finish the requests still in flight.
    for l in leaders {
        drop(l.tx);
        drop(l.writer);
        match l.reader.await {
            Ok(o) => own.merge(o),
            Err(e) => own.detail = Some(format!("ack reader failed: {e}")),
        }
    }
    own
}

#[allow(clippy::too_many_arguments)]
async fn generate(
    plan: &Plan,
    leaders: &mut [LeaderConn],
    leader_of: &HashMap<i32, usize>,
    acc: &mut Accumulator,
    payloads: &mut Payloads,
    limiter: &mut RateLimiter,
    remaining: &mut u64,
    deadline: Option<Instant>,
    own: &mut Outcome,
) -> Result<()> {
    loop {
        let now = Instant::now();
        let gen_done = *remaining == 0 || deadline.is_some_and(|d| now >= d);
        if gen_done && acc.is_empty() {
            return Ok(());
        }
        // Block for a permit only when buffering more is not possible or not wanted.
        let must_block = gen_done || acc.is_full_ahead();
        let mut sent_any = false;
        let mut waiting_on = None;
        for (li, leader) in leaders.iter_mut().enumerate() {
            let mine = |p: i32| leader_of.get(&p) == Some(&li);
            if !acc.has_ready(now, gen_done, mine) {
                continue;
            }
            let permit = match leader.permits.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) if must_block => leader
                    .permits
                    .clone()
                    .acquire_owned()
                    .await
                    .context("in-flight limiter closed")?,
                Err(_) => {
                    waiting_on.get_or_insert(li);
                    continue;
                }
            };
            let batches = acc.drain_ready(Instant::now(), gen_done, mine);
            leader.send(plan, batches, permit, own).await?;
            sent_any = true;
        }
        if sent_any {
            continue;
        }
        if must_block {
            // Everything non-empty is ready when must_block holds, so this means a
            // partition without a leader connection: never expected, but do not spin.
            bail!("records buffered for a partition without a leader connection");
        }
        if limiter.try_acquire(now) {
            acc.append(payloads.next_value(), now);
            *remaining -= 1;
            continue;
        }
        // Sleep until a token, a linger deadline, the end of the run or a free permit.
        let mut wake = limiter.next_available(now);
        if let Some(d) = acc.next_deadline().filter(|d| *d > now) {
            wake = wake.min(d);
        }
        if let Some(d) = deadline {
            wake = wake.min(d);
        }
        let sleep = tokio::time::sleep_until(wake.into());
        match waiting_on {
            Some(li) => {
                let permits = leaders[li].permits.clone();
                tokio::select! {
                    _ = sleep => {}
                    _ = permits.acquire_owned() => {}
                }
            }
            None => sleep.await,
        }
    }
}

impl LeaderConn {
    async fn send(
        &mut self,
        plan: &Plan,
        batches: Vec<PendingBatch>,
        permit: OwnedSemaphorePermit,
        own: &mut Outcome,
    ) -> Result<()> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut topic = TopicProduceData::default();
        topic.name = topic_name(&plan.topic);
        topic.topic_id = plan.topic_id;
        let mut sent = Vec::with_capacity(batches.len());
        for b in batches {
            let mut pd = PartitionProduceData::default();
            pd.index = b.partition;
            pd.records = Some(encode_batch(&b.values, timestamp, plan.compression)?);
            topic.partition_data.push(pd);
            sent.push(SentBatch {
                partition: b.partition,
                enqueued: b.enqueued,
            });
        }
        let mut req = ProduceRequest::default();
        req.acks = plan.acks;
        req.timeout_ms = plan.ack_timeout_ms;
        req.topic_data = vec![topic];

        let cid = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        self.buf.clear();
        encode_request(&mut self.buf, cid, plan.version, &self.client_id, &req)?;
        let write = tokio::time::timeout(plan.request_timeout, self.writer.write_all(&self.buf));
        let result = match write.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::Error::new(e).context("writing Produce request")),
            Err(_) => Err(anyhow::anyhow!(
                "writing Produce request took longer than {:?}",
                plan.request_timeout
            )),
        };
        if let Err(e) = result {
            own.fail("io", record_count(&sent));
            return Err(e);
        }
        if plan.acks == 0 {
            // No response comes for acks=0: the record is done once written.
            let now = Instant::now();
            record_latencies(&mut own.hist, &sent, now);
            own.last_ack = Some(now);
            return Ok(());
        }
        let inflight = InFlight {
            correlation_id: cid,
            batches: sent,
            _permit: permit,
        };
        if let Err(mpsc::error::SendError(lost)) = self.tx.send(inflight) {
            own.fail("io", record_count(&lost.batches));
            bail!("connection to the leader failed (see the other errors)");
        }
        Ok(())
    }
}

fn record_latencies(hist: &mut Histogram, batches: &[SentBatch], now: Instant) {
    for b in batches {
        for e in &b.enqueued {
            hist.record(now.saturating_duration_since(*e).as_micros() as u64);
        }
    }
}

/// Reads Produce responses in request order and accounts each batch's records.
async fn read_acks(
    plan: Arc<Plan>,
    mut reader: OwnedReadHalf,
    mut frames: FrameReader,
    mut rx: mpsc::UnboundedReceiver<InFlight>,
) -> Outcome {
    let mut out = Outcome::default();
    // acks=all may legitimately take up to the broker-side timeout.
    let wait = plan.request_timeout + Duration::from_millis(plan.ack_timeout_ms.max(0) as u64);
    while let Some(inflight) = rx.recv().await {
        let frame = match tokio::time::timeout(wait, frames.next_frame(&mut reader)).await {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                out.fail("io", record_count(&inflight.batches));
                out.detail = Some(format!("reading Produce response: {e}"));
                break;
            }
            Err(_) => {
                out.fail("timeout", record_count(&inflight.batches));
                out.detail = Some(format!("no Produce response within {wait:?}"));
                break;
            }
        };
        let now = Instant::now();
        match decode_response::<ProduceRequest>(frame, plan.version, inflight.correlation_id) {
            Ok(resp) => account(&mut out, &resp, &inflight.batches, now),
            Err(e) => {
                out.fail("bad response", record_count(&inflight.batches));
                out.detail = Some(e.to_string());
                break;
            }
        }
    }
    // After a failure, whatever is still queued will never be answered.
    rx.close();
    while let Ok(lost) = rx.try_recv() {
        out.fail("io", record_count(&lost.batches));
    }
    out
}

/// Applies one Produce response to the batches of its request.
fn account(out: &mut Outcome, resp: &ProduceResponse, batches: &[SentBatch], now: Instant) {
    let codes: HashMap<i32, i16> = resp
        .responses
        .iter()
        .flat_map(|t| t.partition_responses.iter())
        .map(|p| (p.index, p.error_code))
        .collect();
    for b in batches {
        match codes.get(&b.partition) {
            Some(0) => {
                record_latencies(&mut out.hist, std::slice::from_ref(b), now);
                out.last_ack = Some(now);
            }
            Some(&code) => out.fail(&error_name(code), b.enqueued.len() as u64),
            None => out.fail("missing in response", b.enqueued.len() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };

    #[test]
    fn quotas_add_up() {
        assert_eq!(split_quota(Some(10), 3), vec![4, 3, 3]);
        assert_eq!(split_quota(Some(3), 3), vec![1, 1, 1]);
        assert_eq!(split_quota(None, 2), vec![u64::MAX, u64::MAX]);
    }

    #[test]
    fn response_accounting() {
        let t0 = Instant::now();
        let now = t0 + Duration::from_millis(3);
        let batches = vec![
            SentBatch {
                partition: 0,
                enqueued: vec![t0, t0],
            },
            SentBatch {
                partition: 1,
                enqueued: vec![t0],
            },
            SentBatch {
                partition: 2,
                enqueued: vec![t0],
            },
        ];
        let part = |index, error_code| {
            let mut p = PartitionProduceResponse::default();
            p.index = index;
            p.error_code = error_code;
            p
        };
        let mut topic = TopicProduceResponse::default();
        topic.partition_responses = vec![part(0, 0), part(1, 6)];
        let mut resp = ProduceResponse::default();
        resp.responses = vec![topic];
        let mut out = Outcome::default();
        account(&mut out, &resp, &batches, now);
        assert_eq!(out.hist.count(), 2);
        assert_eq!(out.hist.quantile(0.5), 3000);
        assert_eq!(out.errors.get("missing in response"), Some(&1));
        assert_eq!(out.errors.values().sum::<u64>(), 2);
        assert!(out.errors.keys().any(|k| k.contains("(6)")));
    }
}
