//! The log: segments, indexes, retention and compaction. Knows nothing of sockets or Raft.
