//! The records of the internal `__consumer_offsets` topic, in Kafka's key and value schemas
//! (`OffsetCommitKey`/`OffsetCommitValue`, `GroupMetadataKey`/`GroupMetadataValue`), and the
//! committed view of one offsets partition that every replica rebuilds from them.
//!
//! Owns "what a group's durable state is" and "how it is spelled in the log". The live
//! coordinator (members, timers, waiting requests) is in `state.rs`; it writes these records
//! and starts from [`Stored`] when it takes over a partition.
//!
//! A record with a null value is a tombstone for its key. Replaying a partition's committed
//! records in log order, from any point at or before its latest checkpoint, gives the same
//! [`Stored`]: a checkpoint rewrites every live key, so what lies before it is redundant.

use crate::protocol::error::DecodeError;
use crate::protocol::record::{build_batch, read_records, BatchSpec, NewRecord};
use crate::protocol::wire::{Reader, Writer};
use bytes::Bytes;
use std::collections::BTreeMap;

/// Why a stored record does not decode.
#[derive(Debug, PartialEq, Eq)]
pub enum BadRecord {
    Decode(DecodeError),
    UnknownVersion(&'static str, i16),
}

impl From<DecodeError> for BadRecord {
    fn from(e: DecodeError) -> Self {
        BadRecord::Decode(e)
    }
}

/// The internal topic that holds committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Key versions (Kafka's numbering): 0 and 1 are offset commits, 2 is group metadata.
const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
/// Value versions written here.
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

/// A committed offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    /// -1 when the client did not say.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// A group's membership as of its last completed rebalance step.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp: i64,
    pub members: Vec<MemberValue>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MemberValue {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's chosen protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// One record of the offsets topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupRecord {
    Offset {
        group: String,
        topic: String,
        partition: i32,
        /// `None`: the offset is deleted.
        value: Option<OffsetValue>,
    },
    Group {
        group: String,
        /// `None`: the group is deleted.
        value: Option<GroupValue>,
    },
}

impl GroupRecord {
    pub fn group(&self) -> &str {
        match self {
            GroupRecord::Offset { group, .. } | GroupRecord::Group { group, .. } => group,
        }
    }

    /// (key, value) bytes; a tombstone has no value.
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut k = Writer::new();
        match self {
            GroupRecord::Offset {
                group,
                topic,
                partition,
                value,
            } => {
                k.i16(OFFSET_KEY_VERSION);
                k.string(false, group);
                k.string(false, topic);
                k.i32(*partition);
                let v = value.as_ref().map(|v| {
                    let mut w = Writer::new();
                    w.i16(OFFSET_VALUE_VERSION);
                    w.i64(v.offset);
                    w.i32(v.leader_epoch);
                    w.string(false, &v.metadata);
                    w.i64(v.commit_timestamp);
                    w.into_inner()
                });
                (k.into_inner(), v)
            }
            GroupRecord::Group { group, value } => {
                k.i16(GROUP_KEY_VERSION);
                k.string(false, group);
                let v = value.as_ref().map(|g| {
                    let mut w = Writer::new();
                    w.i16(GROUP_VALUE_VERSION);
                    w.string(false, &g.protocol_type);
                    w.i32(g.generation);
                    w.nullable_string(false, g.protocol.as_deref());
                    w.nullable_string(false, g.leader.as_deref());
                    w.i64(g.state_timestamp);
                    w.array_len(false, Some(g.members.len()));
                    for m in &g.members {
                        w.string(false, &m.member_id);
                        w.nullable_string(false, m.instance_id.as_deref());
                        w.string(false, &m.client_id);
                        w.string(false, &m.client_host);
                        w.i32(m.rebalance_timeout_ms);
                        w.i32(m.session_timeout_ms);
                        w.bytes(false, &m.subscription);
                        w.bytes(false, &m.assignment);
                    }
                    w.into_inner()
                });
                (k.into_inner(), v)
            }
        }
    }

    /// Decodes a record; older value versions (0 to 3) are read too.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<GroupRecord, BadRecord> {
        let mut k = Reader::new(key);
        match k.i16()? {
            0 | 1 => {
                let group = k.string(false)?;
                let topic = k.string(false)?;
                let partition = k.i32()?;
                let value = match value {
                    None => None,
                    Some(v) => Some(decode_offset_value(v)?),
                };
                Ok(GroupRecord::Offset {
                    group,
                    topic,
                    partition,
                    value,
                })
            }
            2 => {
                let group = k.string(false)?;
                let value = match value {
                    None => None,
                    Some(v) => Some(decode_group_value(v)?),
                };
                Ok(GroupRecord::Group { group, value })
            }
            v => Err(BadRecord::UnknownVersion("key", v)),
        }
    }
}

fn decode_offset_value(v: &[u8]) -> Result<OffsetValue, BadRecord> {
    let mut r = Reader::new(v);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(BadRecord::UnknownVersion("offset value", version));
    }
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string(false)?;
    let commit_timestamp = r.i64()?;
    if version == 1 {
        r.i64()?; // expire timestamp, no longer used
    }
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

fn decode_group_value(v: &[u8]) -> Result<GroupValue, BadRecord> {
    let mut r = Reader::new(v);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(BadRecord::UnknownVersion("group value", version));
    }
    let protocol_type = r.string(false)?;
    let generation = r.i32()?;
    let protocol = r.nullable_string(false)?;
    let leader = r.nullable_string(false)?;
    let state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    // Each member takes at least 4 bytes on the wire, which bounds the count.
    let n = r.array_len(false, 4)?.unwrap_or(0);
    let mut members = Vec::new();
    for _ in 0..n {
        let member_id = r.string(false)?;
        let instance_id = if version >= 3 {
            r.nullable_string(false)?
        } else {
            None
        };
        let client_id = r.string(false)?;
        let client_host = r.string(false)?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        let subscription = r.bytes(false)?;
        let assignment = r.bytes(false)?;
        members.push(MemberValue {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: if rebalance_timeout_ms < 0 {
                session_timeout_ms
            } else {
                rebalance_timeout_ms
            },
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp,
        members,
    })
}

/// The record header that marks a checkpoint batch: it holds every live key of its partition,
/// so the log before it may be deleted.
pub const CHECKPOINT_HEADER: &str = "sluice.checkpoint";

/// One batch holding `records` (not idempotent; the coordinator stamps offsets on append). A
/// checkpoint carries [`CHECKPOINT_HEADER`] on its first record; an empty checkpoint holds one
/// harmless tombstone, because a batch needs a record.
pub fn encode_batch(records: &[GroupRecord], timestamp: i64, checkpoint: bool) -> Vec<u8> {
    let placeholder = [GroupRecord::Group {
        group: String::new(),
        value: None,
    }];
    let records = if records.is_empty() {
        &placeholder[..]
    } else {
        records
    };
    let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> =
        records.iter().map(GroupRecord::encode).collect();
    let new: Vec<NewRecord<'_>> = encoded
        .iter()
        .enumerate()
        .map(|(i, (k, v))| NewRecord {
            key: Some(k),
            value: v.as_deref(),
            headers: if checkpoint && i == 0 {
                vec![(CHECKPOINT_HEADER, None)]
            } else {
                Vec::new()
            },
            ..NewRecord::default()
        })
        .collect();
    build_batch(
        BatchSpec {
            base_timestamp: timestamp,
            ..BatchSpec::default()
        },
        &new,
    )
}

/// One stored batch, decoded.
#[derive(Debug, PartialEq, Eq)]
pub struct DecodedBatch {
    pub records: Vec<GroupRecord>,
    /// Records that did not decode: the topic is internal, so only a broker of another
    /// version could have written them.
    pub undecodable: usize,
    pub checkpoint: bool,
}

/// The records of one stored batch; a record that does not decode is skipped and counted.
pub fn decode_batch(batch: &[u8]) -> DecodedBatch {
    let Ok(records) = read_records(batch) else {
        return DecodedBatch {
            records: Vec::new(),
            undecodable: 1,
            checkpoint: false,
        };
    };
    let checkpoint = records
        .first()
        .is_some_and(|r| r.headers.iter().any(|(k, _)| k == CHECKPOINT_HEADER));
    let mut out = Vec::with_capacity(records.len());
    let mut bad = 0;
    for r in records {
        let Some(key) = r.key.as_deref() else {
            bad += 1;
            continue;
        };
        match GroupRecord::decode(key, r.value.as_deref()) {
            Ok(rec) => out.push(rec),
            Err(_) => bad += 1,
        }
    }
    DecodedBatch {
        records: out,
        undecodable: bad,
        checkpoint,
    }
}

/// A group's committed state: its last membership record and its committed offsets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredGroup {
    pub meta: Option<GroupValue>,
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
}

/// The committed view of one offsets partition, rebuilt from its records on every replica.
#[derive(Clone, Debug, Default)]
pub struct Stored {
    pub groups: BTreeMap<String, StoredGroup>,
    /// Records applied since the last checkpoint (or since start-up).
    pub applied_since_checkpoint: u64,
    /// Records that do not decode (written by another version).
    pub undecodable: u64,
    /// The base offset of the latest committed checkpoint: the log below it is redundant.
    pub checkpoint_start: Option<i64>,
}

impl Stored {
    pub fn apply(&mut self, record: GroupRecord) {
        self.applied_since_checkpoint += 1;
        match record {
            GroupRecord::Offset {
                group,
                topic,
                partition,
                value,
            } => match value {
                Some(v) => {
                    self.groups
                        .entry(group)
                        .or_default()
                        .offsets
                        .insert((topic, partition), v);
                }
                None => {
                    if let Some(g) = self.groups.get_mut(&group) {
                        g.offsets.remove(&(topic, partition));
                        if g.meta.is_none() && g.offsets.is_empty() {
                            self.groups.remove(&group);
                        }
                    }
                }
            },
            GroupRecord::Group { group, value } => match value {
                Some(v) => self.groups.entry(group).or_default().meta = Some(v),
                None => {
                    if let Some(g) = self.groups.get_mut(&group) {
                        g.meta = None;
                        if g.offsets.is_empty() {
                            self.groups.remove(&group);
                        }
                    }
                }
            },
        }
    }

    /// Applies every record of a committed batch stored at `base_offset`.
    pub fn apply_batch(&mut self, batch: &[u8], base_offset: i64) {
        let decoded = decode_batch(batch);
        self.undecodable += decoded.undecodable as u64;
        if decoded.checkpoint {
            self.checkpoint_start = Some(base_offset);
            self.applied_since_checkpoint = 0;
        }
        for r in decoded.records {
            self.apply(r);
        }
    }

    /// Live keys: the records a checkpoint rewrites.
    pub fn live_records(&self) -> usize {
        self.groups
            .values()
            .map(|g| g.offsets.len() + usize::from(g.meta.is_some()))
            .sum()
    }

    /// Every live key as a record: replaying these alone gives this state.
    pub fn checkpoint(&self) -> Vec<GroupRecord> {
        let mut out = Vec::with_capacity(self.live_records());
        for (group, g) in &self.groups {
            if let Some(meta) = &g.meta {
                out.push(GroupRecord::Group {
                    group: group.clone(),
                    value: Some(meta.clone()),
                });
            }
            for ((topic, partition), v) in &g.offsets {
                out.push(GroupRecord::Offset {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: Some(v.clone()),
                });
            }
        }
        out
    }
}

/// Kafka's `String.hashCode` of a group id (UTF-16 code units), so a group maps to the same
/// `__consumer_offsets` partition as it would on a Kafka cluster of the same partition count.
pub fn partition_for(group: &str, partitions: u32) -> u32 {
    let mut h: i32 = 0;
    for unit in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    ((h & 0x7fff_ffff) as u32) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> MemberValue {
        MemberValue {
            member_id: id.into(),
            instance_id: Some("i-1".into()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 30_000,
            session_timeout_ms: 10_000,
            subscription: Bytes::from_static(b"sub"),
            assignment: Bytes::from_static(b"asg"),
        }
    }

    #[test]
    fn records_round_trip_through_a_batch() {
        let records = vec![
            GroupRecord::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: Some(OffsetValue {
                    offset: 42,
                    leader_epoch: 7,
                    metadata: "m".into(),
                    commit_timestamp: 1000,
                }),
            },
            GroupRecord::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 4,
                value: None,
            },
            GroupRecord::Group {
                group: "g".into(),
                value: Some(GroupValue {
                    protocol_type: "consumer".into(),
                    generation: 5,
                    protocol: Some("range".into()),
                    leader: Some("m-1".into()),
                    state_timestamp: 99,
                    members: vec![member("m-1"), member("m-2")],
                }),
            },
            GroupRecord::Group {
                group: "h".into(),
                value: None,
            },
        ];
        let batch = encode_batch(&records, 5, false);
        assert_eq!(
            decode_batch(&batch),
            DecodedBatch {
                records,
                undecodable: 0,
                checkpoint: false
            }
        );
        let empty_checkpoint = decode_batch(&encode_batch(&[], 5, true));
        assert!(empty_checkpoint.checkpoint);
        let mut s = Stored::default();
        s.apply_batch(&encode_batch(&[], 5, true), 77);
        assert_eq!(s.checkpoint_start, Some(77));
        assert!(s.groups.is_empty());
    }

    #[test]
    fn replay_keeps_the_latest_value_and_honours_tombstones() {
        let offset = |p: i32, o: Option<i64>| GroupRecord::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: p,
            value: o.map(|offset| OffsetValue {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: 0,
            }),
        };
        let mut s = Stored::default();
        for r in [offset(0, Some(1)), offset(0, Some(5)), offset(1, Some(2))] {
            s.apply(r);
        }
        assert_eq!(s.groups["g"].offsets[&("t".into(), 0)].offset, 5);
        // A checkpoint alone rebuilds the same state.
        let mut again = Stored::default();
        for r in s.checkpoint() {
            again.apply(r);
        }
        assert_eq!(again.groups, s.groups);
        s.apply(offset(0, None));
        s.apply(offset(1, None));
        assert!(s.groups.is_empty(), "a group with nothing left is gone");
    }

    #[test]
    fn hostile_values_are_errors_not_panics() {
        for bytes in [
            &b""[..],
            &[0, 9][..],
            &[0, 3, 0, 0][..],
            &[0, 2, 0, 1, b'x', 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff][..],
        ] {
            let _ = GroupRecord::decode(bytes, Some(bytes));
            let _ = GroupRecord::decode(&[0, 2, 0, 1, b'g'], Some(bytes));
        }
        assert!(GroupRecord::decode(&[0, 7], None).is_err());
    }

    #[test]
    fn groups_map_to_partitions_like_kafka() {
        // Java: "my-group".hashCode() == -1906497762, which Kafka maps to partition 36 of 50.
        assert_eq!(partition_for("my-group", 50), 36);
        assert_eq!(partition_for("", 50), 0);
        assert!(partition_for("g", 1) == 0);
    }
}
