//! ApiVersions (key 18): which APIs and versions the broker implements. Flexible from v3, but
//! its response header is always v0 (see `header.rs`).
//!
//! Owns the message layout only; the list Sluice advertises is built in `protocol/mod.rs`.

use crate::protocol::macros::wire_struct;

wire_struct! {
    pub struct ApiVersionsRequest {
        client_software_name: String [3+],
        client_software_version: String [3+],
    }
}

wire_struct! {
    pub struct ApiVersionsResponse {
        error_code: i16 [0+],
        api_keys: Vec<ApiVersion> [0+],
        throttle_time_ms: i32 [1+],
        supported_features: Vec<SupportedFeatureKey> [3+] tag 0,
        /// -1: unknown epoch.
        finalized_features_epoch: i64 [3+] tag 1 = -1,
        finalized_features: Vec<FinalizedFeatureKey> [3+] tag 2,
        zk_migration_ready: bool [3+] tag 3 = false,
    }
}

wire_struct! {
    /// One API and the inclusive range of versions implemented for it.
    pub struct ApiVersion {
        api_key: i16 [0+],
        min_version: i16 [0+],
        max_version: i16 [0+],
    }
}

wire_struct! {
    pub struct SupportedFeatureKey {
        name: String [3+],
        min_version: i16 [3+],
        max_version: i16 [3+],
    }
}

wire_struct! {
    pub struct FinalizedFeatureKey {
        name: String [3+],
        max_version_level: i16 [3+],
        min_version_level: i16 [3+],
    }
}
