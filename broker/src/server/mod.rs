//! Wires the parts together: the metadata quorum (Raft driver, loader,
//! controller), and by role the controller listener and the broker (storage,
//! groups, replication, client listener, lifecycle); admin HTTP; runs until
//! SIGTERM or Ctrl-C.

mod duties;
mod group_leadership;
pub mod lifecycle;
pub mod listeners;
mod log_sync;
pub mod metrics;
mod offsets_store;
pub mod record_io;
mod state;

/// Connections from this node to brokers, at their addresses in the current image.
fn broker_clients(
    config: &BrokerConfig,
    publisher: Arc<crate::metadata::MetadataPublisher>,
) -> crate::client::NodeClients {
    let listener = config.inter_broker_listener_name.clone();
    crate::client::NodeClients::new(
        Arc::new(move |id| {
            let image = publisher.current();
            let broker = image.brokers.get(&id)?;
            Some(listeners::inter_broker_address(broker, listener.as_deref()))
        }),
        ClientOptions {
            client_id: format!("admin-{}", config.node_id),
            ..ClientOptions::default()
        },
    )
}

#[cfg(test)]
pub mod testing;

pub use state::{now_ms, BrokerState, PartitionError};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{ClientOptions, ControllerChannel};
use crate::config::BrokerConfig;
use crate::controller::Controller;
use crate::group::{GroupConfig, GroupCoordinator};
use crate::handlers::controller_listener::ControllerService;
use crate::kraft::disk_log::DiskRaftLog;
use crate::kraft::driver::{self, DriverConfig};
use crate::kraft::metadata_log::RaftMetadataLog;
use crate::kraft::rpc::RaftPeers;
use crate::kraft::RaftHandle;
use crate::metadata::MetadataLoader;
use crate::raft::RaftConfig;
use crate::storage::{BackgroundConfig, LogConfig, LogManager};
use lifecycle::{BrokerLifecycle, LifecycleConfig};

/// How long a controlled shutdown may take before the broker stops anyway.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a controller write may wait for its commit.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts the node and serves until SIGTERM or Ctrl-C.
pub async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    let node = Node::start(config).await?;
    shutdown_signal().await;
    node.stop().await
}

/// A running node: its listeners, background tasks and shared state.
pub struct Node {
    pub config: BrokerConfig,
    pub controller: Arc<Controller>,
    pub raft: RaftHandle,
    /// The broker part, on nodes with the broker role.
    pub broker: Option<Arc<BrokerState>>,
    /// The bound client address (useful when the config asked for port 0).
    pub client_addr: Option<SocketAddr>,
    /// The bound controller listener, on nodes with the controller role.
    pub controller_addr: Option<SocketAddr>,
    lifecycle: Option<BrokerLifecycle>,
    ready: Arc<AtomicBool>,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
}

impl Node {
    pub async fn start(config: BrokerConfig) -> anyhow::Result<Node> {
        let meta = crate::meta_properties::load(&config)?;
        let cluster_id = meta.cluster_id.clone();
        tracing::info!(node_id = config.node_id, roles = %config.roles, %cluster_id, "starting");
        let metrics = Arc::new(metrics::Metrics::new());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut servers = Vec::new();

        let loader = Arc::new(MetadataLoader::new(cluster_id.clone()));
        let raft = start_raft(&config, &cluster_id, loader.clone())?;
        let controller = Controller::open(
            &config,
            loader.publisher().clone(),
            Arc::new(RaftMetadataLog::new(raft.clone(), COMMIT_TIMEOUT)),
        )?;

        let mut controller_addr = None;
        if config.roles.controller {
            let listener = config
                .controller_listener()
                .context("no controller listener")?;
            let bound = bind(&listener.bind_addr()).await?;
            controller_addr = Some(bound.local_addr()?);
            tracing::info!(listener = %bound.local_addr()?, "serving the controller quorum");
            let service = Arc::new(ControllerService::new(
                config.clone(),
                controller.clone(),
                raft.clone(),
                metrics.clone(),
            ));
            servers.push(tokio::spawn(crate::network::serve(
                bound,
                service,
                shutdown_rx.clone(),
            )));
            tokio::spawn(duties::run_controller(
                controller.clone(),
                metrics.clone(),
                raft.watch_view(),
                shutdown_rx.clone(),
            ));
        }

        // One set of connections to the active controller, shared by the
        // broker's lifecycle and forwarding and by the admin API.
        let controllers = Arc::new(ControllerChannel::new(
            &config.quorum_voters,
            raft.watch_leader(),
            ClientOptions::default(),
        ));
        let (mut broker, mut client_addr, mut lifecycle) = (None, None, None);
        if config.roles.broker {
            let started = start_broker(
                &config,
                &cluster_id,
                &controller,
                &raft,
                &controllers,
                &metrics,
                &shutdown_rx,
            )
            .await?;
            client_addr = Some(started.client_addr);
            servers.extend(started.servers);
            lifecycle = Some(started.lifecycle);
            broker = Some(started.state);
        }

        tokio::spawn(duties::export_quorum_metrics(
            metrics.clone(),
            raft.watch_view(),
            shutdown_rx.clone(),
        ));
        let ready = Arc::new(AtomicBool::new(false));
        tokio::spawn(duties::track_readiness(
            ready.clone(),
            raft.watch_view(),
            controller.publisher().clone(),
            lifecycle.as_ref().map(BrokerLifecycle::state),
            shutdown_rx.clone(),
        ));
        if let Some(addr) = config.admin_http_listener {
            let admin = crate::admin_http::AdminState {
                metrics,
                ready: ready.clone(),
                publisher: controller.publisher().clone(),
                quorum: raft.watch_view(),
                log_defaults: crate::storage::LogConfig::from_broker(&config),
                raft: raft.clone(),
                controllers,
                brokers: Arc::new(broker_clients(&config, controller.publisher().clone())),
                fetch_timeout_ms: config.quorum.fetch_timeout_ms,
            };
            serve_admin_http(addr, admin, shutdown_rx.clone()).await?;
        }
        Ok(Node {
            config,
            controller,
            raft,
            broker,
            client_addr,
            controller_addr,
            lifecycle,
            ready,
            shutdown,
            servers,
        })
    }

    /// The broker part; panics on a controller-only node (a caller's bug).
    pub fn broker(&self) -> &Arc<BrokerState> {
        self.broker.as_ref().expect("this node has no broker role")
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Waits until the node is ready, failing after `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_ready() {
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("node {} not ready after {timeout:?}", self.config.node_id);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Moves leaderships away (controlled shutdown), stops accepting, flushes
    /// groups and logs, then hands Raft leadership over, so the next start is
    /// clean and clients barely notice.
    pub async fn stop(self) -> anyhow::Result<()> {
        tracing::info!("shutting down");
        self.ready.store(false, Ordering::Release);
        if let Some(lifecycle) = self.lifecycle {
            lifecycle.shutdown(CONTROLLED_SHUTDOWN_TIMEOUT).await;
        }
        let _ = self.shutdown.send(true);
        for server in self.servers {
            let _ = server.await;
        }
        if let Some(state) = &self.broker {
            state.groups.shutdown();
            let replicas = state.replicas.clone();
            tokio::task::spawn_blocking(move || replicas.write_checkpoint()).await??;
            let logs = state.logs.clone();
            tokio::task::spawn_blocking(move || logs.shutdown()).await??;
        }
        self.raft.shutdown().await;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

/// Opens the metadata log and starts the Raft driver: a voter on controller
/// nodes, an observer on broker-only nodes.
fn start_raft(
    config: &BrokerConfig,
    cluster_id: &str,
    loader: Arc<MetadataLoader>,
) -> anyhow::Result<RaftHandle> {
    let defaults = LogConfig::from_broker(config);
    let log =
        DiskRaftLog::open(config.metadata_dir(), &defaults).context("opening the metadata log")?;
    let voters = config.quorum_voters.iter().map(|(id, _, _)| *id).collect();
    let timings = config.quorum;
    let raft = RaftConfig {
        election_timeout_ms: timings.election_timeout_ms,
        election_backoff_max_ms: timings.election_backoff_max_ms,
        fetch_timeout_ms: timings.fetch_timeout_ms,
        request_timeout_ms: timings.request_timeout_ms,
        retry_backoff_ms: timings.retry_backoff_ms,
        ..RaftConfig::new(config.node_id, voters, cluster_id, rand::random())
    };
    let peers = Arc::new(RaftPeers::new(
        &config.quorum_voters,
        Duration::from_millis(timings.request_timeout_ms),
    ));
    driver::start(
        DriverConfig {
            raft,
            snapshot_after_bytes: config.metadata_snapshot_bytes,
        },
        log,
        loader,
        peers,
    )
    .context("starting the metadata quorum")
}

struct StartedBroker {
    state: Arc<BrokerState>,
    client_addr: SocketAddr,
    servers: Vec<JoinHandle<()>>,
    lifecycle: BrokerLifecycle,
}

/// The broker role: local logs, groups and replication start once the
/// metadata image has caught up (an empty image would delete every log),
/// then the client listener and the registration with the controller.
async fn start_broker(
    config: &BrokerConfig,
    cluster_id: &str,
    controller: &Arc<Controller>,
    raft: &RaftHandle,
    channel: &Arc<ControllerChannel>,
    metrics: &Arc<metrics::Metrics>,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<StartedBroker> {
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
    let store = Arc::new(offsets_store::LocalOffsetsStore::new(logs.clone()));
    let groups = GroupCoordinator::new(GroupConfig::from_broker(config), store.clone());
    // Groups are served by the leader of their __consumer_offsets partition.
    groups
        .serve_led_partitions_only()
        .context("starting the group coordinator")?;

    let state = Arc::new(BrokerState::new(
        config.clone(),
        logs.clone(),
        controller.clone(),
        groups,
        metrics.clone(),
        raft.watch_view(),
        channel.clone(),
    ));
    store.attach(state.replicas.clone());
    let publisher = controller.publisher().clone();
    duties::wait_for_metadata(raft.watch_view(), &publisher).await;
    tokio::spawn(group_leadership::run(state.clone(), shutdown.clone()));
    tokio::spawn(log_sync::run(state.clone()));
    logs.start_background();
    tokio::spawn(
        state
            .replicas
            .clone()
            .run(publisher.clone(), shutdown.clone()),
    );

    // Every listener but the controller's serves Kafka clients, the client listener first.
    let client = config.client_listener().context("no client listener")?;
    let mut client_addr = None;
    let mut servers = Vec::new();
    for l in config
        .listeners
        .iter()
        .filter(|l| !config.controller_listener_names.contains(&l.name))
    {
        let listener = bind(&l.bind_addr()).await?;
        let bound = listener.local_addr()?;
        if l.name == client.name {
            client_addr = Some(bound);
        }
        let (host, port) = config.advertised_address(l);
        tracing::info!(name = %l.name, listener = %bound, advertised = %format!("{host}:{port}"), "serving Kafka clients");
        servers.push(tokio::spawn(crate::network::serve(
            listener,
            Arc::new(listeners::ListenerService::new(state.clone(), &l.name)),
            shutdown.clone(),
        )));
    }
    let client_addr = client_addr.context("the client listener was not bound")?;
    let lifecycle = BrokerLifecycle::start(
        LifecycleConfig::from_broker(config, cluster_id.to_string()),
        channel.clone(),
        Arc::new(move || publisher.current().metadata_offset),
    );
    Ok(StartedBroker {
        state,
        client_addr,
        servers,
        lifecycle,
    })
}

async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding listener {addr}"))
}

async fn serve_admin_http(
    addr: std::net::SocketAddr,
    admin: crate::admin_http::AdminState,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding admin.http.listener {addr}"))?;
    let router = crate::admin_http::router(admin);
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
