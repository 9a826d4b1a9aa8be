//! JoinGroup (key 11): a member joins (or rejoins) a classic consumer group and learns the
//! generation, the chosen protocol and, if it leads, every member's metadata. Supported v0-v9;
//! flexible from v6.
//!
//! Owns the layout only. Two version-dependent meanings are the handler's: a missing
//! `rebalance_timeout_ms` (v0) means "use the session timeout", and from v4 a join without a
//! member id is answered MEMBER_ID_REQUIRED with an assigned id to rejoin with.

use bytes::Bytes;

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct JoinGroupRequest {
        group_id: String [0+],
        session_timeout_ms: i32 [0+],
        /// -1 (absent in v0): a placeholder; the session timeout applies.
        rebalance_timeout_ms: i32 [1+] = -1,
        member_id: String [0+],
        group_instance_id: Option<String> [5+] nullable 5+,
        protocol_type: String [0+],
        protocols: Vec<JoinGroupRequestProtocol> [0+],
        reason: Option<String> [8+] nullable 8+,
    }
}

wire_struct! {
    pub struct JoinGroupRequestProtocol {
        name: String [0+],
        /// Opaque to the broker (the consumer's subscription, for protocol type "consumer").
        metadata: Bytes [0+],
    }
}

wire_struct! {
    pub struct JoinGroupResponse {
        throttle_time_ms: i32 [2+],
        error_code: i16 [0+],
        generation_id: i32 [0+] = -1,
        protocol_type: Option<String> [7+] nullable 7+,
        protocol_name: Option<String> [0+] nullable 7+ = Some(String::new()),
        leader: String [0+],
        skip_assignment: bool [9+] = false,
        member_id: String [0+],
        /// Filled only in the leader's response.
        members: Vec<JoinGroupResponseMember> [0+],
    }
}

wire_struct! {
    pub struct JoinGroupResponseMember {
        member_id: String [0+],
        group_instance_id: Option<String> [5+] nullable 5+,
        metadata: Bytes [0+],
    }
}
