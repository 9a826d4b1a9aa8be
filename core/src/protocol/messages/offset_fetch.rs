//! OffsetFetch (key 9): a consumer group's committed offsets. Supported v0-v8; flexible from v6.
//!
//! Owns the layout only. v0-v7 ask for one group (`group_id`, `topics`) and answer with
//! top-level `topics` and `error_code`; v8 batches several `groups` and moves all of that into
//! a per-group entry, with separate struct names (`...Topics`, `...Partitions`) as in the
//! schema. Null `topics` (v2+) means "every committed partition". The request `topics` is
//! nullable in v2-v7, written here as `nullable 2+` because the field ends at v7. v9 (KIP-848
//! member id and epoch) is not implemented.

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct OffsetFetchRequest {
        group_id: String [0-7],
        topics: Option<Vec<OffsetFetchRequestTopic>> [0-7] nullable 2+ = Some(Vec::new()),
        groups: Vec<OffsetFetchRequestGroup> [8+],
        require_stable: bool [7+] = false,
    }
}

wire_struct! {
    pub struct OffsetFetchRequestTopic {
        name: String [0-7],
        partition_indexes: Vec<i32> [0-7],
    }
}

wire_struct! {
    pub struct OffsetFetchRequestGroup {
        group_id: String [8+],
        topics: Option<Vec<OffsetFetchRequestTopics>> [8+] nullable 8+ = Some(Vec::new()),
    }
}

wire_struct! {
    pub struct OffsetFetchRequestTopics {
        name: String [8+],
        partition_indexes: Vec<i32> [8+],
    }
}

wire_struct! {
    pub struct OffsetFetchResponse {
        throttle_time_ms: i32 [3+],
        topics: Vec<OffsetFetchResponseTopic> [0-7],
        error_code: i16 [2-7] = 0,
        groups: Vec<OffsetFetchResponseGroup> [8+],
    }
}

wire_struct! {
    pub struct OffsetFetchResponseTopic {
        name: String [0-7],
        partitions: Vec<OffsetFetchResponsePartition> [0-7],
    }
}

wire_struct! {
    pub struct OffsetFetchResponsePartition {
        partition_index: i32 [0-7],
        /// -1: nothing committed.
        committed_offset: i64 [0-7],
        committed_leader_epoch: i32 [5-7] = -1,
        metadata: Option<String> [0-7] nullable 0+ = Some(String::new()),
        error_code: i16 [0-7],
    }
}

wire_struct! {
    pub struct OffsetFetchResponseGroup {
        group_id: String [8+],
        topics: Vec<OffsetFetchResponseTopics> [8+],
        error_code: i16 [8+] = 0,
    }
}

wire_struct! {
    pub struct OffsetFetchResponseTopics {
        name: String [8+],
        partitions: Vec<OffsetFetchResponsePartitions> [8+],
    }
}

wire_struct! {
    pub struct OffsetFetchResponsePartitions {
        partition_index: i32 [8+],
        committed_offset: i64 [8+],
        committed_leader_epoch: i32 [8+] = -1,
        metadata: Option<String> [8+] nullable 8+ = Some(String::new()),
        error_code: i16 [8+],
    }
}
