//! The `broker` command: run a node, run a local dev node, format storage.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use broker::config::BrokerConfig;
use broker::meta_properties;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "broker", version, about = "A Kafka-compatible broker")]
struct Cli {
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node from a Kafka-style server.properties file.
    Start {
        /// Path to the properties file.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
    },
    /// Run a single-node cluster for development on 127.0.0.1 (formats its data folder on first run).
    Dev {
        /// Folder for the logs and metadata.
        #[arg(long, default_value = "./kafka-dev-data")]
        data_dir: PathBuf,
        /// Port for Kafka clients.
        #[arg(long, default_value_t = 9092)]
        port: u16,
        /// Port for /healthz, /readyz and /metrics.
        #[arg(long, default_value_t = 8080)]
        admin_port: u16,
    },
    /// Storage formatting tools (KRaft style).
    Storage {
        #[command(subcommand)]
        command: StorageCommand,
    },
}

#[derive(Subcommand)]
enum StorageCommand {
    /// Print a new random cluster id.
    RandomUuid,
    /// Write meta.properties with the cluster id into every log directory of the config.
    Format {
        /// Cluster id, e.g. from `broker storage random-uuid`.
        #[arg(short = 't', long = "cluster-id")]
        cluster_id: String,
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Leave directories that are already formatted as they are.
        #[arg(long)]
        ignore_formatted: bool,
    },
    /// Show how the log directories of the config are formatted.
    Info {
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Start { config } => serve(BrokerConfig::from_file(&config)?),
        Command::Dev {
            data_dir,
            port,
            admin_port,
        } => {
            let config = dev_config(&data_dir, port, admin_port)?;
            if meta_properties::read(&data_dir)?.is_none() {
                meta_properties::format(&config, &meta_properties::random_uuid(), false)?;
            }
            println!(
                "Kafka bootstrap address: 127.0.0.1:{port}  (data in {})",
                data_dir.display()
            );
            serve(config)
        }
        Command::Storage { command } => storage(command),
    }
}

fn storage(command: StorageCommand) -> anyhow::Result<()> {
    match command {
        StorageCommand::RandomUuid => println!("{}", meta_properties::random_uuid()),
        StorageCommand::Format {
            cluster_id,
            config,
            ignore_formatted,
        } => {
            let config = BrokerConfig::from_file(&config)?;
            for dir in meta_properties::format(&config, &cluster_id, ignore_formatted)? {
                println!("Formatted {}", dir.display());
            }
        }
        StorageCommand::Info { config } => {
            let config = BrokerConfig::from_file(&config)?;
            for dir in &config.log_dirs {
                match meta_properties::read(dir)? {
                    Some(meta) => println!(
                        "{}: cluster.id={} node.id={} directory.id={}",
                        dir.display(),
                        meta.cluster_id,
                        meta.node_id,
                        meta.directory_id
                    ),
                    None => println!("{}: not formatted", dir.display()),
                }
            }
        }
    }
    Ok(())
}

fn dev_config(
    data_dir: &std::path::Path,
    port: u16,
    admin_port: u16,
) -> anyhow::Result<BrokerConfig> {
    let props: BTreeMap<String, String> = [
        ("process.roles", "broker,controller".to_string()),
        ("node.id", "1".to_string()),
        (
            "listeners",
            format!(
                "PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{}",
                port + 1
            ),
        ),
        ("controller.listener.names", "CONTROLLER".to_string()),
        (
            "controller.quorum.voters",
            format!("1@127.0.0.1:{}", port + 1),
        ),
        ("log.dirs", data_dir.display().to_string()),
        ("admin.http.listener", format!("127.0.0.1:{admin_port}")),
        // No point waiting for more members in a one-person cluster.
        ("group.initial.rebalance.delay.ms", "0".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok(BrokerConfig::from_properties(&props)?)
}

fn serve(config: BrokerConfig) -> anyhow::Result<()> {
    keep_large_buffers_in_the_heap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(broker::server::run(config));
    // Everything durable is done once `run` returns. Dropping the runtime would wait for
    // every task still on the blocking pool; with 10,000 partitions that held the exit up
    // for 10 s after "stopped cleanly".
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    outcome
}

/// Fetch and produce buffers are often hundreds of KiB. glibc serves those
/// with a fresh mmap each time, and the page faults and kernel zeroing that
/// follow took a fifth of the broker's time in consume profiles; from the heap
/// they are reused instead.
fn keep_large_buffers_in_the_heap() {
    const LIMIT: libc::c_int = 64 << 20;
    // SAFETY: mallopt only changes allocator tuning; it is called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LIMIT);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 2 * LIMIT);
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
