//! Raft's safety properties, checked against everything the simulation reports.

use std::collections::{BTreeMap, HashMap};

use crate::sim_log::ChainEntry;

#[derive(Debug, Default)]
pub struct Checker {
    /// The leader of each epoch ever seen.
    leaders: BTreeMap<i32, i32>,
    /// Prefix hash of every (offset, epoch) any log ever held.
    entries: HashMap<(i64, i32), u64>,
    /// Prefix hashes of the committed log, by offset.
    committed: Vec<u64>,
    /// Last high watermark of each node in its current incarnation.
    high_watermarks: BTreeMap<i32, i64>,
}

pub type Verdict = Result<(), String>;

impl Checker {
    pub fn committed_len(&self) -> i64 {
        self.committed.len() as i64
    }

    /// Election safety: at most one leader per epoch over the whole history.
    pub fn leader(&mut self, epoch: i32, node: i32, chain: &[ChainEntry]) -> Verdict {
        let newest = self.leaders.keys().next_back().is_none_or(|&e| e <= epoch);
        match self.leaders.insert(epoch, node) {
            Some(other) if other != node => {
                return Err(format!(
                    "election safety: nodes {other} and {node} both led epoch {epoch}"
                ))
            }
            _ => {}
        }
        // Leader completeness, for the newest leader (older ones may be deposed and stale).
        if newest {
            self.contains_committed(node, chain)?;
        }
        Ok(())
    }

    /// Log matching: the same (offset, epoch) anywhere means the same prefix everywhere.
    pub fn log_entry(&mut self, node: i32, offset: i64, entry: ChainEntry) -> Verdict {
        let known = *self
            .entries
            .entry((offset, entry.epoch))
            .or_insert(entry.prefix);
        if known != entry.prefix {
            return Err(format!(
                "log matching: node {node} holds offset {offset} epoch {} with a different prefix",
                entry.epoch
            ));
        }
        Ok(())
    }

    /// HW monotonic per incarnation, and what it covers agrees with everything ever committed.
    pub fn high_watermark(
        &mut self,
        node: i32,
        high_watermark: i64,
        chain: &[ChainEntry],
    ) -> Verdict {
        let previous = self
            .high_watermarks
            .insert(node, high_watermark)
            .unwrap_or(0);
        if high_watermark < previous {
            return Err(format!(
                "node {node} high watermark went back from {previous} to {high_watermark}"
            ));
        }
        let covered = high_watermark as usize;
        if chain.len() < covered {
            return Err(format!(
                "node {node} lost committed entries: log ends at {} below HW {covered}",
                chain.len()
            ));
        }
        let shared = covered.min(self.committed.len());
        if shared > 0 && chain[shared - 1].prefix != self.committed[shared - 1] {
            return Err(format!("committed entry lost: node {node} disagrees with the committed log below offset {shared}"));
        }
        self.committed
            .extend(chain[shared..covered].iter().map(|entry| entry.prefix));
        Ok(())
    }

    pub fn restarted(&mut self, node: i32) {
        self.high_watermarks.remove(&node);
    }

    fn contains_committed(&self, node: i32, chain: &[ChainEntry]) -> Verdict {
        let Some(&last) = self.committed.last() else {
            return Ok(());
        };
        let committed = self.committed.len();
        if chain.len() < committed || chain[committed - 1].prefix != last {
            return Err(format!(
                "leader completeness: leader {node} lacks committed entries below {committed}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(entries: &[(i32, u64)]) -> Vec<ChainEntry> {
        let mut chain: Vec<ChainEntry> = Vec::new();
        for &(epoch, hash) in entries {
            let entry = ChainEntry::after(chain.last(), epoch, hash);
            chain.push(entry);
        }
        chain
    }

    #[test]
    fn detects_two_leaders_in_one_epoch() {
        let mut checker = Checker::default();
        checker.leader(3, 1, &[]).unwrap();
        checker.leader(3, 1, &[]).unwrap();
        assert!(checker
            .leader(3, 2, &[])
            .unwrap_err()
            .contains("election safety"));
    }

    #[test]
    fn detects_logs_that_share_an_entry_id_but_not_the_prefix() {
        let mut checker = Checker::default();
        let a = chain(&[(1, 10), (1, 11)]);
        let b = chain(&[(1, 99), (1, 11)]);
        checker.log_entry(1, 1, a[1]).unwrap();
        assert!(checker
            .log_entry(2, 1, b[1])
            .unwrap_err()
            .contains("log matching"));
    }

    #[test]
    fn detects_a_lost_committed_entry() {
        let mut checker = Checker::default();
        checker
            .high_watermark(1, 2, &chain(&[(1, 10), (1, 11)]))
            .unwrap();
        // Node 2 commits a different entry at offset 1.
        let other = chain(&[(1, 10), (2, 12)]);
        assert!(checker
            .high_watermark(2, 2, &other)
            .unwrap_err()
            .contains("committed entry lost"));
        // Node 1 truncating below its high watermark is a loss too.
        assert!(checker
            .high_watermark(1, 2, &chain(&[(1, 10)]))
            .unwrap_err()
            .contains("lost committed"));
    }

    #[test]
    fn detects_a_high_watermark_going_back_but_not_across_restarts() {
        let mut checker = Checker::default();
        let log = chain(&[(1, 10), (1, 11)]);
        checker.high_watermark(1, 2, &log).unwrap();
        assert!(checker
            .high_watermark(1, 1, &log)
            .unwrap_err()
            .contains("went back"));
        checker.restarted(1);
        checker.high_watermark(1, 1, &log).unwrap();
    }

    #[test]
    fn detects_a_new_leader_without_the_committed_log() {
        let mut checker = Checker::default();
        checker
            .high_watermark(1, 2, &chain(&[(1, 10), (1, 11)]))
            .unwrap();
        checker.leader(1, 1, &chain(&[(1, 10), (1, 11)])).unwrap();
        let short = chain(&[(1, 10)]);
        assert!(checker
            .leader(2, 2, &short)
            .unwrap_err()
            .contains("leader completeness"));
    }
}
