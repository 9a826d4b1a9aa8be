//! LeaveGroup (key 13): members leave a classic group. Supported v0-v5; flexible from v4.
//!
//! Owns the layout only. v0-v2 carry one `member_id`; from v3 a batch of `members` (identified
//! by member id and/or group instance id) with a result per member.

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct LeaveGroupRequest {
        group_id: String [0+],
        member_id: String [0-2],
        members: Vec<MemberIdentity> [3+],
    }
}

wire_struct! {
    pub struct MemberIdentity {
        member_id: String [3+],
        group_instance_id: Option<String> [3+] nullable 3+,
        reason: Option<String> [5+] nullable 5+,
    }
}

wire_struct! {
    pub struct LeaveGroupResponse {
        throttle_time_ms: i32 [1+],
        error_code: i16 [0+],
        members: Vec<MemberResponse> [3+],
    }
}

wire_struct! {
    pub struct MemberResponse {
        member_id: String [3+],
        group_instance_id: Option<String> [3+] nullable 3+ = Some(String::new()),
        error_code: i16 [3+],
    }
}
