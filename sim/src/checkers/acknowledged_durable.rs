//! Acknowledged appends survive: every append a client was told was committed at index `i`
//! is in the canonical log at `i` when acknowledged and still there, on every node, at the end.
//! Catches acknowledgements sent before the write they depend on was synced.

use sluice_core::raft::Entry;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct AcknowledgedDurable {
    /// value -> acknowledged index
    acked: BTreeMap<u64, u64>,
}

impl AcknowledgedDurable {
    pub fn on_ack(&mut self, value: u64, index: u64, canonical: &[Entry]) -> Result<(), String> {
        self.acked.insert(value, index);
        check_one(value, index, canonical, "at acknowledgement")
    }

    pub fn final_check(&self, node: u32, log: &[Entry]) -> Result<(), String> {
        for (&value, &index) in &self.acked {
            check_one(value, index, log, &format!("in n{node}'s final log"))?;
        }
        Ok(())
    }

    pub fn acknowledged(&self) -> usize {
        self.acked.len()
    }
}

fn check_one(value: u64, index: u64, log: &[Entry], when: &str) -> Result<(), String> {
    let found = log
        .get(index as usize - 1)
        .and_then(|e| crate::history::decode_value(&e.data));
    if found != Some(value) {
        let what = match log.get(index as usize - 1) {
            Some(e) => super::committed_prefix::render(e),
            None => "nothing".to_string(),
        };
        return Err(format!(
            "acknowledged v{value:#x} at i{index} is missing {when}: found {what}"
        ));
    }
    Ok(())
}
