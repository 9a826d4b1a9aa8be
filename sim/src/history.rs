//! The client-visible history: every operation a simulated client invoked and what it was
//! told. Checkers judge the cluster against this, as Jepsen does.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpOutcome {
    Pending,
    /// Acknowledged as committed at this index.
    Ok {
        index: u64,
        term: u64,
    },
    /// Definitely not appended.
    Failed,
    /// May or may not have been appended.
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Op {
    pub client: u32,
    pub value: u64,
    pub node: u32,
    pub invoked_at: u64,
    pub completed_at: u64,
    pub outcome: OpOutcome,
}

#[derive(Debug, Default)]
pub struct History {
    pub ops: Vec<Op>,
}

impl History {
    pub fn count(&self, f: impl Fn(&OpOutcome) -> bool) -> usize {
        self.ops.iter().filter(|o| f(&o.outcome)).count()
    }
}

/// A unique value per operation: the client id in the top 24 bits, its op counter below.
pub fn value_of(client: u32, op: u64) -> u64 {
    (u64::from(client) << 40) | (op & ((1 << 40) - 1))
}

pub fn encode_value(value: u64, padding: usize) -> bytes::Bytes {
    let mut v = Vec::with_capacity(8 + padding);
    v.extend_from_slice(&value.to_le_bytes());
    v.resize(8 + padding, 0xa5);
    bytes::Bytes::from(v)
}

/// The value carried by a normal entry's data, if it is one of ours.
pub fn decode_value(data: &[u8]) -> Option<u64> {
    let head: [u8; 8] = data.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(head))
}
