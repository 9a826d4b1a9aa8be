//! CreateTopics (key 19). Supported v2-v7; flexible from v5.
//!
//! Schema quirk kept as is: the response's `ErrorMessage` exists from v1 but is declared
//! nullable from v0.

use crate::protocol::macros::wire_struct;
use crate::protocol::wire::Uuid;

wire_struct! {
    pub struct CreateTopicsRequest {
        topics: Vec<CreatableTopic> [0+],
        timeout_ms: i32 [0+] = 60000,
        validate_only: bool [1+] = false,
    }
}

wire_struct! {
    pub struct CreatableTopic {
        name: String [0+],
        /// -1: the broker default (with manual `assignments`, must be -1).
        num_partitions: i32 [0+],
        replication_factor: i16 [0+],
        assignments: Vec<CreatableReplicaAssignment> [0+],
        configs: Vec<CreatableTopicConfig> [0+],
    }
}

wire_struct! {
    pub struct CreatableReplicaAssignment {
        partition_index: i32 [0+],
        broker_ids: Vec<i32> [0+],
    }
}

wire_struct! {
    pub struct CreatableTopicConfig {
        name: String [0+],
        value: Option<String> [0+] nullable 0+ = Some(String::new()),
    }
}

wire_struct! {
    pub struct CreateTopicsResponse {
        throttle_time_ms: i32 [2+],
        topics: Vec<CreatableTopicResult> [0+],
    }
}

wire_struct! {
    pub struct CreatableTopicResult {
        name: String [0+],
        topic_id: Uuid [7+],
        error_code: i16 [0+],
        error_message: Option<String> [1+] nullable 0+ = Some(String::new()),
        topic_config_error_code: i16 [5+] tag 0,
        num_partitions: i32 [5+] = -1,
        replication_factor: i16 [5+] = -1,
        configs: Option<Vec<CreatableTopicConfigs>> [5+] nullable 5+ = Some(Vec::new()),
    }
}

wire_struct! {
    pub struct CreatableTopicConfigs {
        name: String [5+],
        value: Option<String> [5+] nullable 5+ = Some(String::new()),
        read_only: bool [5+],
        config_source: i8 [5+] = -1,
        is_sensitive: bool [5+],
    }
}
