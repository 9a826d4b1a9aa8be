//! Deterministic randomness: one wrapper around ChaCha8, seeded by the driver.
//!
//! ChaCha8 is specified and portable, unlike `StdRng`, so a seed means the same stream on every
//! machine and every version of this crate. Streams let one seed feed independent consumers
//! (network, disk, workload, ...) without one consumer's draws moving another's.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::fmt;

#[derive(Clone)]
pub struct DetRng {
    inner: ChaCha8Rng,
}

impl fmt::Debug for DetRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DetRng")
            .field("word_pos", &self.inner.get_word_pos())
            .finish()
    }
}

impl DetRng {
    pub fn new(seed: u64) -> DetRng {
        DetRng::with_stream(seed, 0)
    }

    /// An independent stream of the same seed. Stream ids are append-only: a stream id, once
    /// given a meaning, keeps it, so old seeds replay.
    pub fn with_stream(seed: u64, stream: u64) -> DetRng {
        let mut inner = ChaCha8Rng::seed_from_u64(seed);
        inner.set_stream(stream);
        DetRng { inner }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in `[low, high)`. `low < high` is the caller's promise.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        assert!(low < high, "empty range {low}..{high}");
        let span = high - low;
        // Lemire's multiply-shift with rejection: unbiased and cheap.
        loop {
            let x = self.next_u64();
            let m = u128::from(x) * u128::from(span);
            let lo = m as u64;
            if lo >= span.wrapping_neg() % span {
                return low + (m >> 64) as u64;
            }
        }
    }

    /// Uniform in `[low, high]`.
    pub fn range_inclusive(&mut self, low: u64, high: u64) -> u64 {
        if high == u64::MAX {
            if low == 0 {
                return self.next_u64();
            }
            return self.range(low - 1, high) + 1;
        }
        self.range(low, high + 1)
    }

    /// An index into a slice of `len` elements; `len > 0`.
    pub fn index(&mut self, len: usize) -> usize {
        self.range(0, len as u64) as usize
    }

    /// True with probability `ppm / 1_000_000`.
    pub fn chance_ppm(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.range(0, 1_000_000) < u64::from(ppm)
    }

    /// True with probability one half.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_stream_give_the_same_sequence() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = DetRng::with_stream(7, 3);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..8)
            .map({
                let mut r = DetRng::with_stream(7, 3);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn streams_of_one_seed_are_independent() {
        let mut a = DetRng::with_stream(7, 1);
        let mut b = DetRng::with_stream(7, 2);
        assert_ne!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn range_stays_in_bounds_and_covers_it() {
        let mut r = DetRng::new(1);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let x = r.range(10, 15);
            assert!((10..15).contains(&x));
            seen[(x - 10) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(r.range_inclusive(3, 3), 3);
    }

    #[test]
    fn chance_ppm_extremes() {
        let mut r = DetRng::new(2);
        assert!((0..100).all(|_| !r.chance_ppm(0)));
        assert!((0..100).all(|_| r.chance_ppm(1_000_000)));
    }
}
