//! Command-line arguments and their validation.
//!
//! Parsing helpers are plain functions so they can be unit tested without clap.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kafka_protocol::records::Compression;

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Kafka load generator: produce/consume throughput and latency over the Kafka wire protocol",
    long_about = "Kafka load generator in the spirit of kafka-producer-perf-test and \
                  kafka-consumer-perf-test. It speaks the Kafka protocol directly over TCP \
                  (no librdkafka), so its own CPU cost stays small when it shares a machine \
                  with the broker.\n\nExit status: 0 on success, 1 when any request failed \
                  or a broker answered with an error code, 2 on bad arguments.",
    after_help = "Examples:\n  \
        loadgen produce -t bench --create -p 8 --duration 30s --size 1024 --acks all\n  \
        loadgen consume -t bench --messages 1000000 --json\n  \
        loadgen produce -t lat --create -p 8 -d 15s --rate 20480 --acks all   # 20 MB/s of 1 KiB"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Runtime worker threads. The default 1 keeps the tool's cost to about one
    /// core, leaving the other to the broker on a 2-core machine.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Produce records and report throughput and per-record ack latency.
    Produce(ProduceArgs),
    /// Consume records from the beginning (or end) and report throughput.
    Consume(ConsumeArgs),
    /// Create a topic (an existing one is fine) and wait until every partition has a
    /// leader; for runs of other tools such as rdkafka_performance.
    CreateTopic(CreateTopicArgs),
}

#[derive(Debug, Args)]
pub struct CreateTopicArgs {
    /// Bootstrap broker, host:port.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,

    /// Topic to create.
    #[arg(long, short = 't')]
    pub topic: String,

    /// Number of partitions.
    #[arg(long, short = 'p')]
    pub partitions: i32,

    /// Replication factor (-1 = broker default).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub replication_factor: i16,

    /// Give up after this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
}

/// Options shared by both commands.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Bootstrap broker, host:port.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,

    /// Topic to use.
    #[arg(long, short = 't')]
    pub topic: String,

    /// Stop after this many records in total (over all producers, or all partitions).
    #[arg(long, short = 'n', required_unless_present = "duration")]
    pub messages: Option<u64>,

    /// Stop after this long, e.g. 30s, 500ms, 2m (plain numbers are seconds).
    #[arg(long, short = 'd', value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Print one JSON line with the results instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Client id sent in every request header.
    #[arg(long, default_value = "loadgen")]
    pub client_id: String,

    /// Give up on a single request (connect, metadata, fetch, ...) after this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Number of partitions: used with --create, and to spread records over
    /// partitions 0..N-1 (0 = all partitions the topic has).
    #[arg(long, short = 'p', default_value_t = 0)]
    pub partitions: i32,

    /// Create the topic first (an existing topic is fine).
    #[arg(long)]
    pub create: bool,

    /// Replication factor for --create (-1 = broker default).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub replication_factor: i16,

    /// Record value size in bytes.
    #[arg(long, short = 's', default_value_t = 1024)]
    pub size: usize,

    /// Acknowledgements: 0 (none; latency = time the request was written), 1 (leader) or all.
    #[arg(long, default_value = "1", value_parser = parse_acks, allow_hyphen_values = true)]
    pub acks: i16,

    /// Compression codec of the record batches.
    #[arg(long, value_enum, default_value_t = Codec::None)]
    pub compression: Codec,

    /// Target rate in records per second over all producers (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,

    /// Number of producer tasks, each with its own connection per leader broker.
    #[arg(long, short = 'k', default_value_t = 1)]
    pub producers: usize,

    /// Maximum bytes of record values in one partition batch (like batch.size).
    #[arg(long, default_value_t = 16384)]
    pub batch_size: usize,

    /// How long a non-full batch may wait for more records (like linger.ms).
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,

    /// Produce requests in flight per connection (like max.in.flight.requests.per.connection).
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: usize,

    /// Broker-side timeout for acks=all, in milliseconds.
    #[arg(long, default_value_t = 30000)]
    pub ack_timeout_ms: i32,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Where to start in each partition.
    #[arg(long, value_enum, default_value_t = StartFrom::Earliest)]
    pub from: StartFrom,

    /// Maximum bytes in one fetch response (like fetch.max.bytes).
    #[arg(long, default_value_t = 52_428_800)]
    pub fetch_max_bytes: i32,

    /// Maximum bytes per partition in one fetch response (like max.partition.fetch.bytes).
    #[arg(long, default_value_t = 1_048_576)]
    pub partition_max_bytes: i32,

    /// How long the broker may wait for data before answering a fetch.
    #[arg(long, default_value_t = 500)]
    pub fetch_max_wait_ms: i32,

    /// Decode every record and count value bytes (slower); by default only batch headers are read.
    #[arg(long)]
    pub verify: bool,

    /// Stop when no record arrived for this long (an error unless --messages was reached).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    pub fn to_compression(self) -> Compression {
        match self {
            Codec::None => Compression::None,
            Codec::Gzip => Compression::Gzip,
            Codec::Snappy => Compression::Snappy,
            Codec::Lz4 => Compression::Lz4,
            Codec::Zstd => Compression::Zstd,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartFrom {
    Earliest,
    Latest,
}

impl StartFrom {
    /// The ListOffsets timestamp that means this position.
    pub fn list_offsets_timestamp(self) -> i64 {
        match self {
            StartFrom::Earliest => -2,
            StartFrom::Latest => -1,
        }
    }
}

/// Parses `30s`, `500ms`, `2m`, `1h` or a plain number of seconds (fractions allowed).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{s}': expected e.g. 30s, 500ms, 2m"))?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit '{unit}' in '{s}': use ms, s, m or h"
            ))
        }
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("duration '{s}' must be greater than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses acks as Kafka spells them: `0`, `1`, `all` or `-1`.
pub fn parse_acks(s: &str) -> Result<i16, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "0" => Ok(0),
        "1" => Ok(1),
        "all" | "-1" => Ok(-1),
        other => Err(format!("invalid acks '{other}': use 0, 1 or all")),
    }
}

impl CommonArgs {
    fn validate(&self) -> Result<(), String> {
        if self.messages == Some(0) {
            return Err("--messages must be at least 1".into());
        }
        if self.topic.is_empty() {
            return Err("--topic must not be empty".into());
        }
        if !self.bootstrap.contains(':') {
            return Err(format!(
                "--bootstrap '{}' must be host:port",
                self.bootstrap
            ));
        }
        Ok(())
    }
}

impl ProduceArgs {
    /// Checks what clap cannot express; returns a message for the user.
    pub fn validate(&self) -> Result<(), String> {
        self.common.validate()?;
        if self.partitions < 0 {
            return Err("--partitions must be 0 (all) or more".into());
        }
        if self.create && self.partitions == 0 {
            return Err("--create needs --partitions N (N >= 1)".into());
        }
        if self.size == 0 {
            return Err("--size must be at least 1 byte".into());
        }
        if self.producers == 0 {
            return Err("--producers must be at least 1".into());
        }
        if self.max_in_flight == 0 {
            return Err("--max-in-flight must be at least 1".into());
        }
        if self.batch_size == 0 {
            return Err("--batch-size must be at least 1 byte".into());
        }
        if let Some(n) = self.common.messages {
            if n < self.producers as u64 {
                return Err(format!(
                    "--messages {n} is fewer than --producers {}",
                    self.producers
                ));
            }
        }
        Ok(())
    }
}

impl CreateTopicArgs {
    pub fn validate(&self) -> Result<(), String> {
        if self.partitions < 1 {
            return Err("--partitions must be at least 1".into());
        }
        if self.topic.is_empty() {
            return Err("--topic must not be empty".into());
        }
        Ok(())
    }
}

impl ConsumeArgs {
    /// Checks what clap cannot express; returns a message for the user.
    pub fn validate(&self) -> Result<(), String> {
        self.common.validate()?;
        if self.fetch_max_bytes <= 0 || self.partition_max_bytes <= 0 {
            return Err("--fetch-max-bytes and --partition-max-bytes must be positive".into());
        }
        if self.fetch_max_wait_ms < 0 {
            return Err("--fetch-max-wait-ms must not be negative".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("loadgen").chain(args.iter().copied()))
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn acks() {
        assert_eq!(parse_acks("all").unwrap(), -1);
        assert_eq!(parse_acks("-1").unwrap(), -1);
        assert_eq!(parse_acks("1").unwrap(), 1);
        assert_eq!(parse_acks("0").unwrap(), 0);
        assert!(parse_acks("2").is_err());
    }

    #[test]
    fn produce_needs_messages_or_duration() {
        assert!(parse(&["produce", "-t", "x"]).is_err());
        assert!(parse(&["produce", "-t", "x", "--messages", "10"]).is_ok());
        assert!(parse(&["produce", "-t", "x", "--duration", "10s"]).is_ok());
    }

    #[test]
    fn produce_validation() {
        let ok = |a: &[&str]| match parse(a).unwrap().command {
            Command::Produce(p) => p.validate(),
            _ => unreachable!(),
        };
        assert!(ok(&["produce", "-t", "x", "-n", "10"]).is_ok());
        assert!(ok(&["produce", "-t", "x", "-n", "10", "--create"]).is_err());
        assert!(ok(&["produce", "-t", "x", "-n", "10", "--create", "-p", "8"]).is_ok());
        assert!(ok(&["produce", "-t", "x", "-n", "0"]).is_err());
        assert!(ok(&["produce", "-t", "x", "-n", "2", "--producers", "3"]).is_err());
        assert!(ok(&["produce", "-t", "x", "-n", "2", "--size", "0"]).is_err());
        assert!(ok(&["produce", "-t", "x", "-n", "2", "--max-in-flight", "0"]).is_err());
        assert!(ok(&["produce", "-t", "x", "-n", "2", "--bootstrap", "nohost"]).is_err());
        assert!(parse(&["produce", "-t", "x", "-n", "2", "--acks", "7"]).is_err());
        assert!(parse(&["produce", "-t", "x", "-n", "2", "--compression", "brotli"]).is_err());
    }

    #[test]
    fn consume_validation() {
        let cli = parse(&["consume", "-t", "x", "-d", "5s", "--fetch-max-bytes", "0"]).unwrap();
        match cli.command {
            Command::Consume(c) => assert!(c.validate().is_err()),
            _ => unreachable!(),
        }
        let cli = parse(&["create-topic", "-t", "x", "-p", "0"]).unwrap();
        match cli.command {
            Command::CreateTopic(c) => assert!(c.validate().is_err()),
            _ => unreachable!(),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
