//! The simulated network between nodes, and between clients and nodes.
//!
//! Fault model, peer links (node to node):
//! - delay: uniform in `[delay_min, delay_max]`, plus, with probability `tail_ppm`, an extra
//!   uniform delay up to `tail_max` (slow packets). Independent delays reorder messages.
//! - loss with probability `loss_ppm`; duplication with probability `dup_ppm` (the copy gets
//!   its own delay, so it may arrive first).
//! - partitions: any directed link can be blocked; symmetric and asymmetric partitions and the
//!   isolation of one node are sets of blocked links. A message is dropped if its link is
//!   blocked when it is sent or when it would arrive (in-flight packets die with the link).
//! - clogging: a clogged link holds every message until the clog ends, then delivers it.
//!
//! Client links behave like TCP connections: never duplicated, delayed like peer links, and
//! dropped with probability `client_drop_ppm` (a connection reset mid-request: the client sees
//! a timeout). Partitions are between nodes only; a client can still reach an isolated node,
//! which is exactly the "leader isolated while clients keep producing to it" shape.
//!
//! Not modelled: bandwidth limits and congestion, message corruption (the wire codec's CRCs
//! and the hostile-frame tests own that), partial delivery of one message.

use sluice_core::rng::DetRng;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkParams {
    pub delay_min_us: u64,
    pub delay_max_us: u64,
    pub tail_ppm: u32,
    pub tail_max_us: u64,
    pub loss_ppm: u32,
    pub dup_ppm: u32,
    pub client_drop_ppm: u32,
}

impl Default for NetworkParams {
    fn default() -> Self {
        NetworkParams {
            delay_min_us: 50,
            delay_max_us: 500,
            tail_ppm: 1_000,
            tail_max_us: 20_000,
            loss_ppm: 0,
            dup_ppm: 0,
            client_drop_ppm: 0,
        }
    }
}

#[derive(Debug)]
pub struct Network {
    pub params: NetworkParams,
    n: usize,
    blocked: Vec<bool>,
    clogged_until: Vec<u64>,
    rng: DetRng,
}

impl Network {
    pub fn new(n: usize, params: NetworkParams, rng: DetRng) -> Network {
        Network {
            params,
            n,
            blocked: vec![false; n * n],
            clogged_until: vec![0; n * n],
            rng,
        }
    }

    fn link(&self, from: usize, to: usize) -> usize {
        from * self.n + to
    }

    pub fn is_blocked(&self, from: usize, to: usize) -> bool {
        self.blocked[self.link(from, to)]
    }

    pub fn set_blocked(&mut self, from: usize, to: usize, blocked: bool) {
        if from != to {
            let l = self.link(from, to);
            self.blocked[l] = blocked;
        }
    }

    pub fn clog(&mut self, a: usize, b: usize, until: u64) {
        for (x, y) in [(a, b), (b, a)] {
            let l = self.link(x, y);
            self.clogged_until[l] = self.clogged_until[l].max(until);
        }
    }

    pub fn heal(&mut self) {
        self.blocked.fill(false);
        self.clogged_until.fill(0);
    }

    pub fn any_blocked(&self) -> bool {
        self.blocked.iter().any(|b| *b)
    }

    fn delay(&mut self) -> u64 {
        let p = &self.params;
        let (lo, hi, tail_ppm, tail_max) =
            (p.delay_min_us, p.delay_max_us, p.tail_ppm, p.tail_max_us);
        let mut us = self.rng.range_inclusive(lo, hi.max(lo));
        if self.rng.chance_ppm(tail_ppm) {
            us += self.rng.range_inclusive(0, tail_max);
        }
        us * 1_000
    }

    /// Arrival times of the copies of a peer message sent now (none if lost or blocked).
    pub fn send_peer(&mut self, now: u64, from: usize, to: usize, out: &mut Vec<u64>) {
        out.clear();
        if self.is_blocked(from, to) || self.rng.chance_ppm(self.params.loss_ppm) {
            return;
        }
        let copies = if self.rng.chance_ppm(self.params.dup_ppm) {
            2
        } else {
            1
        };
        let clog = self.clogged_until[self.link(from, to)];
        for _ in 0..copies {
            let at = now.max(clog) + self.delay();
            out.push(at);
        }
    }

    /// Arrival time of a client-link message, or `None` if the connection dropped it.
    pub fn send_client(&mut self, now: u64) -> Option<u64> {
        if self.rng.chance_ppm(self.params.client_drop_ppm) {
            return None;
        }
        Some(now + self.delay())
    }
}
