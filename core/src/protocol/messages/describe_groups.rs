//! DescribeGroups (key 15): state, protocol and members of classic groups, for admin tools.
//! Supported v0-v5; flexible from v5. v6's per-group error message is not implemented.

use bytes::Bytes;

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct DescribeGroupsRequest {
        groups: Vec<String> [0+],
        include_authorized_operations: bool [3+],
    }
}

wire_struct! {
    pub struct DescribeGroupsResponse {
        throttle_time_ms: i32 [1+],
        groups: Vec<DescribedGroup> [0+],
    }
}

wire_struct! {
    pub struct DescribedGroup {
        error_code: i16 [0+],
        group_id: String [0+],
        /// E.g. "Stable", "PreparingRebalance", "Empty", "Dead"; or empty.
        group_state: String [0+],
        protocol_type: String [0+],
        /// The chosen protocol's name (only in the Stable state).
        protocol_data: String [0+],
        members: Vec<DescribedGroupMember> [0+],
        authorized_operations: i32 [3+] = i32::MIN,
    }
}

wire_struct! {
    pub struct DescribedGroupMember {
        member_id: String [0+],
        group_instance_id: Option<String> [4+] nullable 4+,
        client_id: String [0+],
        client_host: String [0+],
        member_metadata: Bytes [0+],
        member_assignment: Bytes [0+],
    }
}
