//! Heartbeat (key 12): a classic group member says it is alive; the error code tells it to
//! rejoin when the group rebalances. Supported v0-v4; flexible from v4.

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct HeartbeatRequest {
        group_id: String [0+],
        generation_id: i32 [0+],
        member_id: String [0+],
        group_instance_id: Option<String> [3+] nullable 3+,
    }
}

wire_struct! {
    pub struct HeartbeatResponse {
        throttle_time_ms: i32 [1+],
        error_code: i16 [0+],
    }
}
