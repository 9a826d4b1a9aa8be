//! FindCoordinator (key 10): which broker coordinates a consumer group (or a transactional id).
//! Supported v0-v4; flexible from v3.
//!
//! Owns the layout only. v4 (KIP-699) batches: the request's single `key` becomes
//! `coordinator_keys` and the response's top-level node/error fields become one `coordinators`
//! entry per key; a handler must answer in the shape of the version it was asked at. v5 and v6
//! (new error codes, share groups) are not implemented.

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct FindCoordinatorRequest {
        key: String [0-3],
        /// 0: consumer group, 1: transactional id.
        key_type: i8 [1+] = 0,
        coordinator_keys: Vec<String> [4+],
    }
}

wire_struct! {
    pub struct FindCoordinatorResponse {
        throttle_time_ms: i32 [1+],
        error_code: i16 [0-3],
        error_message: Option<String> [1-3] nullable 1+ = Some(String::new()),
        node_id: i32 [0-3],
        host: String [0-3],
        port: i32 [0-3],
        coordinators: Vec<Coordinator> [4+],
    }
}

wire_struct! {
    pub struct Coordinator {
        key: String [4+],
        node_id: i32 [4+],
        host: String [4+],
        port: i32 [4+],
        error_code: i16 [4+],
        error_message: Option<String> [4+] nullable 4+ = Some(String::new()),
    }
}
