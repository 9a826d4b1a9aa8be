//! The commit index (a partition's high watermark) never goes backwards on a node within one
//! incarnation. A restart starts over from zero, as Raft keeps the commit index volatile;
//! the canonical committed log itself only ever grows. Catches followers that adopt a stale
//! leader commit carried by a reordered or duplicated message.

#[derive(Debug)]
pub struct CommitMonotonic {
    last: Vec<u64>,
}

impl CommitMonotonic {
    pub fn new(nodes: usize) -> CommitMonotonic {
        CommitMonotonic {
            last: vec![0; nodes],
        }
    }

    pub fn on_restart(&mut self, node: usize) {
        self.last[node] = 0;
    }

    pub fn observe(&mut self, node: usize, commit: u64) -> Result<(), String> {
        let last = self.last[node];
        if commit < last {
            return Err(format!(
                "n{} commit index went back from i{last} to i{commit}",
                node + 1
            ));
        }
        self.last[node] = commit;
        Ok(())
    }
}
