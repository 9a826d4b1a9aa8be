//! The client-visible history of a Kafka-level run, as Jepsen records it: every send (a batch
//! of records to one partition) with its outcome, and every poll (the records a fetch returned,
//! with the high watermark it reported) and seek of every consumer.
//!
//! Record values are unique: each encodes (producer, sequence number) in its first eight bytes
//! (`value_of`), so a value found in a log names the one send that carried it. What is not
//! here: the brokers' own view (checkers read that from the final state).

/// A send's outcome as the producer knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    Pending,
    /// Acknowledged: the batch's records start at `base_offset`. `node` answered, in `epoch`
    /// (the leader epoch the producer believed the partition had).
    Ok {
        base_offset: i64,
        node: u32,
    },
    /// Definitely not appended (every attempt was refused before anything was written).
    Failed {
        code: i16,
    },
    /// May or may not have been appended (a timeout, a dropped connection, a fire-and-forget
    /// acks=0 send, or an error that can follow an append).
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Send {
    pub producer: u32,
    pub partition: u32,
    pub values: Vec<u64>,
    pub acks: i16,
    pub idempotent: bool,
    /// Producer id, epoch and first sequence of the last attempt (-1 when not idempotent).
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub sequence: i32,
    pub invoked_at: u64,
    pub completed_at: u64,
    pub attempts: u32,
    pub outcome: SendOutcome,
}

impl Send {
    pub fn is_acked_all(&self) -> bool {
        self.acks == -1 && matches!(self.outcome, SendOutcome::Ok { .. })
    }
}

/// One partition's part of one fetch response that came back without an error.
#[derive(Clone, Debug)]
pub struct Poll {
    pub consumer: u32,
    pub partition: u32,
    pub node: u32,
    /// The leader epoch the consumer fetched with (the serving leader's epoch, since the broker
    /// answers a fetch only in the epoch the consumer names).
    pub epoch: i32,
    pub at: u64,
    /// The consumer's position when it sent the fetch.
    pub from: i64,
    pub high_watermark: i64,
    /// (offset, value) of the records at or after `from`, in order.
    pub records: Vec<(i64, u64)>,
}

#[derive(Clone, Debug)]
pub enum ConsumerOp {
    /// The consumer moved its position on purpose (assignment, or an offset reset).
    Seek {
        consumer: u32,
        partition: u32,
        offset: i64,
        at: u64,
    },
    Poll(Poll),
}

#[derive(Clone, Debug, Default)]
pub struct History {
    pub sends: Vec<Send>,
    pub consumer_ops: Vec<ConsumerOp>,
}

impl History {
    pub fn polls(&self) -> impl Iterator<Item = &Poll> {
        self.consumer_ops.iter().filter_map(|o| match o {
            ConsumerOp::Poll(p) => Some(p),
            ConsumerOp::Seek { .. } => None,
        })
    }

    pub fn acked_all(&self) -> usize {
        self.sends.iter().filter(|s| s.is_acked_all()).count()
    }

    pub fn records_polled(&self) -> usize {
        self.polls().map(|p| p.records.len()).sum()
    }
}

/// A partition's log at the end of the run: the serving leader's records through its high
/// watermark, read from its storage.
#[derive(Clone, Debug, Default)]
pub struct FinalPartition {
    pub leader: u32,
    pub high_watermark: i64,
    pub log_start: i64,
    /// The value at each offset from `log_start` (None: a record that is not one of ours).
    pub values: Vec<Option<u64>>,
}

impl FinalPartition {
    pub fn value_at(&self, offset: i64) -> Option<Option<u64>> {
        if offset < self.log_start {
            return None;
        }
        self.values.get((offset - self.log_start) as usize).copied()
    }
}

/// What the cluster holds once the liveness phase converged.
#[derive(Clone, Debug, Default)]
pub struct FinalState {
    pub partitions: Vec<FinalPartition>,
}

/// A unique record value: the producer in the top 24 bits, its record counter below.
pub fn value_of(producer: u32, n: u64) -> u64 {
    (u64::from(producer) << 40) | (n & ((1 << 40) - 1))
}

pub fn producer_of(value: u64) -> u32 {
    (value >> 40) as u32
}

pub fn encode_value(value: u64, padding: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + padding);
    v.extend_from_slice(&value.to_le_bytes());
    v.resize(8 + padding, 0x5a);
    v
}

pub fn decode_value(data: &[u8]) -> Option<u64> {
    let head: [u8; 8] = data.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(head))
}
