//! ListOffsets (key 2): the offset for a timestamp (or earliest/latest). Supported v1-v7;
//! flexible from v6. v0's `MaxNumOffsets`/`OldStyleOffsets` are not implemented.

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct ListOffsetsRequest {
        replica_id: i32 [0+],
        isolation_level: i8 [2+],
        topics: Vec<ListOffsetsTopic> [0+],
    }
}

wire_struct! {
    pub struct ListOffsetsTopic {
        name: String [0+],
        partitions: Vec<ListOffsetsPartition> [0+],
    }
}

wire_struct! {
    pub struct ListOffsetsPartition {
        partition_index: i32 [0+],
        current_leader_epoch: i32 [4+] = -1,
        /// -1: latest, -2: earliest, -3: max timestamp (v7), else a timestamp in ms.
        timestamp: i64 [0+],
    }
}

wire_struct! {
    pub struct ListOffsetsResponse {
        throttle_time_ms: i32 [2+],
        topics: Vec<ListOffsetsTopicResponse> [0+],
    }
}

wire_struct! {
    pub struct ListOffsetsTopicResponse {
        name: String [0+],
        partitions: Vec<ListOffsetsPartitionResponse> [0+],
    }
}

wire_struct! {
    pub struct ListOffsetsPartitionResponse {
        partition_index: i32 [0+],
        error_code: i16 [0+],
        timestamp: i64 [1+] = -1,
        offset: i64 [1+] = -1,
        leader_epoch: i32 [4+] = -1,
    }
}
