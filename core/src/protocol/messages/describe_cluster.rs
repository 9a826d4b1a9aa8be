//! DescribeCluster (key 60): brokers, controller and cluster id for admin clients. Supported
//! v0-v1; flexible from v0, so even v0 uses request header v2.

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct DescribeClusterRequest {
        include_cluster_authorized_operations: bool [0+],
        /// 1: brokers, 2: controllers.
        endpoint_type: i8 [1+] = 1,
    }
}

wire_struct! {
    pub struct DescribeClusterResponse {
        throttle_time_ms: i32 [0+],
        error_code: i16 [0+],
        error_message: Option<String> [0+] nullable 0+,
        endpoint_type: i8 [1+] = 1,
        cluster_id: String [0+],
        controller_id: i32 [0+] = -1,
        brokers: Vec<DescribeClusterBroker> [0+],
        cluster_authorized_operations: i32 [0+] = i32::MIN,
    }
}

wire_struct! {
    pub struct DescribeClusterBroker {
        broker_id: i32 [0+],
        host: String [0+],
        port: i32 [0+],
        rack: Option<String> [0+] nullable 0+,
    }
}
