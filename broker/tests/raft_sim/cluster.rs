//! A simulated cluster: virtual time, a seeded network that delays, reorders, drops,
//! duplicates and partitions messages, node crashes and restarts, clients proposing at the
//! leader, and snapshots that replace log prefixes. Every step is checked.

use std::collections::{BTreeMap, BTreeSet};

use broker::raft::{Action, ElectionState, Message, RaftConfig, RaftNode, Role};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::checker::Checker;
use crate::sim_log::{record_hash, SimLog};

/// Length of the phase with faults, then the bound for recovery once they stop.
const FAULT_PHASE_MS: u64 = 20_000;
const RECOVERY_BOUND_MS: u64 = 15_000;
const MAX_DELAY_MS: u64 = 25;
const DROP_PROBABILITY: f64 = 0.03;
const DUPLICATE_PROBABILITY: f64 = 0.03;

fn node_config(id: i32, voters: &BTreeSet<i32>, seed: u64) -> RaftConfig {
    let mut config = RaftConfig::new(id, voters.clone(), "sim-cluster", seed);
    config.election_timeout_ms = 300;
    config.election_backoff_max_ms = 300;
    config.fetch_timeout_ms = 600;
    config.fetch_max_wait_ms = 100;
    config.request_timeout_ms = 300;
    config.fetch_max_bytes = 2048;
    config.snapshot_chunk_bytes = 256;
    config
}

enum Slot {
    Up(Box<RaftNode<SimLog>>),
    Down { log: SimLog, restart_at: u64 },
}

struct SimNode {
    slot: Slot,
    persisted: ElectionState,
    /// Bumped at each crash: messages addressed to an earlier incarnation are lost.
    incarnation: u64,
}

enum Event {
    Deliver {
        from: i32,
        to: i32,
        incarnation: u64,
        message: Message,
    },
    /// The sender learns that `to` refused the connection.
    Refused {
        node: i32,
        incarnation: u64,
        to: i32,
        id: u64,
    },
}

/// What a run did; equal for equal seeds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub messages: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub resignations: u64,
    pub snapshots: u64,
    pub max_epoch: i32,
    pub committed: i64,
    pub recovery_ms: u64,
}

pub struct Sim {
    seed: u64,
    rng: StdRng,
    now: u64,
    voters: BTreeSet<i32>,
    nodes: BTreeMap<i32, SimNode>,
    events: BTreeMap<(u64, u64), Event>,
    next_seq: u64,
    faults: bool,
    /// One side of the current partition; messages crossing it are lost.
    partition: Option<BTreeSet<i32>>,
    checker: Checker,
    proposals: u64,
    next_proposal_at: u64,
    next_snapshot_at: u64,
    next_fault_at: u64,
    stats: Stats,
}

type SimResult<T> = Result<T, String>;

/// One randomized run: faults for a while, then everything heals and a new proposal must
/// commit everywhere within the recovery bound.
pub fn run_seed(seed: u64) -> SimResult<Stats> {
    let voters = if seed.is_multiple_of(2) { 3 } else { 5 };
    let mut sim = Sim::new(seed, voters)?;
    sim.run_until(FAULT_PHASE_MS)?;
    sim.heal()?;
    sim.stats.recovery_ms = sim.recover()?;
    sim.stats.max_epoch = sim.up_nodes().map(|node| node.epoch()).max().unwrap_or(0);
    sim.stats.committed = sim.checker.committed_len();
    Ok(sim.stats)
}

impl Sim {
    fn new(seed: u64, voters: i32) -> SimResult<Self> {
        let voter_ids: BTreeSet<i32> = (1..=voters).collect();
        let observer = voters + 1;
        let mut sim = Sim {
            seed,
            rng: StdRng::seed_from_u64(seed),
            now: 0,
            voters: voter_ids.clone(),
            nodes: BTreeMap::new(),
            events: BTreeMap::new(),
            next_seq: 0,
            faults: true,
            partition: None,
            checker: Checker::default(),
            proposals: 0,
            next_proposal_at: 0,
            next_snapshot_at: 1000,
            next_fault_at: 1000,
            stats: Stats::default(),
        };
        for id in voter_ids.iter().copied().chain([observer]) {
            let down = Slot::Down {
                log: SimLog::default(),
                restart_at: 0,
            };
            sim.nodes.insert(
                id,
                SimNode {
                    slot: down,
                    persisted: ElectionState::default(),
                    incarnation: 0,
                },
            );
            sim.start_node(id)?;
        }
        Ok(sim)
    }

    fn up_nodes(&self) -> impl Iterator<Item = &RaftNode<SimLog>> {
        self.nodes.values().filter_map(|node| match &node.slot {
            Slot::Up(raft) => Some(raft.as_ref()),
            Slot::Down { .. } => None,
        })
    }

    fn up_ids(&self) -> Vec<i32> {
        self.up_nodes().map(RaftNode::node_id).collect()
    }

    fn raft(&mut self, id: i32) -> Option<&mut RaftNode<SimLog>> {
        match &mut self.nodes.get_mut(&id)?.slot {
            Slot::Up(raft) => Some(raft),
            Slot::Down { .. } => None,
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.rng.random_range(0..items.len())])
    }

    // ---- the event loop ----

    fn run_until(&mut self, until: u64) -> SimResult<()> {
        loop {
            let next = self.next_event_time();
            if next > until {
                self.now = until;
                return Ok(());
            }
            self.now = self.now.max(next);
            self.run_due()?;
        }
    }

    fn next_event_time(&self) -> u64 {
        let events = self.events.keys().next().map(|&(time, _)| time);
        let nodes = self.nodes.values().map(|node| match &node.slot {
            Slot::Up(raft) => raft.next_deadline(),
            Slot::Down { restart_at, .. } => *restart_at,
        });
        let faults = self.faults.then_some(self.next_fault_at);
        let chores = [self.next_proposal_at, self.next_snapshot_at];
        events
            .into_iter()
            .chain(nodes)
            .chain(faults)
            .chain(chores)
            .min()
            .unwrap_or(u64::MAX)
    }

    fn run_due(&mut self) -> SimResult<()> {
        while let Some(entry) = self.events.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let event = entry.remove();
            self.dispatch(event)?;
        }
        let ids: Vec<i32> = self.nodes.keys().copied().collect();
        for id in ids {
            self.tick_or_restart(id)?;
        }
        if self.now >= self.next_proposal_at {
            self.propose()?;
            self.next_proposal_at = self.now + self.rng.random_range(5..40);
        }
        if self.now >= self.next_snapshot_at {
            self.snapshot()?;
            self.next_snapshot_at = self.now + self.rng.random_range(300..2000);
        }
        if self.faults && self.now >= self.next_fault_at {
            self.inject_fault()?;
            self.next_fault_at = self.now + self.rng.random_range(200..1500);
        }
        Ok(())
    }

    fn dispatch(&mut self, event: Event) -> SimResult<()> {
        let (node, incarnation) = match &event {
            Event::Deliver {
                to, incarnation, ..
            } => (*to, *incarnation),
            Event::Refused {
                node, incarnation, ..
            } => (*node, *incarnation),
        };
        if self
            .nodes
            .get(&node)
            .is_none_or(|n| n.incarnation != incarnation)
        {
            return Ok(());
        }
        let now = self.now;
        let Some(raft) = self.raft(node) else {
            return Ok(());
        };
        let result = match event {
            Event::Deliver { from, message, .. } => raft.handle(from, message, now),
            Event::Refused { to, id, .. } => raft.request_failed(to, id, now),
        };
        result.map_err(|error| format!("node {node}: {error}"))?;
        self.after_step(node)
    }

    fn tick_or_restart(&mut self, id: i32) -> SimResult<()> {
        let now = self.now;
        match &mut self.nodes.get_mut(&id).expect("known node").slot {
            Slot::Down { restart_at, .. } if *restart_at <= now => self.start_node(id),
            Slot::Up(raft) if raft.next_deadline() <= now => {
                raft.tick(now)
                    .map_err(|error| format!("node {id}: {error}"))?;
                if raft.next_deadline() <= now {
                    return Err(format!(
                        "node {id} ({:?}): tick at {now} left a deadline that is due",
                        raft.role()
                    ));
                }
                self.after_step(id)
            }
            _ => Ok(()),
        }
    }

    /// Carries out a node's actions and checks it.
    fn after_step(&mut self, id: i32) -> SimResult<()> {
        let Some(raft) = self.raft(id) else {
            return Ok(());
        };
        for action in raft.drain_actions() {
            let node = self.nodes.get_mut(&id).expect("known node");
            match action {
                Action::Persist(state) => node.persisted = state,
                Action::Send { to, message } => {
                    let incarnation = node.incarnation;
                    self.send(id, incarnation, to, message);
                }
                Action::LeaderChanged { .. } | Action::HighWatermark(_) => {}
            }
        }
        self.check(id)
    }

    fn check(&mut self, id: i32) -> SimResult<()> {
        let Some(Slot::Up(raft)) = self.nodes.get_mut(&id).map(|node| &mut node.slot) else {
            return Ok(());
        };
        let fresh = raft.log_mut().take_fresh();
        let (role, epoch, high_watermark) = (raft.role(), raft.epoch(), raft.high_watermark());
        let chain = raft.log().chain();
        for (offset, entry) in fresh {
            self.checker.log_entry(id, offset, entry)?;
        }
        self.checker.high_watermark(id, high_watermark, chain)?;
        if role == Role::Leader {
            self.checker.leader(epoch, id, chain)?;
        }
        Ok(())
    }

    fn send(&mut self, from: i32, from_incarnation: u64, to: i32, message: Message) {
        self.stats.messages += 1;
        let Some(destination) = self.nodes.get(&to) else {
            return;
        };
        let incarnation = destination.incarnation;
        if let (Slot::Down { .. }, Message::Request { id, .. }) = (&destination.slot, &message) {
            if self.rng.random_bool(0.5) {
                let refused = Event::Refused {
                    node: from,
                    incarnation: from_incarnation,
                    to,
                    id: *id,
                };
                self.schedule(1, refused);
            }
            return;
        }
        let cut = self
            .partition
            .as_ref()
            .is_some_and(|side| side.contains(&from) != side.contains(&to));
        if cut || (self.faults && self.rng.random_bool(DROP_PROBABILITY)) {
            return;
        }
        let copies = if self.faults && self.rng.random_bool(DUPLICATE_PROBABILITY) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.rng.random_range(1..=MAX_DELAY_MS);
            let message = message.clone();
            self.schedule(
                delay,
                Event::Deliver {
                    from,
                    to,
                    incarnation,
                    message,
                },
            );
        }
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        self.next_seq += 1;
        self.events.insert((self.now + delay, self.next_seq), event);
    }

    // ---- clients, snapshots, faults ----

    fn propose(&mut self) -> SimResult<()> {
        let leaders: Vec<i32> = self
            .up_nodes()
            .filter(|raft| raft.role() == Role::Leader)
            .map(RaftNode::node_id)
            .collect();
        let Some(leader) = self.pick(&leaders) else {
            return Ok(());
        };
        let count = self.rng.random_range(1..=3);
        let records = (0..count)
            .map(|_| {
                self.proposals += 1;
                Bytes::from(format!("seed {} record {}", self.seed, self.proposals))
            })
            .collect();
        let now = self.now;
        let raft = self.raft(leader).expect("a live leader");
        raft.propose(records, now)
            .map_err(|error| format!("node {leader}: {error}"))?;
        self.after_step(leader)
    }

    fn snapshot(&mut self) -> SimResult<()> {
        let ids = self.up_ids();
        let Some(id) = self.pick(&ids) else {
            return Ok(());
        };
        let raft = self.raft(id).expect("a live node");
        let high_watermark = raft.high_watermark();
        let taken = raft.log_mut().snapshot_below(high_watermark);
        if taken
            .map_err(|error| format!("node {id}: snapshot: {error}"))?
            .is_some()
        {
            self.stats.snapshots += 1;
        }
        Ok(())
    }

    fn inject_fault(&mut self) -> SimResult<()> {
        let up = self.up_ids();
        match self.rng.random_range(0..10) {
            0..=3 if up.len() > 1 => {
                let id = self.pick(&up).expect("a live node");
                let restart_at = self.now + self.rng.random_range(100..3000);
                self.crash(id, restart_at);
            }
            4..=6 => {
                let all: Vec<i32> = self.nodes.keys().copied().collect();
                let side: BTreeSet<i32> = all
                    .into_iter()
                    .filter(|_| self.rng.random_bool(0.5))
                    .collect();
                self.partition = Some(side);
                self.stats.partitions += 1;
            }
            7 | 8 => self.partition = None,
            _ => {
                let leaders: Vec<i32> = self
                    .up_nodes()
                    .filter(|raft| raft.role() == Role::Leader)
                    .map(RaftNode::node_id)
                    .collect();
                if let Some(leader) = self.pick(&leaders) {
                    let now = self.now;
                    let raft = self.raft(leader).expect("a live leader");
                    raft.resign(now)
                        .map_err(|error| format!("node {leader}: {error}"))?;
                    self.stats.resignations += 1;
                    self.after_step(leader)?;
                }
            }
        }
        Ok(())
    }

    fn crash(&mut self, id: i32, restart_at: u64) {
        let node = self.nodes.get_mut(&id).expect("known node");
        let slot = std::mem::replace(
            &mut node.slot,
            Slot::Down {
                log: SimLog::default(),
                restart_at,
            },
        );
        if let Slot::Up(raft) = slot {
            node.slot = Slot::Down {
                log: raft.into_log(),
                restart_at,
            };
            node.incarnation += 1;
            self.stats.crashes += 1;
        } else {
            node.slot = slot;
        }
    }

    /// Restart = a new node from the persisted election state and the same log.
    fn start_node(&mut self, id: i32) -> SimResult<()> {
        let node = self.nodes.get_mut(&id).expect("known node");
        let down = std::mem::replace(
            &mut node.slot,
            Slot::Down {
                log: SimLog::default(),
                restart_at: u64::MAX,
            },
        );
        let Slot::Down { log, .. } = down else {
            node.slot = down;
            return Ok(());
        };
        let seed = self.seed ^ ((id as u64) << 32) ^ node.incarnation;
        let config = node_config(id, &self.voters, seed);
        let raft = RaftNode::new(config, node.persisted, log, self.now)
            .map_err(|error| format!("node {id} failed to start: {error}"))?;
        node.slot = Slot::Up(Box::new(raft));
        self.checker.restarted(id);
        self.after_step(id)
    }

    // ---- recovery ----

    fn heal(&mut self) -> SimResult<()> {
        self.faults = false;
        self.partition = None;
        let now = self.now;
        for node in self.nodes.values_mut() {
            if let Slot::Down { restart_at, .. } = &mut node.slot {
                *restart_at = now;
            }
        }
        self.run_due()
    }

    /// After healing: a leader emerges and a fresh proposal commits on every node. Returns
    /// how long that took.
    fn recover(&mut self) -> SimResult<u64> {
        let healed_at = self.now;
        let mut marker: Option<(i32, i32, i64, u64)> = None;
        while self.now < healed_at + RECOVERY_BOUND_MS {
            let newest_leader = self
                .up_nodes()
                .filter(|raft| raft.role() == Role::Leader)
                .max_by_key(|raft| raft.epoch())
                .map(|raft| (raft.node_id(), raft.epoch()));
            if let Some((leader, epoch)) = newest_leader {
                if marker.is_none_or(|(_, marked_epoch, _, _)| marked_epoch != epoch) {
                    let record = format!("seed {} liveness marker in epoch {epoch}", self.seed);
                    let hash = record_hash(record.as_bytes());
                    let now = self.now;
                    let raft = self.raft(leader).expect("a live leader");
                    let offset = raft
                        .propose(vec![Bytes::from(record)], now)
                        .map_err(|error| format!("node {leader}: {error}"))?;
                    self.after_step(leader)?;
                    marker = Some((leader, epoch, offset, hash));
                }
            }
            if let Some((_, epoch, offset, hash)) = marker {
                let committed_everywhere = self.up_nodes().count() == self.nodes.len()
                    && self.up_nodes().all(|raft| {
                        raft.high_watermark() > offset
                            && raft
                                .log()
                                .chain()
                                .get(offset as usize)
                                .is_some_and(|entry| entry.epoch == epoch && entry.hash == hash)
                    });
                if committed_everywhere {
                    return Ok(self.now - healed_at);
                }
            }
            self.run_until(self.now + 10)?;
        }
        let states: Vec<String> = self
            .up_nodes()
            .map(|raft| {
                format!(
                    "node {} {:?} epoch {} leader {:?} hw {} end {}",
                    raft.node_id(),
                    raft.role(),
                    raft.epoch(),
                    raft.leader_id(),
                    raft.high_watermark(),
                    raft.log().chain().len()
                )
            })
            .collect();
        Err(format!("liveness: nothing committed everywhere {RECOVERY_BOUND_MS} ms after healing: {states:?}"))
    }
}
