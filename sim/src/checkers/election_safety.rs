//! Election safety: at most one node becomes leader in any term (Raft §5.2), across crashes
//! and restarts. Catches double voting and votes that were not durable before they were sent.

use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct ElectionSafety {
    leaders: BTreeMap<u64, u32>,
}

impl ElectionSafety {
    pub fn on_leader(&mut self, term: u64, node: u32) -> Result<(), String> {
        match self.leaders.insert(term, node) {
            Some(other) if other != node => {
                Err(format!("two leaders in term {term}: n{other} and n{node}"))
            }
            _ => Ok(()),
        }
    }

    pub fn leaders_elected(&self) -> usize {
        self.leaders.len()
    }
}
