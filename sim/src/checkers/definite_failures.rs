//! A definitely failed append is never committed (Jepsen's "aborted read" for a log): a client
//! told "not leader" or "busy" must be able to retry without fear of a duplicate. Catches
//! nodes that append before deciding they cannot accept, or report failure after appending.

use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub struct DefiniteFailures {
    failed: BTreeSet<u64>,
}

impl DefiniteFailures {
    pub fn on_failed(&mut self, value: u64) {
        self.failed.insert(value);
    }

    /// Called for newly committed values, and once for every value already committed when an
    /// op fails, so the order of the two events does not matter.
    pub fn on_committed(&self, node: u32, index: u64, value: u64) -> Result<(), String> {
        if self.failed.contains(&value) {
            return Err(format!("v{value:#x} was reported as definitely failed but n{node} committed it at i{index}"));
        }
        Ok(())
    }
}
