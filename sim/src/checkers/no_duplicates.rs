//! No entry appears twice: a value is committed at one index only, on every node. Values are
//! unique per client operation and clients never resend one, so a duplicate means the log
//! appended the same data twice (for instance, a duplicated network message appended again).

use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct NoDuplicates {
    index_of: BTreeMap<u64, u64>,
}

impl NoDuplicates {
    pub fn on_committed(&mut self, node: u32, index: u64, value: u64) -> Result<(), String> {
        match self.index_of.get(&value) {
            Some(&first) if first != index => Err(format!(
                "v{value:#x} committed twice: at i{first} and, on n{node}, at i{index}"
            )),
            Some(_) => Ok(()),
            None => {
                self.index_of.insert(value, index);
                Ok(())
            }
        }
    }
}
