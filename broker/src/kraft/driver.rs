//! The event loop that drives one [`RaftNode`]: inbound RPCs from the
//! controller listener, outbound RPCs through [`NodeClients`], timers,
//! proposals from the controller, and the committed records it hands to the
//! [`MetadataLoader`]. It runs on its own thread with its own runtime because
//! every log mutation is fsynced before the core may act on it; those waits
//! must not stall the threads that serve clients.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use super::disk_log::DiskRaftLog;
use super::quorum_state::QuorumStateFile;
use super::rpc;
use crate::metadata::snapshot::{read_image_snapshot, write_image_snapshot};
use crate::metadata::MetadataLoader;
use crate::raft::{
    self, Action, BatchKind, ElectionState, Message, QuorumInfo, RaftLog, RaftNode, Request,
    Response,
};
use crate::server::now_ms;
use crate::storage::snapshot::SnapshotId;

/// What the rest of the node sees of the quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumView {
    pub epoch: i32,
    pub leader: Option<i32>,
    /// This node leads and its image holds every record of earlier epochs,
    /// so its controller may write.
    pub active: bool,
    /// Offsets below this are committed (and applied to the image).
    pub high_watermark: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("this node is not the active controller")]
    NotLeader,
    #[error("the raft driver stopped")]
    Stopped,
}

enum Command {
    Inbound {
        from: i32,
        request: Request,
        reply: oneshot::Sender<Response>,
    },
    Propose {
        records: Vec<Bytes>,
        based_on: i64,
        reply: std::sync::mpsc::SyncSender<Result<i64, ProposeError>>,
    },
    Describe {
        reply: oneshot::Sender<Option<QuorumInfo>>,
    },
    PeerAnswered {
        from: i32,
        id: u64,
        answer: Option<Response>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// A cheap handle to the driver; clones share it.
#[derive(Clone)]
pub struct RaftHandle {
    commands: mpsc::UnboundedSender<Command>,
    view: watch::Receiver<QuorumView>,
    leader: watch::Receiver<Option<i32>>,
}

impl RaftHandle {
    pub fn view(&self) -> QuorumView {
        *self.view.borrow()
    }

    pub fn watch_view(&self) -> watch::Receiver<QuorumView> {
        self.view.clone()
    }

    /// The known leader id, as the controller channel follows it.
    pub fn watch_leader(&self) -> watch::Receiver<Option<i32>> {
        self.leader.clone()
    }

    /// Hands an inbound RPC to the core and waits for its answer (a fetch may
    /// be parked until data arrives or its max wait passes).
    pub async fn inbound(&self, from: i32, request: Request) -> Option<Response> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Inbound {
                from,
                request,
                reply,
            })
            .ok()?;
        answer.await.ok()
    }

    /// Proposes `records` validated against the image at `based_on`; blocks
    /// until committed and applied. For the controller's synchronous writer.
    pub fn propose_blocking(
        &self,
        records: Vec<Bytes>,
        based_on: i64,
        timeout: Duration,
    ) -> Result<Option<i64>, ProposeError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.commands
            .send(Command::Propose {
                records,
                based_on,
                reply,
            })
            .map_err(|_| ProposeError::Stopped)?;
        match answer.recv_timeout(timeout) {
            Ok(result) => result.map(Some),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(ProposeError::Stopped),
        }
    }

    /// DescribeQuorum as the leader sees it; `None` on other nodes.
    pub async fn describe(&self) -> Option<QuorumInfo> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Describe { reply }).ok()?;
        answer.await.ok().flatten()
    }

    /// Resigns leadership (so a successor takes over at once), flushes and stops.
    pub async fn shutdown(&self) {
        let (done, stopped) = oneshot::channel();
        if self.commands.send(Command::Shutdown { done }).is_ok() {
            let _ = stopped.await;
        }
    }
}

/// Settings of the driver beyond the core's own.
pub struct DriverConfig {
    pub raft: raft::RaftConfig,
    /// Write a snapshot once this many record bytes were applied since the last one
    /// (Kafka's `metadata.log.max.record.bytes.between.snapshots`).
    pub snapshot_after_bytes: u64,
}

/// Starts the driver on its own thread.
pub fn start(
    config: DriverConfig,
    log: DiskRaftLog,
    loader: Arc<MetadataLoader>,
    peers: Arc<rpc::RaftPeers>,
) -> anyhow::Result<RaftHandle> {
    let state_file = QuorumStateFile::new(
        log.dir(),
        &config.raft.cluster_id,
        &config.raft.voters.iter().copied().collect::<Vec<_>>(),
    );
    let persisted = state_file.read()?;
    let applied_end = load_latest_snapshot(&log, &loader, &config.raft.cluster_id)?;
    let clock = Instant::now();
    let node = RaftNode::new(config.raft.clone(), persisted, log, 0)?;
    let initial = QuorumView {
        epoch: node.epoch(),
        leader: node.leader_id(),
        active: false,
        high_watermark: node.high_watermark(),
    };
    let (view_tx, view) = watch::channel(initial);
    let (leader_tx, leader) = watch::channel(node.leader_id());
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let mut driver = Driver {
        node,
        node_id: config.raft.node_id,
        clock,
        state_file,
        loader,
        peers,
        commands_tx: commands_tx.clone(),
        inbound: HashMap::new(),
        next_inbound_id: 0,
        proposals: BTreeMap::new(),
        applied_end,
        epoch_start: None,
        view: view_tx,
        leader: leader_tx,
        snapshot_after_bytes: config.snapshot_after_bytes,
        bytes_since_snapshot: 0,
    };
    std::thread::Builder::new()
        .name("raft".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building the raft runtime");
            runtime.block_on(driver.run(commands));
        })?;
    Ok(RaftHandle {
        commands: commands_tx,
        view,
        leader,
    })
}

/// Loads the latest snapshot into the image; returns the first offset the
/// log must still apply.
fn load_latest_snapshot(
    log: &DiskRaftLog,
    loader: &MetadataLoader,
    cluster_id: &str,
) -> anyhow::Result<i64> {
    let Some(id) = log.latest_snapshot() else {
        return Ok(0);
    };
    let image = read_image_snapshot(log.dir(), SnapshotId::new(id.offset, id.epoch), cluster_id)?;
    tracing::info!(
        offset = id.offset,
        epoch = id.epoch,
        "loaded metadata snapshot"
    );
    loader.reset(image);
    Ok(id.offset)
}

struct Driver {
    node: RaftNode<DiskRaftLog>,
    node_id: i32,
    clock: Instant,
    state_file: QuorumStateFile,
    loader: Arc<MetadataLoader>,
    peers: Arc<rpc::RaftPeers>,
    commands_tx: mpsc::UnboundedSender<Command>,
    /// Inbound requests awaiting the core's answer, by the id we gave them.
    inbound: HashMap<u64, oneshot::Sender<Response>>,
    next_inbound_id: u64,
    /// Proposals awaiting commit, by their last offset.
    proposals: BTreeMap<i64, std::sync::mpsc::SyncSender<Result<i64, ProposeError>>>,
    /// The next offset to hand to the loader.
    applied_end: i64,
    /// Where this node's leadership epoch starts, while it leads.
    epoch_start: Option<i64>,
    view: watch::Sender<QuorumView>,
    leader: watch::Sender<Option<i32>>,
    snapshot_after_bytes: u64,
    bytes_since_snapshot: u64,
}

impl Driver {
    fn now(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    async fn run(&mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        if let Err(error) = self.after_step() {
            tracing::error!(%error, "raft driver failed at start");
            return;
        }
        loop {
            let deadline = self.node.next_deadline();
            let sleep = Duration::from_millis(deadline.saturating_sub(self.now()).min(60_000));
            let step = tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Shutdown { done }) => {
                        self.shut_down().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => self.on_command(command),
                    None => return,
                },
                _ = tokio::time::sleep(sleep) => {
                    let now = self.now();
                    self.node.tick(now)
                }
            };
            if let Err(error) = step
                .map_err(anyhow::Error::from)
                .and_then(|_| self.after_step())
            {
                // A failed log write leaves the node unusable, as in Kafka.
                tracing::error!(%error, "raft driver stopped: the metadata log failed");
                self.fail_proposals(ProposeError::Stopped);
                return;
            }
        }
    }

    fn on_command(&mut self, command: Command) -> Result<(), raft::RaftError> {
        let now = self.now();
        match command {
            Command::Inbound {
                from,
                request,
                reply,
            } => {
                let id = self.next_inbound_id;
                self.next_inbound_id += 1;
                self.inbound.insert(id, reply);
                self.node
                    .handle(from, Message::Request { id, body: request }, now)
            }
            Command::PeerAnswered { from, id, answer } => match answer {
                Some(body) => self.node.handle(from, Message::Response { id, body }, now),
                None => self.node.request_failed(from, id, now),
            },
            Command::Propose {
                records,
                based_on,
                reply,
            } => {
                let writable = self.epoch_start.is_some_and(|start| based_on >= start);
                if !writable {
                    let _ = reply.send(Err(ProposeError::NotLeader));
                    return Ok(());
                }
                match self.node.propose(records, now) {
                    Ok(last_offset) => {
                        self.proposals.insert(last_offset, reply);
                        Ok(())
                    }
                    Err(raft::RaftError::NotLeader(_)) => {
                        let _ = reply.send(Err(ProposeError::NotLeader));
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Command::Describe { reply } => {
                let _ = reply.send(self.node.quorum_info(now));
                Ok(())
            }
            Command::Shutdown { .. } => unreachable!("handled by the loop"),
        }
    }

    /// Executes the core's actions, applies what became committed, and
    /// publishes the quorum view.
    fn after_step(&mut self) -> anyhow::Result<()> {
        for action in self.node.drain_actions() {
            match action {
                Action::Persist(state) => self.persist(state)?,
                Action::Send { to, message } => self.send(to, message),
                Action::LeaderChanged { epoch, leader } => {
                    tracing::info!(epoch, ?leader, "metadata quorum leader changed");
                    self.epoch_start = None;
                    if leader == Some(self.node_id) {
                        // The leader-change entry opens the epoch; everything before it
                        // must be in the image before this controller writes.
                        let start = self.node.log().end_offset_for_epoch(epoch - 1).offset;
                        self.epoch_start = Some(start);
                    } else {
                        self.fail_proposals(ProposeError::NotLeader);
                    }
                    self.leader.send_replace(leader);
                }
                Action::HighWatermark(_) => {}
            }
        }
        self.catch_up_snapshot()?;
        self.apply_committed()?;
        self.maybe_snapshot()?;
        let high_watermark = self.node.high_watermark();
        let applied = self.loader.publisher().current().metadata_offset;
        self.view.send_if_modified(|view| {
            let next = QuorumView {
                epoch: self.node.epoch(),
                leader: self.node.leader_id(),
                active: self.epoch_start.is_some_and(|start| applied >= start),
                high_watermark,
            };
            let changed = *view != next;
            *view = next;
            changed
        });
        Ok(())
    }

    fn persist(&mut self, state: ElectionState) -> anyhow::Result<()> {
        self.state_file.write(&state)?;
        Ok(())
    }

    fn send(&mut self, to: i32, message: Message) {
        match message {
            Message::Response { id, body } => {
                if let Some(reply) = self.inbound.remove(&id) {
                    let _ = reply.send(body);
                }
            }
            Message::Request { id, body } => {
                let peers = self.peers.clone();
                let commands = self.commands_tx.clone();
                tokio::spawn(async move {
                    let answer = peers.call(to, body).await;
                    let _ = commands.send(Command::PeerAnswered {
                        from: to,
                        id,
                        answer,
                    });
                });
            }
        }
    }

    /// A snapshot the core installed from the leader replaces the image.
    fn catch_up_snapshot(&mut self) -> anyhow::Result<()> {
        let start = self.node.log().start();
        if start.offset > self.applied_end {
            let cluster_id = self.loader.publisher().current().cluster_id.clone();
            self.applied_end = load_latest_snapshot(self.node.log(), &self.loader, &cluster_id)?;
            self.bytes_since_snapshot = 0;
        }
        Ok(())
    }

    /// Hands every newly committed batch to the loader, then answers the
    /// proposals it completes.
    fn apply_committed(&mut self) -> anyhow::Result<()> {
        let high_watermark = self.node.high_watermark();
        while self.applied_end < high_watermark {
            let batches = self.node.log().read(self.applied_end, 1 << 20)?;
            if batches.is_empty() {
                break;
            }
            for batch in batches {
                if batch.base_offset >= high_watermark {
                    break;
                }
                let committed = (high_watermark - batch.base_offset).min(batch.record_count());
                match &batch.kind {
                    BatchKind::Data(records) => {
                        let records = &records[..committed as usize];
                        self.bytes_since_snapshot +=
                            records.iter().map(|r| r.len() as u64).sum::<u64>();
                        self.loader.apply_batch(batch.base_offset, records)?;
                    }
                    BatchKind::LeaderChange { .. } => self.loader.skip_to(batch.base_offset)?,
                }
                self.applied_end = batch.base_offset + committed;
            }
        }
        let done: Vec<i64> = self
            .proposals
            .range(..high_watermark)
            .map(|(&offset, _)| offset)
            .collect();
        for offset in done {
            if let Some(reply) = self.proposals.remove(&offset) {
                let _ = reply.send(Ok(offset));
            }
        }
        Ok(())
    }

    /// Writes a snapshot of the image once enough was applied since the last,
    /// and drops the log before it.
    fn maybe_snapshot(&mut self) -> anyhow::Result<()> {
        if self.bytes_since_snapshot < self.snapshot_after_bytes {
            return Ok(());
        }
        let image = self.loader.publisher().current();
        let Some(epoch) = self.node.log().epoch_at(image.metadata_offset) else {
            return Ok(());
        };
        let id = write_image_snapshot(self.node.log().dir(), &image, epoch, now_ms())?;
        self.node
            .log_mut()
            .snapshot_written(raft::OffsetAndEpoch::new(id.end_offset, id.epoch))?;
        self.bytes_since_snapshot = 0;
        tracing::info!(
            end_offset = id.end_offset,
            epoch = id.epoch,
            "wrote metadata snapshot"
        );
        Ok(())
    }

    fn fail_proposals(&mut self, error: ProposeError) {
        for (_, reply) in std::mem::take(&mut self.proposals) {
            let _ = reply.send(Err(error.clone()));
        }
    }

    /// A leader hands over first (EndQuorumEpoch) so failover is fast; then
    /// the log is closed cleanly.
    async fn shut_down(&mut self) {
        let now = self.now();
        if self.node.role().is_leader() {
            match self.node.resign(now) {
                Ok(()) => {
                    // Only the sends matter now: the successors hear of it at once.
                    let mut sends = tokio::task::JoinSet::new();
                    for action in self.node.drain_actions() {
                        match action {
                            Action::Persist(state) => {
                                if let Err(error) = self.persist(state) {
                                    tracing::error!(%error, "cannot persist the quorum state");
                                }
                            }
                            Action::Send {
                                to,
                                message: Message::Request { body, .. },
                            } => {
                                let peers = self.peers.clone();
                                sends.spawn(async move { peers.call(to, body).await });
                            }
                            _ => {}
                        }
                    }
                    let _ =
                        tokio::time::timeout(Duration::from_millis(500), sends.join_all()).await;
                }
                Err(error) => tracing::warn!(%error, "could not resign"),
            }
        }
        self.fail_proposals(ProposeError::Stopped);
        for (_, reply) in self.inbound.drain() {
            drop(reply);
        }
        if let Err(error) = self.node.log().close() {
            tracing::error!(%error, "closing the metadata log failed");
        }
    }
}
