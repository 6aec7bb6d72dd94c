//! Groups of node processes: a single combined node, or a KRaft cluster.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::free_port;
use crate::node::{cli, NodeProcess};

/// Node ids of controller-only nodes start here, as the operator numbers them,
/// so they never collide with broker ids.
const CONTROLLER_ID_BASE: i32 = 1000;

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What to start: controller-only nodes, broker-only nodes, and nodes with both roles.
#[derive(Debug, Clone, Default)]
pub struct ClusterSpec {
    pub controllers: usize,
    pub brokers: usize,
    pub combined: usize,
    /// Properties for every node.
    pub extra: Vec<(String, String)>,
}

impl ClusterSpec {
    /// 3 controllers + 3 brokers (KRaft external mode), every node with `extra`.
    pub fn external(extra: &[(&str, &str)]) -> Self {
        ClusterSpec {
            controllers: 3,
            brokers: 3,
            combined: 0,
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// A running cluster: every node formatted with one cluster id.
pub struct Cluster {
    pub cluster_id: String,
    pub nodes: Vec<NodeProcess>,
}

impl Cluster {
    pub fn start(spec: &ClusterSpec) -> Result<Cluster> {
        let cluster_id = cli(&["storage", "random-uuid"])?;
        // Voters: combined nodes (ids 0..) and controller-only nodes (1000..).
        let mut voters = Vec::new();
        for i in 0..spec.combined {
            voters.push((i as i32, "broker,controller", Some(free_port())));
        }
        for i in 0..spec.controllers {
            voters.push((
                CONTROLLER_ID_BASE + i as i32,
                "controller",
                Some(free_port()),
            ));
        }
        let voter_list = voters
            .iter()
            .map(|(id, _, port)| format!("{id}@127.0.0.1:{}", port.unwrap()))
            .collect::<Vec<_>>()
            .join(",");
        let brokers = (0..spec.brokers).map(|i| ((spec.combined + i) as i32, "broker", None));
        let extra: Vec<(&str, &str)> = spec
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut nodes = voters
            .into_iter()
            .chain(brokers)
            .map(|(id, roles, port)| NodeProcess::new(id, roles, port, &voter_list, &extra))
            .collect::<Result<Vec<_>>>()?;
        for node in &mut nodes {
            node.format(&cluster_id)?;
            node.spawn()?;
        }
        // Nodes become ready only together (a quorum is needed), so start all first.
        for node in &mut nodes {
            node.wait_ready(START_TIMEOUT)?;
        }
        Ok(Cluster { cluster_id, nodes })
    }

    pub fn node(&mut self, id: i32) -> &mut NodeProcess {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id} in this cluster"))
    }

    /// `host:port,...` of every node with a client listener.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.client_port.is_some())
            .map(|n| n.bootstrap().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Runs `scenario` on the cluster; on failure prints every node's log
    /// tail first, since nodes only print it themselves when a test panics.
    pub fn run<T>(&mut self, scenario: impl FnOnce(&mut Cluster) -> Result<T>) -> Result<T> {
        let outcome = scenario(self);
        if outcome.is_err() {
            for node in &self.nodes {
                eprintln!("---- node {} stderr ----\n{}", node.id, node.stderr());
            }
        }
        outcome
    }

    /// Stops and starts `id` again on the same data; waits until it is ready.
    pub fn restart(&mut self, id: i32, hard: bool) -> Result<()> {
        self.node(id)
            .restart(hard)
            .with_context(|| format!("restarting node {id}"))
    }
}

/// One combined node (roles broker,controller): the single-node cluster of
/// `broker dev`, with the node's process methods at hand.
pub struct Broker {
    node: NodeProcess,
}

impl Broker {
    /// Formats and starts a broker with the default test properties.
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// Formats and starts a broker; `extra` overrides or adds properties.
    pub fn start_with(extra: &[(&str, &str)]) -> Result<Self> {
        let port = free_port();
        let voters = format!("1@127.0.0.1:{port}");
        let mut node = NodeProcess::new(1, "broker,controller", Some(port), &voters, extra)?;
        node.format(&cli(&["storage", "random-uuid"])?)?;
        node.spawn()?;
        node.wait_ready(START_TIMEOUT)?;
        Ok(Broker { node })
    }
}

impl std::ops::Deref for Broker {
    type Target = NodeProcess;
    fn deref(&self) -> &NodeProcess {
        &self.node
    }
}

impl std::ops::DerefMut for Broker {
    fn deref_mut(&mut self) -> &mut NodeProcess {
        &mut self.node
    }
}
