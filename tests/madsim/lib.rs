//! The product runtime (`runtime-tokio`) under madsim: real brokers — the same `serve_on`, the
//! same connection handling, framing, peer links, timers and storage worker the `sluice`
//! binary runs — on simulated nodes, with simulated TCP between them, simulated time, node
//! kills, pauses and link clogs. The state-machine simulator (`sim/`) never runs this code;
//! this layer does.
//!
//! - [`disk`]: the nodes' disks, which lose unsynced writes when a node is killed.
//! - [`nodes`]: a cluster of brokers on madsim nodes, each with a skewed clock, and the
//!   faults the tests inject.
//! - [`kafka`]: the simulator's Kafka clients (admin, producers, consumers) driven over
//!   simulated TCP, their history, and the simulator's checkers run on it.
//!
//! Everything here is compiled only with `RUSTFLAGS="--cfg madsim"` (its own target dir; see
//! the README). Replaying a failure: the test prints `MADSIM_TEST_SEED=<seed>`; run the same
//! command with that variable set (and `MADSIM_TEST_NUM` unset).
#![cfg(madsim)]

extern crate madsim_tokio as tokio;

pub mod disk;
pub mod kafka;
pub mod nodes;
