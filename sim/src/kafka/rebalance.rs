//! Rebalance time, measured on the group itself: from a member's death as the group sees it
//! (a crash, a leave, a pause, the crash half of a restart) to the first instant the group is
//! settled again (Stable on its coordinator, whose members are exactly the live members, each
//! holding its assignment of that generation, every partition assigned; see
//! `GroupView::unsettled`). It is checked whenever a member receives an assignment, and in the
//! liveness phase every check interval.
//!
//! A death while the group is still unsettled from an earlier one does not start a new
//! sample: the oldest open one covers both. A sample still open at the end of the run is
//! counted as unresolved.

#[derive(Debug, Default)]
pub struct Rebalance {
    /// When the oldest unsettling death happened.
    open: Option<u64>,
    /// Nanoseconds from a death to the group settled again.
    pub samples: Vec<u64>,
}

impl Rebalance {
    /// A member died (as far as the group can tell) at `now`.
    pub fn on_death(&mut self, now: u64) {
        self.open.get_or_insert(now);
    }

    /// The group is settled at `now`.
    pub fn on_settled(&mut self, now: u64) {
        if let Some(at) = self.open.take() {
            self.samples.push(now.saturating_sub(at));
        }
    }

    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_runs_from_the_first_death_to_the_group_settled() {
        let mut r = Rebalance::default();
        r.on_settled(5);
        assert!(r.samples.is_empty(), "nothing was open");
        r.on_death(10);
        r.on_death(20);
        assert!(r.is_open());
        r.on_settled(50);
        assert_eq!(r.samples, vec![40]);
        assert!(!r.is_open());
    }
}
