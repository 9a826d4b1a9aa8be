//! The client-visible history of a Kafka-level run, as Jepsen records it: every send (a batch
//! of records to one partition) with its outcome, and every poll (the records a fetch returned,
//! with the high watermark it reported) and seek of every consumer.
//!
//! Record values are unique: each encodes (producer, sequence number) in its first eight bytes
//! (`value_of`), so a value found in a log names the one send that carried it. What is not
//! here: the brokers' own view (checkers read that from the final state).
//!
//! Group members (`group_member.rs`) add their own operations ([`GroupOp`]): generations
//! joined, assignments received, commits acknowledged, committed offsets fetched, records
//! delivered and resets. Their fetches are also recorded as polls and seeks, so the consumer
//! checkers judge them too. A run has at most one group; the final state holds what its
//! coordinator and its live members report at the end ([`GroupView`]).

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

/// Why a member incarnation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// It committed, sent LeaveGroup and stopped.
    Left,
    /// It vanished (a scheduled crash or the crash half of a restart).
    Crashed,
    /// The coordinator answered FENCED_INSTANCE_ID: another incarnation holds its
    /// group.instance.id (a fatal error for a Kafka consumer).
    Fenced,
}

/// What a group member did or learned. `member` is the member slot's client id; `member_id`
/// is the id the coordinator gave the incarnation (static members also have `instance`).
#[derive(Clone, Debug)]
pub enum GroupOp {
    /// A member incarnation started.
    Started {
        member: u32,
        instance: Option<String>,
        at: u64,
    },
    /// A member incarnation ended.
    Stopped {
        member: u32,
        member_id: String,
        why: StopReason,
        at: u64,
    },
    /// A JoinGroup answered without error: the incarnation is in `generation`, led by
    /// `leader`. `members` (member id, instance id) is filled only in the leader's answer.
    Joined {
        member: u32,
        member_id: String,
        instance: Option<String>,
        generation: i32,
        leader: String,
        members: Vec<(String, Option<String>)>,
        at: u64,
    },
    /// A SyncGroup answered without error: the member's partitions of the topic in
    /// `generation`.
    Assigned {
        member: u32,
        member_id: String,
        instance: Option<String>,
        generation: i32,
        partitions: Vec<u32>,
        at: u64,
    },
    /// An OffsetCommit acknowledged for `partition`. `reset`: the commit carries a position
    /// the member moved back on purpose.
    Committed {
        member: u32,
        member_id: String,
        generation: i32,
        partition: u32,
        offset: i64,
        reset: bool,
        invoked_at: u64,
        at: u64,
    },
    /// An OffsetFetch answered for `partition` (-1: nothing committed). The end-of-run
    /// observer's fetch is recorded this way too, under its own client id.
    Fetched {
        member: u32,
        partition: u32,
        offset: i64,
        invoked_at: u64,
        at: u64,
    },
    /// Records of `partition` handed to the application, at these offsets.
    Delivered {
        member: u32,
        member_id: String,
        generation: i32,
        partition: u32,
        offsets: Vec<i64>,
        at: u64,
    },
    /// The member moved its position of `partition` back to `offset` on purpose: an explicit
    /// reset (`explicit`), or auto.offset.reset=earliest after OFFSET_OUT_OF_RANGE. The next
    /// commit of the partition may be lower than what was committed before.
    Reset {
        member: u32,
        member_id: String,
        partition: u32,
        offset: i64,
        explicit: bool,
        at: u64,
    },
}

#[derive(Clone, Debug, Default)]
pub struct History {
    pub sends: Vec<Send>,
    pub consumer_ops: Vec<ConsumerOp>,
    pub group_ops: Vec<GroupOp>,
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

/// What the coordinator of the group reports (`Broker::group_summaries`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorView {
    /// 1-based node id.
    pub node: u32,
    pub state: String,
    pub generation: i32,
    pub members: Vec<String>,
}

/// A member that runs (not crashed, left, fenced or paused) and the assignment it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveMember {
    pub member: u32,
    pub member_id: String,
    pub generation: i32,
    /// Its partitions, once SyncGroup answered for `generation` (None while it rebalances).
    pub partitions: Option<Vec<u32>>,
}

/// The group at one instant: its coordinator's view and its live members' views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    pub group: String,
    /// Partitions of the subscribed topic.
    pub partitions: u32,
    /// None: no running broker serves the group's offsets partition with the group loaded.
    pub coordinator: Option<CoordinatorView>,
    pub live: Vec<LiveMember>,
    /// Committed offset per partition (-1: none) as the end-of-run observer fetched them;
    /// None if it did not get to.
    pub committed: Option<Vec<i64>>,
}

impl GroupView {
    /// Why the group is not settled, or None: settled means Stable on its coordinator, whose
    /// members are exactly the live members, each holding its assignment of the coordinator's
    /// generation, and every partition of the topic assigned to one of them.
    pub fn unsettled(&self) -> Option<String> {
        let Some(c) = &self.coordinator else {
            return Some("no running broker coordinates the group".into());
        };
        if c.state != "Stable" {
            return Some(format!(
                "its coordinator n{} reports it {} in generation {}",
                c.node, c.state, c.generation
            ));
        }
        let mut live: Vec<&str> = self.live.iter().map(|m| m.member_id.as_str()).collect();
        live.sort_unstable();
        let mut members: Vec<&str> = c.members.iter().map(String::as_str).collect();
        members.sort_unstable();
        if live.is_empty() || live != members {
            return Some(format!(
                "its coordinator n{} has members {members:?} in generation {}, but the live members are {live:?}",
                c.node, c.generation
            ));
        }
        let mut owned = Vec::new();
        for m in &self.live {
            match &m.partitions {
                Some(ps) if m.generation == c.generation => owned.extend(ps.iter().copied()),
                _ => {
                    return Some(format!(
                    "member {} ({}) holds no assignment of generation {} (it is in generation {})",
                    m.member, m.member_id, c.generation, m.generation
                ))
                }
            }
        }
        owned.sort_unstable();
        owned.dedup();
        let missing: Vec<u32> = (0..self.partitions)
            .filter(|p| !owned.contains(p))
            .collect();
        if !missing.is_empty() {
            return Some(format!(
                "partitions {missing:?} are assigned to no live member in generation {}",
                c.generation
            ));
        }
        None
    }
}

/// What the cluster holds once the liveness phase converged.
#[derive(Clone, Debug, Default)]
pub struct FinalState {
    pub partitions: Vec<FinalPartition>,
    /// The group, if the run has one.
    pub group: Option<GroupView>,
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
