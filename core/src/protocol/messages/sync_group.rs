//! SyncGroup (key 14): after a join, the leader hands in every member's assignment and each
//! member gets its own back. Supported v0-v5; flexible from v4.

use bytes::Bytes;

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct SyncGroupRequest {
        group_id: String [0+],
        generation_id: i32 [0+],
        member_id: String [0+],
        group_instance_id: Option<String> [3+] nullable 3+,
        protocol_type: Option<String> [5+] nullable 5+,
        protocol_name: Option<String> [5+] nullable 5+,
        /// Only the leader sends assignments; followers send an empty list.
        assignments: Vec<SyncGroupRequestAssignment> [0+],
    }
}

wire_struct! {
    pub struct SyncGroupRequestAssignment {
        member_id: String [0+],
        /// Opaque to the broker.
        assignment: Bytes [0+],
    }
}

wire_struct! {
    pub struct SyncGroupResponse {
        throttle_time_ms: i32 [1+],
        error_code: i16 [0+],
        protocol_type: Option<String> [5+] nullable 5+,
        protocol_name: Option<String> [5+] nullable 5+,
        assignment: Bytes [0+],
    }
}
