//! Wires the parts together: storage, metadata, controller, groups, the
//! client listener and admin HTTP; runs until SIGTERM or Ctrl-C.

pub mod lifecycle;
mod log_sync;
mod metadata_log;
pub mod metrics;
mod offsets_store;
pub mod record_io;
mod state;

pub use state::{now_ms, BrokerState, PartitionError};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::controller::Controller;
use crate::group::{GroupConfig, GroupCoordinator};
use crate::metadata::MetadataLoader;
use crate::storage::{BackgroundConfig, LogConfig, LogManager};

/// Starts the node and serves until SIGTERM or Ctrl-C.
pub async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    let node = Node::start(config).await?;
    shutdown_signal().await;
    node.stop().await
}

/// A running node: its listeners, background tasks and shared state.
pub struct Node {
    pub state: Arc<BrokerState>,
    metadata_log: Arc<metadata_log::LocalMetadataLog>,
    /// The bound client address (useful when the config asked for port 0).
    pub client_addr: std::net::SocketAddr,
    ready: Arc<AtomicBool>,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl Node {
    pub async fn start(config: BrokerConfig) -> anyhow::Result<Node> {
        if !(config.roles.broker && config.roles.controller) {
            anyhow::bail!(
                "process.roles={} needs a controller quorum, which is not available yet; use process.roles=broker,controller",
                config.roles
            );
        }
        let meta = crate::meta_properties::load(&config)?;
        tracing::info!(node_id = config.node_id, cluster_id = %meta.cluster_id, "starting");

        let defaults = LogConfig::from_broker(&config);
        let logs_config = config.clone();
        let logs = tokio::task::spawn_blocking(move || {
            LogManager::open(
                &logs_config.log_dirs,
                LogConfig::from_broker(&logs_config),
                BackgroundConfig::from_broker(&logs_config),
            )
        })
        .await?
        .context("opening the log directories")?;

        let loader = Arc::new(MetadataLoader::new(meta.cluster_id.clone()));
        let metadata_log = Arc::new(
            metadata_log::LocalMetadataLog::open(config.metadata_dir(), &defaults, loader.clone())
                .context("loading the metadata log")?,
        );
        let controller =
            Controller::open(&config, loader.publisher().clone(), metadata_log.clone())
                .context("bootstrapping the metadata")?;

        let store = Arc::new(offsets_store::LocalOffsetsStore::new(
            logs.clone(),
            &defaults,
        ));
        let groups = GroupCoordinator::new(GroupConfig::from_broker(&config), store);
        groups
            .load()
            .await
            .context("loading consumer group offsets")?;

        let metrics = Arc::new(metrics::Metrics::new());
        let state = Arc::new(BrokerState::new(
            config.clone(),
            logs.clone(),
            controller,
            groups,
            metrics.clone(),
        ));
        tokio::spawn(log_sync::run(state.clone()));
        logs.start_background();

        let (shutdown, shutdown_rx) = watch::channel(false);
        let images = state.controller.publisher().clone();
        tokio::spawn(state.replicas.clone().run(images, shutdown_rx.clone()));
        let ready = Arc::new(AtomicBool::new(false));
        if let Some(addr) = config.admin_http_listener {
            serve_admin_http(addr, metrics, ready.clone(), shutdown_rx.clone()).await?;
        }

        let client = config.client_listener().context("no client listener")?;
        let listener = TcpListener::bind(client.bind_addr())
            .await
            .with_context(|| format!("binding listener {}", client.bind_addr()))?;
        let client_addr = listener.local_addr()?;
        let (host, port) = config.advertised_address(client);
        tracing::info!(listener = %client_addr, advertised = %format!("{host}:{port}"), "serving Kafka clients");
        ready.store(true, Ordering::Release);
        let server = tokio::spawn(crate::network::serve(listener, state.clone(), shutdown_rx));
        Ok(Node {
            state,
            metadata_log,
            client_addr,
            ready,
            shutdown,
            server,
        })
    }

    /// Stops accepting, then flushes groups and logs so the next start is clean.
    pub async fn stop(self) -> anyhow::Result<()> {
        tracing::info!("shutting down");
        self.ready.store(false, Ordering::Release);
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        self.state.groups.shutdown();
        let replicas = self.state.replicas.clone();
        tokio::task::spawn_blocking(move || replicas.write_checkpoint()).await??;
        let logs = self.state.logs.clone();
        tokio::task::spawn_blocking(move || logs.shutdown()).await??;
        self.metadata_log.close()?;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

async fn serve_admin_http(
    addr: std::net::SocketAddr,
    metrics: Arc<metrics::Metrics>,
    ready: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding admin.http.listener {addr}"))?;
    let router = crate::admin_http::router(crate::admin_http::AdminState { metrics, ready });
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.changed().await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "admin HTTP server failed");
        }
    });
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
