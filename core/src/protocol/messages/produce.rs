//! Produce (key 0): append record batches. Supported v3-v9 (v3 is the first with RecordBatch v2
//! and a transactional id); flexible from v9.
//!
//! Owns the layout only. `records` stays opaque bytes: `records.rs` validates and rewrites the
//! batches; nothing here decompresses or parses them. Response fields of v10+ (current leader,
//! node endpoints) are left out until v10 is implemented.

use bytes::Bytes;

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct ProduceRequest {
        transactional_id: Option<String> [3+] nullable 3+,
        /// 0, 1 or -1 (all).
        acks: i16 [0+],
        timeout_ms: i32 [0+],
        topic_data: Vec<TopicProduceData> [0+],
    }
}

wire_struct! {
    pub struct TopicProduceData {
        name: String [0+],
        partition_data: Vec<PartitionProduceData> [0+],
    }
}

wire_struct! {
    pub struct PartitionProduceData {
        index: i32 [0+],
        /// One or more RecordBatch v2, unparsed.
        records: Option<Bytes> [0+] nullable 0+,
    }
}

wire_struct! {
    pub struct ProduceResponse {
        responses: Vec<TopicProduceResponse> [0+],
        throttle_time_ms: i32 [1+] = 0,
    }
}

wire_struct! {
    pub struct TopicProduceResponse {
        name: String [0+],
        partition_responses: Vec<PartitionProduceResponse> [0+],
    }
}

wire_struct! {
    pub struct PartitionProduceResponse {
        index: i32 [0+],
        error_code: i16 [0+],
        base_offset: i64 [0+],
        /// -1 unless the topic uses log-append time.
        log_append_time_ms: i64 [2+] = -1,
        log_start_offset: i64 [5+] = -1,
        record_errors: Vec<BatchIndexAndErrorMessage> [8+],
        error_message: Option<String> [8+] nullable 8+,
    }
}

wire_struct! {
    pub struct BatchIndexAndErrorMessage {
        batch_index: i32 [8+],
        batch_index_error_message: Option<String> [8+] nullable 8+,
    }
}
