//! Time as data. The driver chooses the origin and passes `Now` into every input; this module
//! never reads a clock.
//!
//! `mono` orders events and drives timeouts; it never goes backwards within one process
//! incarnation. `wall_ms` is the node's idea of Unix time, used only for record timestamps and
//! time-based retention, and may jump or be skewed.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A monotonic instant in nanoseconds since a driver-chosen origin.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub u64);

impl Instant {
    pub const ZERO: Instant = Instant(0);

    pub fn from_nanos(nanos: u64) -> Instant {
        Instant(nanos)
    }

    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time since `earlier`, or zero if `earlier` is later (never panics on skewed inputs).
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        let nanos = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(nanos))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        let nanos = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_sub(nanos))
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}ms", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// What a driver knows about the current time when it hands an input to a state machine.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Now {
    /// Monotonic time: timeouts and ordering.
    pub mono: Instant,
    /// Wall-clock milliseconds since the Unix epoch, as this node believes it to be.
    pub wall_ms: i64,
}

impl Now {
    pub fn at(mono: Instant, wall_ms: i64) -> Now {
        Now { mono, wall_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_arithmetic_saturates_instead_of_panicking() {
        let t = Instant(5);
        assert_eq!(t - Duration::from_nanos(10), Instant(0));
        assert_eq!(
            Instant(u64::MAX - 1) + Duration::from_secs(1),
            Instant(u64::MAX)
        );
        assert_eq!(Instant(3).saturating_since(Instant(10)), Duration::ZERO);
        assert_eq!(
            Instant(10).saturating_since(Instant(3)),
            Duration::from_nanos(7)
        );
    }
}
