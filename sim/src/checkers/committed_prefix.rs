//! Committed-prefix agreement and log matching. Every entry a node reports committed must equal
//! the canonical entry at that index (State Machine Safety, Raft §5.4.3); at the end, any two
//! logs that agree on an entry's term agree on everything before it (Log Matching, §5.3).
//! Catches followers that keep divergent entries, commits of uncommitted data, and lost
//! committed entries that were replaced.

use sluice_core::raft::Entry;

#[derive(Debug, Default)]
pub struct CommittedPrefix;

impl CommittedPrefix {
    pub fn on_committed(
        &self,
        node: u32,
        index: u64,
        entry: &Entry,
        canonical: &Entry,
    ) -> Result<(), String> {
        if entry != canonical {
            return Err(format!(
                "n{node} committed i{index} = {} but the cluster committed {} there",
                render(entry),
                render(canonical)
            ));
        }
        Ok(())
    }

    /// Pairwise log matching over complete logs.
    pub fn final_check(&self, logs: &[(u32, &[Entry])]) -> Result<(), String> {
        for (i, (a, la)) in logs.iter().enumerate() {
            for (b, lb) in logs.iter().skip(i + 1) {
                let shared = la.len().min(lb.len());
                let Some(last_match) = (0..shared).rev().find(|&k| la[k].term == lb[k].term) else {
                    continue;
                };
                if let Some(k) = (0..=last_match).find(|&k| la[k] != lb[k]) {
                    return Err(format!(
                        "log matching: n{a} and n{b} agree on the term at i{} but differ at i{}: {} vs {}",
                        last_match + 1,
                        k + 1,
                        render(&la[k]),
                        render(&lb[k])
                    ));
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn render(e: &Entry) -> String {
    match crate::history::decode_value(&e.data) {
        Some(v) if e.kind == sluice_core::raft::EntryKind::Normal => {
            format!("(t{} v{v:#x})", e.term.0)
        }
        _ => format!("(t{} {:?})", e.term.0, e.kind),
    }
}
