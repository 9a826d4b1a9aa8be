//! DescribeConfigs (key 32): topic and broker configuration. Supported v1-v4; flexible from v4.
//!
//! Schema quirk kept as is: a synonym's `Value` exists from v1 but is declared nullable from v0.

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct DescribeConfigsRequest {
        resources: Vec<DescribeConfigsResource> [0+],
        include_synonyms: bool [1+] = false,
        include_documentation: bool [3+] = false,
    }
}

wire_struct! {
    pub struct DescribeConfigsResource {
        /// 2: topic, 4: broker, 8: broker logger.
        resource_type: i8 [0+],
        resource_name: String [0+],
        /// `None`: all keys.
        configuration_keys: Option<Vec<String>> [0+] nullable 0+ = Some(Vec::new()),
    }
}

wire_struct! {
    pub struct DescribeConfigsResponse {
        throttle_time_ms: i32 [0+],
        results: Vec<DescribeConfigsResult> [0+],
    }
}

wire_struct! {
    pub struct DescribeConfigsResult {
        error_code: i16 [0+],
        error_message: Option<String> [0+] nullable 0+ = Some(String::new()),
        resource_type: i8 [0+],
        resource_name: String [0+],
        configs: Vec<DescribeConfigsResourceResult> [0+],
    }
}

wire_struct! {
    pub struct DescribeConfigsResourceResult {
        name: String [0+],
        value: Option<String> [0+] nullable 0+ = Some(String::new()),
        read_only: bool [0+],
        config_source: i8 [1+] = -1,
        is_sensitive: bool [0+],
        synonyms: Vec<DescribeConfigsSynonym> [1+],
        config_type: i8 [3+] = 0,
        documentation: Option<String> [3+] nullable 0+ = Some(String::new()),
    }
}

wire_struct! {
    pub struct DescribeConfigsSynonym {
        name: String [1+],
        value: Option<String> [1+] nullable 0+ = Some(String::new()),
        source: i8 [1+],
    }
}
