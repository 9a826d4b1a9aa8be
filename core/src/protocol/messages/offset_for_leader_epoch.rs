//! OffsetForLeaderEpoch (key 23): the end offset of a leader epoch, for log truncation after a
//! leader change. Supported v2-v4; flexible from v4.

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct OffsetForLeaderEpochRequest {
        /// -1 for consumers, -2 (the schema default) for pre-v3 requests.
        replica_id: i32 [3+] = -2,
        topics: Vec<OffsetForLeaderTopic> [0+],
    }
}

wire_struct! {
    pub struct OffsetForLeaderTopic {
        topic: String [0+],
        partitions: Vec<OffsetForLeaderPartition> [0+],
    }
}

wire_struct! {
    pub struct OffsetForLeaderPartition {
        partition: i32 [0+],
        current_leader_epoch: i32 [2+] = -1,
        leader_epoch: i32 [0+],
    }
}

wire_struct! {
    pub struct OffsetForLeaderEpochResponse {
        throttle_time_ms: i32 [2+],
        topics: Vec<OffsetForLeaderTopicResult> [0+],
    }
}

wire_struct! {
    pub struct OffsetForLeaderTopicResult {
        topic: String [0+],
        partitions: Vec<EpochEndOffset> [0+],
    }
}

wire_struct! {
    pub struct EpochEndOffset {
        error_code: i16 [0+],
        partition: i32 [0+],
        leader_epoch: i32 [1+] = -1,
        end_offset: i64 [0+] = -1,
    }
}
