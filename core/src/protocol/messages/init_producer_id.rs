//! InitProducerId (key 22): a producer id and epoch for idempotent (and transactional)
//! producers. Supported v0-v4; flexible from v2.

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct InitProducerIdRequest {
        /// `None` for an idempotent, non-transactional producer.
        transactional_id: Option<String> [0+] nullable 0+ = Some(String::new()),
        transaction_timeout_ms: i32 [0+],
        producer_id: i64 [3+] = -1,
        producer_epoch: i16 [3+] = -1,
    }
}

wire_struct! {
    pub struct InitProducerIdResponse {
        throttle_time_ms: i32 [0+],
        error_code: i16 [0+],
        producer_id: i64 [0+] = -1,
        producer_epoch: i16 [0+],
    }
}
