//! loadgen: a Kafka load generator that speaks the wire protocol directly.

mod accumulator;
mod batch;
mod batch_header;
mod cli;
mod cluster;
mod conn;
mod consume;
mod cpu;
mod histogram;
mod payload;
mod produce;
mod rate;
mod report;
mod versions;
mod wire;

use std::process::ExitCode;

use clap::Parser;
use serde::Serialize;

use cli::{Cli, Command};

/// Bad arguments, as clap exits for its own parse errors.
const EXIT_USAGE: u8 = 2;
const EXIT_FAILED: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let validation = match &cli.command {
        Command::Produce(a) => a.validate(),
        Command::Consume(a) => a.validate(),
        Command::CreateTopic(a) => a.validate(),
    };
    if let Err(msg) = validation {
        eprintln!("error: {msg}");
        return ExitCode::from(EXIT_USAGE);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads as usize)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    runtime.block_on(async {
        match &cli.command {
            Command::Produce(a) => match produce::run(a).await {
                Ok(r) => finish(&r, a.common.json, r.failed(), r.table()),
                Err(e) => fail(e),
            },
            Command::Consume(a) => match consume::run(a).await {
                Ok(r) => finish(&r, a.common.json, r.failed(), r.table()),
                Err(e) => fail(e),
            },
            Command::CreateTopic(a) => match create_topic(a).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            },
        }
    })
}

async fn create_topic(a: &cli::CreateTopicArgs) -> anyhow::Result<()> {
    let mut conn = conn::Connection::connect(&a.bootstrap, "loadgen", a.request_timeout).await?;
    let versions = cluster::api_versions(&mut conn).await?;
    cluster::create_topic(
        &mut conn,
        &versions,
        &a.topic,
        a.partitions,
        a.replication_factor,
    )
    .await?;
    let layout =
        cluster::wait_for_layout(&mut conn, &versions, &a.topic, a.request_timeout).await?;
    if layout.leaders.len() != a.partitions as usize {
        anyhow::bail!(
            "topic '{}' exists with {} partitions, not {}",
            a.topic,
            layout.leaders.len(),
            a.partitions
        );
    }
    Ok(())
}

fn finish(report: &impl Serialize, json: bool, failed: bool, table: String) -> ExitCode {
    if json {
        match serde_json::to_string(report) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("error: cannot serialize results: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        }
    } else {
        print!("{table}");
    }
    if failed {
        eprintln!("error: some records failed (see errors)");
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::from(EXIT_FAILED)
}
