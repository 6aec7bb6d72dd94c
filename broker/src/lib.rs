//! A Kafka-compatible broker: log storage, the Kafka wire protocol, consumer
//! groups and the KRaft metadata log, in one binary.

pub mod admin_http;
pub mod alloc;
pub mod client;
pub mod config;
pub mod controller;
pub mod group;
pub mod handlers;
pub mod kraft;
pub mod meta_properties;
pub mod metadata;
pub mod network;
pub mod protocol;
pub mod raft;
pub mod replication;
pub mod server;
pub mod storage;

#[global_allocator]
static ALLOCATOR: alloc::GuardedAllocator = alloc::GuardedAllocator;
