//! The Kafka-level simulator: full broker state machines (`sluice_core::broker::Broker`, with
//! their metadata and partition Raft groups, storage on `SimFs`) in a cluster of 3 or 5, driven
//! by simulated Kafka clients that speak the wire protocol, under every fault the Raft-level
//! simulator injects (network, process, clock, disk), with Jepsen's Kafka anomaly checkers.
//!
//! Files: `config.rs` (every knob, the banner, planted bugs), `sim.rs` (the event loop,
//! brokers, connections, faults, phases), `client.rs` (what clients share, the admin client),
//! `producer.rs`, `consumer.rs`, `group_member.rs` (consumer-group members and the offset
//! observer), `history.rs` (sends, polls, group operations), `checkers/` (one file per
//! anomaly class), `failover.rs` (failover time from the history), `rebalance.rs` (rebalance
//! time of the group).
//!
//! It reuses the Raft-level simulator's pieces unchanged: the event queue, the network and its
//! fault model, the clocks, `SimFs` and the device queue, fault actions and plans, the trace,
//! seed streams, `Verdict` and `Violation`.

pub mod checkers;
pub mod client;
pub mod config;
pub mod consumer;
pub mod failover;
pub mod group_member;
pub mod history;
pub mod producer;
pub mod rebalance;
pub mod sim;

pub use config::{
    BrokerKnobs, GroupTrigger, GroupWorkload, KafkaBug, KafkaConfig, KafkaWorkload, MemberAction,
    ProducerKind, RebalanceStep, TimedMemberAction,
};
pub use sim::{KafkaReport, KafkaSim, KafkaStats};
