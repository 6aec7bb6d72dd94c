//! In-process nodes for unit tests that need real sockets and files.

use std::collections::BTreeMap;
use std::path::Path;

use super::Node;
use crate::config::{parse_properties, BrokerConfig};

/// A free loopback port: registrations and the voter list carry configured
/// ports, so port 0 will not do.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Formats `dir` and starts a combined node (id 1, a quorum of one) whose
/// client listener is on `client_port` (0 for any free one), with `extra`
/// property lines appended; returns once it is ready.
pub async fn start_node(dir: &Path, client_port: u16, extra: &str) -> Node {
    let client_port = if client_port == 0 {
        free_port()
    } else {
        client_port
    };
    let controller_port = free_port();
    let props: BTreeMap<String, String> = parse_properties(&format!(
        "process.roles=broker,controller\nnode.id=1\n\
         listeners=PLAINTEXT://127.0.0.1:{client_port},CONTROLLER://127.0.0.1:{controller_port}\n\
         controller.listener.names=CONTROLLER\ncontroller.quorum.voters=1@127.0.0.1:{controller_port}\n\
         log.dirs={}\n{extra}",
        dir.display()
    ))
    .unwrap();
    let config = BrokerConfig::from_properties(&props).unwrap();
    crate::meta_properties::format(&config, &crate::meta_properties::random_uuid(), false).unwrap();
    let node = Node::start(config).await.unwrap();
    node.wait_ready(std::time::Duration::from_secs(30))
        .await
        .unwrap();
    node
}

/// Broker state over an in-memory metadata log whose controller is active
/// here, its logs in `dir`: the handlers' view of a single-node cluster.
pub fn broker_state_over(
    dir: &Path,
    metadata: &crate::controller::MemoryMetadataLog,
) -> super::BrokerState {
    use std::sync::Arc;

    use crate::group::{GroupConfig, GroupCoordinator, MemoryOffsetsStore};
    use crate::kraft::QuorumView;
    use crate::storage::{BackgroundConfig, LogConfig, LogManager};

    let config = BrokerConfig {
        log_dirs: vec![dir.to_path_buf()],
        ..BrokerConfig::default()
    };
    let controller = metadata.open_controller(&config);
    let logs = LogManager::open(
        &config.log_dirs,
        LogConfig::from_broker(&config),
        BackgroundConfig::from_broker(&config),
    )
    .unwrap();
    let groups = GroupCoordinator::new(
        GroupConfig::from_broker(&config),
        Arc::new(MemoryOffsetsStore::new()),
    );
    let quorum = tokio::sync::watch::channel(QuorumView {
        epoch: 1,
        leader: Some(config.node_id),
        active: true,
        high_watermark: 0,
    })
    .1;
    let channel = Arc::new(crate::client::ControllerChannel::new(
        &[],
        tokio::sync::watch::channel(None).1,
        crate::client::ClientOptions::default(),
    ));
    super::BrokerState::new(
        config,
        logs,
        controller,
        groups,
        Arc::new(super::metrics::Metrics::new()),
        quorum,
        channel,
    )
}

/// [`broker_state_over`] a fresh metadata log.
pub fn broker_state(dir: &Path) -> super::BrokerState {
    broker_state_over(dir, &crate::controller::MemoryMetadataLog::new())
}
