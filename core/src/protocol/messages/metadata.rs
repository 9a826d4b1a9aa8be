//! Metadata (key 3): brokers, topics and partition leaders. Flexible from v9.
//!
//! Owns the layout only. Two version-dependent meanings the handler must apply (the codec keeps
//! the wire value as is): in v0 an empty `topics` list means "all topics", from v1 that is
//! `None`; and topic names may be null only from v10 (request) / v12 (response).

use crate::protocol::macros::wire_struct;
use crate::protocol::wire::Uuid;

wire_struct! {
    pub struct MetadataRequest {
        topics: Option<Vec<MetadataRequestTopic>> [0+] nullable 1+ = Some(Vec::new()),
        allow_auto_topic_creation: bool [4+] = true,
        include_cluster_authorized_operations: bool [8-10],
        include_topic_authorized_operations: bool [8+],
    }
}

wire_struct! {
    pub struct MetadataRequestTopic {
        topic_id: Uuid [10+],
        name: Option<String> [0+] nullable 10+ = Some(String::new()),
    }
}

wire_struct! {
    pub struct MetadataResponse {
        throttle_time_ms: i32 [3+],
        brokers: Vec<MetadataResponseBroker> [0+],
        cluster_id: Option<String> [2+] nullable 2+,
        controller_id: i32 [1+] = -1,
        topics: Vec<MetadataResponseTopic> [0+],
        /// Only v8-v10; later versions moved it to DescribeCluster.
        cluster_authorized_operations: i32 [8-10] = i32::MIN,
    }
}

wire_struct! {
    pub struct MetadataResponseBroker {
        node_id: i32 [0+],
        host: String [0+],
        port: i32 [0+],
        rack: Option<String> [1+] nullable 1+,
    }
}

wire_struct! {
    pub struct MetadataResponseTopic {
        error_code: i16 [0+],
        name: Option<String> [0+] nullable 12+ = Some(String::new()),
        topic_id: Uuid [10+],
        is_internal: bool [1+] = false,
        partitions: Vec<MetadataResponsePartition> [0+],
        topic_authorized_operations: i32 [8+] = i32::MIN,
    }
}

wire_struct! {
    pub struct MetadataResponsePartition {
        error_code: i16 [0+],
        partition_index: i32 [0+],
        leader_id: i32 [0+],
        leader_epoch: i32 [7+] = -1,
        replica_nodes: Vec<i32> [0+],
        isr_nodes: Vec<i32> [0+],
        offline_replicas: Vec<i32> [5+],
    }
}
