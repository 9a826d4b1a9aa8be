//! DeleteGroups (key 42): delete empty groups and their committed offsets. Supported v0-v2;
//! flexible from v2.

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct DeleteGroupsRequest {
        groups_names: Vec<String> [0+],
    }
}

wire_struct! {
    pub struct DeleteGroupsResponse {
        throttle_time_ms: i32 [0+],
        results: Vec<DeletableGroupResult> [0+],
    }
}

wire_struct! {
    pub struct DeletableGroupResult {
        group_id: String [0+],
        error_code: i16 [0+],
    }
}
