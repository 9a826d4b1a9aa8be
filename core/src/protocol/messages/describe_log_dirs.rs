//! DescribeLogDirs (key 35): each broker's log directory and, per hosted replica, its size and
//! its lag. Supported v1-v4; flexible from v2 (v3 adds the top-level error, v4 the directory's
//! total and usable bytes).

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct DescribeLogDirsRequest {
        /// Null: every hosted partition.
        topics: Option<Vec<DescribableLogDirTopic>> [0+] nullable 0+,
    }
}

wire_struct! {
    pub struct DescribableLogDirTopic {
        topic: String [0+],
        partitions: Vec<i32> [0+],
    }
}

wire_struct! {
    pub struct DescribeLogDirsResponse {
        throttle_time_ms: i32 [0+],
        error_code: i16 [3+],
        results: Vec<DescribeLogDirsResult> [0+],
    }
}

wire_struct! {
    pub struct DescribeLogDirsResult {
        error_code: i16 [0+],
        log_dir: String [0+],
        topics: Vec<DescribeLogDirsTopic> [0+],
        total_bytes: i64 [4+] = -1,
        usable_bytes: i64 [4+] = -1,
    }
}

wire_struct! {
    pub struct DescribeLogDirsTopic {
        name: String [0+],
        partitions: Vec<DescribeLogDirsPartition> [0+],
    }
}

wire_struct! {
    pub struct DescribeLogDirsPartition {
        partition_index: i32 [0+],
        partition_size: i64 [0+],
        offset_lag: i64 [0+],
        is_future_key: bool [0+],
    }
}
