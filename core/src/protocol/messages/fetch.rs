//! Fetch (key 1): read records. Supported v4-v12; flexible from v12.
//!
//! Owns the layout only. Topics are named (v13 switched to topic ids; not implemented), and
//! `records` stays opaque bytes. The v12 tagged fields (cluster id; diverging epoch, current
//! leader, snapshot id) are included because v12 is supported.

use bytes::Bytes;

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct FetchRequest {
        cluster_id: Option<String> [12+] nullable 12+ tag 0,
        /// -1 for consumers; a broker id for follower fetches.
        replica_id: i32 [0-14] = -1,
        max_wait_ms: i32 [0+],
        min_bytes: i32 [0+],
        max_bytes: i32 [3+] = i32::MAX,
        /// 0: read uncommitted, 1: read committed.
        isolation_level: i8 [4+] = 0,
        session_id: i32 [7+] = 0,
        session_epoch: i32 [7+] = -1,
        topics: Vec<FetchTopic> [0+],
        forgotten_topics_data: Vec<ForgottenTopic> [7+],
        rack_id: String [11+] = String::new(),
    }
}

wire_struct! {
    pub struct FetchTopic {
        topic: String [0-12],
        partitions: Vec<FetchPartition> [0+],
    }
}

wire_struct! {
    pub struct FetchPartition {
        partition: i32 [0+],
        current_leader_epoch: i32 [9+] = -1,
        fetch_offset: i64 [0+],
        last_fetched_epoch: i32 [12+] = -1,
        log_start_offset: i64 [5+] = -1,
        partition_max_bytes: i32 [0+],
    }
}

wire_struct! {
    pub struct ForgottenTopic {
        topic: String [7-12],
        partitions: Vec<i32> [7+],
    }
}

wire_struct! {
    pub struct FetchResponse {
        throttle_time_ms: i32 [1+],
        error_code: i16 [7+],
        session_id: i32 [7+] = 0,
        responses: Vec<FetchableTopicResponse> [0+],
    }
}

wire_struct! {
    pub struct FetchableTopicResponse {
        topic: String [0-12],
        partitions: Vec<PartitionData> [0+],
    }
}

wire_struct! {
    pub struct PartitionData {
        partition_index: i32 [0+],
        error_code: i16 [0+],
        high_watermark: i64 [0+],
        last_stable_offset: i64 [4+] = -1,
        log_start_offset: i64 [5+] = -1,
        diverging_epoch: EpochEndOffset [12+] tag 0,
        current_leader: LeaderIdAndEpoch [12+] tag 1,
        snapshot_id: SnapshotId [12+] tag 2,
        aborted_transactions: Option<Vec<AbortedTransaction>> [4+] nullable 4+
            = Some(Vec::new()),
        preferred_read_replica: i32 [11+] = -1,
        /// Whole RecordBatch v2s as stored, unparsed.
        records: Option<Bytes> [0+] nullable 0+,
    }
}

wire_struct! {
    pub struct EpochEndOffset {
        epoch: i32 [12+] = -1,
        end_offset: i64 [12+] = -1,
    }
}

wire_struct! {
    pub struct LeaderIdAndEpoch {
        leader_id: i32 [12+] = -1,
        leader_epoch: i32 [12+] = -1,
    }
}

wire_struct! {
    pub struct SnapshotId {
        end_offset: i64 [0+] = -1,
        epoch: i32 [0+] = -1,
    }
}

wire_struct! {
    pub struct AbortedTransaction {
        producer_id: i64 [4+],
        first_offset: i64 [4+],
    }
}
