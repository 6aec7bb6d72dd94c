//! A Kafka-compatible broker: log storage, the Kafka wire protocol, consumer
//! groups and the KRaft metadata log, in one binary.

pub mod config;
pub mod controller;
pub mod group;
pub mod handlers;
pub mod metadata;
pub mod storage;
