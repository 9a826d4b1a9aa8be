//! sluice-core: the sans-IO heart of Sluice.
//!
//! Everything here is a deterministic state machine. Nothing in this crate performs IO, reads a
//! clock, spawns a thread, or draws from the operating system's randomness: time arrives as
//! [`time::Now`] inside inputs, randomness comes from a seeded [`rng::DetRng`], and every effect
//! (a message to a peer, a storage write, a reply to a client) leaves as data from `poll_output`.
//!
//! # The driving contract
//!
//! Every state machine in this crate has the same shape (after quinn-proto and str0m):
//!
//! 1. `handle_input(input)` is the only mutator. Every input carries `now`.
//! 2. After each `handle_input`, the driver drains `poll_output()` until it returns `None`, and
//!    only then feeds the next input. Outputs are messages, storage requests, client replies and
//!    observability events.
//! 3. The driver reads `poll_timeout()` and delivers `Input::Timeout(now)` once that deadline has
//!    passed. A timeout delivered early is a no-op, never an error.
//! 4. Every storage request is answered by exactly one completion input, in the order the
//!    requests were emitted. A machine never emits an output that depends on durability (an
//!    acknowledgement, a vote) before the completion of the write it depends on.
//! 5. `invariants()` runs at the end of every `handle_input`; cheap assertions are always on.
//!
//! Drivers (`sluice-sim`, `sluice`) make no protocol decisions: they move bytes, run timers and
//! perform storage requests.

#![forbid(unsafe_code)]

pub mod broker;
pub mod ids;
pub mod protocol;
pub mod raft;
pub mod rng;
pub mod storage;
pub mod time;
