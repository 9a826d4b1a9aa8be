//! DeleteTopics (key 20). Supported v1-v5 (by name; v6 deletes by topic id and is not
//! implemented); flexible from v4.

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct DeleteTopicsRequest {
        topic_names: Vec<String> [0-5],
        timeout_ms: i32 [0+],
    }
}

wire_struct! {
    pub struct DeleteTopicsResponse {
        throttle_time_ms: i32 [1+],
        responses: Vec<DeletableTopicResult> [0+],
    }
}

wire_struct! {
    pub struct DeletableTopicResult {
        name: String [0+],
        error_code: i16 [0+],
        error_message: Option<String> [5+] nullable 5+,
    }
}
