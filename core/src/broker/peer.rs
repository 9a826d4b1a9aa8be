//! What brokers say to each other: Raft traffic for the metadata group and every partition,
//! batched per destination, and the controller conversation (heartbeats that also carry the
//! metadata log to brokers that are not voters, and admin operations forwarded to the
//! controller). Plain serde types, encoded with bincode inside a versioned envelope (DESIGN §3),
//! so a rolling upgrade can tell versions apart and a peer's bytes are decoded with a size limit.

use super::metadata::{MetaOp, MetaRecord};
use crate::raft;
use serde::{Deserialize, Serialize};

/// The envelope version this build speaks. A peer with another version is refused, not guessed.
pub const PEER_PROTOCOL_VERSION: u16 = 1;
/// The largest envelope a broker decodes (a Raft append is bounded by its batch limit, 1 MiB by
/// default, plus the per-partition framing).
pub const MAX_ENVELOPE_BYTES: usize = 64 << 20;

/// A partition across the cluster: its topic's id (so a re-created topic is another partition)
/// and its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartitionKey {
    pub topic_id: [u8; 16],
    pub partition: u32,
}

/// Which Raft group a message belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GroupKey {
    Metadata,
    Partition(PartitionKey),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub version: u16,
    pub from: i32,
    pub body: PeerBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerBody {
    /// Every Raft message one broker has for another after one input, in order.
    Raft(Vec<(GroupKey, raft::Message)>),
    Heartbeat(Heartbeat),
    HeartbeatReply(HeartbeatReply),
    /// An admin operation for the controller; answered by `Forwarded` with the same id.
    Forward {
        id: u64,
        op: MetaOp,
    },
    Forwarded {
        id: u64,
        result: ForwardResult,
    },
}

/// A broker's periodic report to the controller: who it is, how far it has applied the
/// metadata log, and which partitions it leads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Drawn at start-up: a new value means the broker restarted.
    pub incarnation: u64,
    pub host: String,
    pub port: i32,
    pub peer_addr: String,
    /// The metadata log index this broker's image reflects.
    pub applied: u64,
    /// Partitions this broker leads: (partition, leader epoch, replica lag in offsets).
    pub leading: Vec<LeaderReport>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderReport {
    pub key: PartitionKey,
    pub epoch: i32,
    /// (replica, offsets behind the leader's log end) for each follower.
    pub lag: Vec<(i32, i64)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeartbeatReply {
    /// This broker is not the controller; `leader` is its best guess.
    NotController { leader: Option<i32> },
    Ok {
        /// Committed metadata entries after the broker's `applied`, in order, as (index,
        /// encoded records); no-op entries are left out. For brokers that are not voters
        /// (voters apply their own log).
        entries: Vec<(u64, bytes::Bytes)>,
        /// The last index those entries cover (no-ops included).
        upto: u64,
        leaders: LeaderTable,
    },
}

/// (replica, committed entries it lacks) for each follower of a partition.
pub type Lag = Vec<(i32, i64)>;

/// A partition's leader as its leader reported it: (leader epoch, leader, follower lag).
pub type LeaderInfo = (i32, i32, Lag);

/// Who leads each partition, as the controller last heard from the leaders themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderTable {
    pub leaders: Vec<(PartitionKey, LeaderInfo)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardResult {
    /// Committed at this metadata index, with one (error code, message) per item of the op.
    Done {
        index: u64,
        results: Vec<(i16, Option<String>)>,
    },
    /// Not the controller (any more): try `leader`.
    NotController { leader: Option<i32> },
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_ENVELOPE_BYTES>()
}

impl Envelope {
    pub fn new(from: i32, body: PeerBody) -> Envelope {
        Envelope {
            version: PEER_PROTOCOL_VERSION,
            from,
            body,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, config()).expect("peer messages always encode")
    }

    /// Decodes a peer's bytes; anything malformed, oversized, trailing or from another
    /// protocol version is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, String> {
        // The version is the first field: check it before trusting the rest of the layout.
        let (version, _): (u16, usize) =
            bincode::serde::decode_from_slice(bytes, config()).map_err(|e| e.to_string())?;
        if version != PEER_PROTOCOL_VERSION {
            return Err(format!(
                "peer protocol version {version}, this broker speaks {PEER_PROTOCOL_VERSION}"
            ));
        }
        let (env, used): (Envelope, usize) =
            bincode::serde::decode_from_slice(bytes, config()).map_err(|e| e.to_string())?;
        if used != bytes.len() {
            return Err(format!("{} trailing bytes", bytes.len() - used));
        }
        Ok(env)
    }
}

/// Encodes a metadata log entry (one atomic batch of records).
pub fn encode_records(records: &[MetaRecord]) -> Vec<u8> {
    bincode::serde::encode_to_vec(records, config()).expect("records always encode")
}

pub fn decode_records(bytes: &[u8]) -> Result<Vec<MetaRecord>, String> {
    let (records, used): (Vec<MetaRecord>, usize) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - used));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{LogIndex, Term};
    use crate::raft::{Append, Entry, LogPosition, Message};
    use bytes::Bytes;

    fn sample() -> Envelope {
        let key = PartitionKey {
            topic_id: [9; 16],
            partition: 2,
        };
        let append = Message::Append(Append {
            term: Term(3),
            prev: LogPosition {
                index: LogIndex(7),
                term: Term(2),
            },
            entries: vec![Entry::normal(Term(3), Bytes::from_static(b"batch"))],
            leader_commit: LogIndex(6),
        });
        Envelope::new(
            2,
            PeerBody::Raft(vec![
                (GroupKey::Partition(key), append),
                (
                    GroupKey::Metadata,
                    Message::PreVoteResponse {
                        term: Term(1),
                        granted: true,
                    },
                ),
            ]),
        )
    }

    #[test]
    fn envelopes_round_trip() {
        let env = sample();
        assert_eq!(Envelope::decode(&env.encode()).unwrap(), env);
        let records = vec![MetaRecord::FenceBroker { id: 3 }];
        assert_eq!(decode_records(&encode_records(&records)).unwrap(), records);
    }

    #[test]
    fn hostile_peer_bytes_are_errors_not_panics() {
        let good = sample().encode();
        // Every truncation, every single-byte corruption, and trailing garbage.
        for n in 0..good.len() {
            let _ = Envelope::decode(&good[..n]);
        }
        for i in 0..good.len() {
            for b in [0x00, 0xff, 0x7f, 0xfb, 0xfc, 0xfd] {
                let mut bad = good.clone();
                bad[i] = b;
                let _ = Envelope::decode(&bad);
            }
        }
        let mut long = good.clone();
        long.push(0);
        assert!(Envelope::decode(&long).is_err());
        // A huge claimed length must not allocate: varint 0xfd = u64 length follows.
        let mut huge = vec![1u8, 2, 0];
        huge.extend_from_slice(&[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert!(Envelope::decode(&huge).is_err());
        // Another protocol version is refused by name.
        let mut other = good;
        other[0] = 9;
        let err = Envelope::decode(&other).unwrap_err();
        assert!(err.contains("version 9"), "{err}");
    }
}
