//! sluice-sim: a single-threaded, deterministic, discrete-event simulator for Sluice's
//! state machines.
//!
//! It drives `sluice-core` state machines directly (no async runtime, no sockets, no files)
//! through an event queue ordered by `(time, seq)`, injects faults from a seeded plan, runs
//! checkers after every event, and replays any run exactly from its seed.
//!
//! Two levels share those pieces: the Raft-level simulator (`sim.rs`: Raft nodes, proposals
//! as the workload) and the Kafka-level one ([`kafka`]: full brokers, Kafka clients, Jepsen's
//! Kafka anomaly checkers).
//!
//! Each fault model documents itself at the top of its file: [`network`], [`disk`], [`clock`],
//! [`faults`]. What is *not* modelled is listed in ARCHITECTURE.md.

#![forbid(unsafe_code)]

pub mod checkers;
pub mod clock;
pub mod config;
pub mod disk;
pub mod faults;
pub mod fs;
pub mod history;
pub mod kafka;
pub mod network;
pub mod queue;
pub mod seeds;
pub mod sim;
pub mod trace;

pub use config::SimConfig;
pub use sim::{Report, Simulation, Stats, Verdict};
