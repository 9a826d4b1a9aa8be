//! OffsetCommit (key 8): a consumer group commits its consumed offsets. Supported v0-v8;
//! flexible from v8.
//!
//! Owns the layout only. Version quirks kept as the schema has them: `commit_timestamp` exists
//! in v1 alone, `retention_time_ms` in v2-v4 alone; v0 has no generation or member id (a commit
//! outside any generation). v9 (same layout, KIP-848 semantics) is not implemented.

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct OffsetCommitRequest {
        group_id: String [0+],
        /// The classic protocol's generation id; -1 for a commit outside any generation.
        generation_id_or_member_epoch: i32 [1+] = -1,
        member_id: String [1+],
        group_instance_id: Option<String> [7+] nullable 7+,
        /// -1: the broker's retention.
        retention_time_ms: i64 [2-4] = -1,
        topics: Vec<OffsetCommitRequestTopic> [0+],
    }
}

wire_struct! {
    pub struct OffsetCommitRequestTopic {
        name: String [0+],
        partitions: Vec<OffsetCommitRequestPartition> [0+],
    }
}

wire_struct! {
    pub struct OffsetCommitRequestPartition {
        partition_index: i32 [0+],
        committed_offset: i64 [0+],
        committed_leader_epoch: i32 [6+] = -1,
        commit_timestamp: i64 [1-1] = -1,
        committed_metadata: Option<String> [0+] nullable 0+ = Some(String::new()),
    }
}

wire_struct! {
    pub struct OffsetCommitResponse {
        throttle_time_ms: i32 [3+],
        topics: Vec<OffsetCommitResponseTopic> [0+],
    }
}

wire_struct! {
    pub struct OffsetCommitResponseTopic {
        name: String [0+],
        partitions: Vec<OffsetCommitResponsePartition> [0+],
    }
}

wire_struct! {
    pub struct OffsetCommitResponsePartition {
        partition_index: i32 [0+],
        error_code: i16 [0+],
    }
}
