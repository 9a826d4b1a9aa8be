//! CreatePartitions (key 37): add partitions to existing topics. Supported v0-v3; flexible
//! from v2.

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct CreatePartitionsRequest {
        topics: Vec<CreatePartitionsTopic> [0+],
        timeout_ms: i32 [0+],
        validate_only: bool [0+],
    }
}

wire_struct! {
    pub struct CreatePartitionsTopic {
        name: String [0+],
        /// The new total partition count.
        count: i32 [0+],
        /// `None`: the broker assigns replicas.
        assignments: Option<Vec<CreatePartitionsAssignment>> [0+] nullable 0+
            = Some(Vec::new()),
    }
}

wire_struct! {
    pub struct CreatePartitionsAssignment {
        broker_ids: Vec<i32> [0+],
    }
}

wire_struct! {
    pub struct CreatePartitionsResponse {
        throttle_time_ms: i32 [0+],
        results: Vec<CreatePartitionsTopicResult> [0+],
    }
}

wire_struct! {
    pub struct CreatePartitionsTopicResult {
        name: String [0+],
        error_code: i16 [0+],
        error_message: Option<String> [0+] nullable 0+,
    }
}
