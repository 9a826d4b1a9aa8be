//! Sluice's product runtime: the Tokio driver around `sluice-core` (`server`, `peers`, the
//! storage thread on real files) and the `sluice` command's tools. `src/main.rs` is the
//! command line; this library is what it runs, and what the madsim tests
//! (`tests/madsim`) run on simulated nodes.
//!
//! Under `RUSTFLAGS="--cfg madsim"` the `tokio` used here is `madsim-tokio`: the same code,
//! with simulated time, TCP and tasks (see `server::serve_on`). Production builds never link
//! madsim.

#[cfg(madsim)]
extern crate madsim_tokio as tokio;

mod client;
mod codecs;
pub mod config;
#[cfg(not(madsim))]
mod disk;
pub mod groups;
mod metrics;
mod peers;
pub mod server;
pub mod tools;
