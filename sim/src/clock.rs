//! Per-node clocks.
//!
//! Fault model: each node's monotonic clock runs at its own rate (drift, in parts per million,
//! down to half and up to twice real time) and never goes backwards; the rate can change
//! mid-run (re-anchored, so the clock stays continuous). The wall clock has a per-node skew and
//! can jump forwards or backwards. One global simulated time drives everything; a node only
//! ever sees its own clocks.

use sluice_core::time::{Instant, Now};

/// Simulated wall-clock origin: 2026-01-01T00:00:00Z.
pub const EPOCH_WALL_MS: i64 = 1_767_225_600_000;
pub const RATE_PPM_MIN: i64 = -500_000;
pub const RATE_PPM_MAX: i64 = 1_000_000;

#[derive(Clone, Debug)]
pub struct NodeClock {
    anchor_global: u64,
    anchor_local: u64,
    /// Deviation from real time in parts per million.
    rate_ppm: i64,
    wall_offset_ms: i64,
}

impl NodeClock {
    pub fn new(origin: u64, rate_ppm: i64, wall_offset_ms: i64) -> NodeClock {
        NodeClock {
            anchor_global: 0,
            anchor_local: origin,
            rate_ppm: rate_ppm.clamp(RATE_PPM_MIN, RATE_PPM_MAX),
            wall_offset_ms,
        }
    }

    fn scale(&self) -> u128 {
        (1_000_000 + self.rate_ppm) as u128
    }

    pub fn mono(&self, global: u64) -> Instant {
        let elapsed = global.saturating_sub(self.anchor_global) as u128;
        Instant(self.anchor_local + (elapsed * self.scale() / 1_000_000) as u64)
    }

    pub fn now(&self, global: u64) -> Now {
        let wall_ms = EPOCH_WALL_MS + (global / 1_000_000) as i64 + self.wall_offset_ms;
        Now {
            mono: self.mono(global),
            wall_ms,
        }
    }

    /// The earliest global time at which this node's monotonic clock reads at least `local`.
    pub fn global_at(&self, local: Instant, now_global: u64) -> u64 {
        if local.0 <= self.anchor_local {
            return now_global;
        }
        let delta = (local.0 - self.anchor_local) as u128 * 1_000_000;
        let scale = self.scale();
        let elapsed = delta.div_ceil(scale) as u64;
        (self.anchor_global + elapsed).max(now_global)
    }

    pub fn set_rate(&mut self, global: u64, rate_ppm: i64) {
        self.anchor_local = self.mono(global).0;
        self.anchor_global = global;
        self.rate_ppm = rate_ppm.clamp(RATE_PPM_MIN, RATE_PPM_MAX);
    }

    pub fn rate_ppm(&self) -> i64 {
        self.rate_ppm
    }

    pub fn jump_wall(&mut self, ms: i64) {
        self.wall_offset_ms += ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_is_continuous_across_rate_changes_and_timers_round_trip() {
        let mut c = NodeClock::new(1_000, 250_000, 0);
        let before = c.mono(4_000_000);
        c.set_rate(4_000_000, -400_000);
        assert_eq!(c.mono(4_000_000), before);
        assert!(c.mono(5_000_000) > before);
        let target = Instant(before.0 + 123_456);
        let g = c.global_at(target, 4_000_000);
        assert!(c.mono(g) >= target);
        assert!(c.mono(g - 1) < target);
    }
}
