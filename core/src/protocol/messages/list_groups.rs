//! ListGroups (key 16): the groups a broker coordinates. Supported v0-v4; flexible from v3.
//! v5's type filter and group type (KIP-848) are not implemented.

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct ListGroupsRequest {
        /// Empty: groups in every state.
        states_filter: Vec<String> [4+],
    }
}

wire_struct! {
    pub struct ListGroupsResponse {
        throttle_time_ms: i32 [1+],
        error_code: i16 [0+],
        groups: Vec<ListedGroup> [0+],
    }
}

wire_struct! {
    pub struct ListedGroup {
        group_id: String [0+],
        protocol_type: String [0+],
        group_state: String [4+],
    }
}
