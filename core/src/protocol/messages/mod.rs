//! Request and response bodies of every API Sluice implements, one module per API, each
//! transcribed field by field from Apache Kafka's JSON message schemas
//! (`clients/src/main/resources/common/message/<Name>{Request,Response}.json`).
//!
//! Owns the field lists, version ranges, nullability, tags and defaults. Fields that exist only
//! in versions above Sluice's supported maximum are left out until that version is implemented,
//! so a struct never carries a field Sluice cannot put on the wire. Record data (Produce
//! requests, Fetch responses) stays opaque bytes here: see `records.rs`.

pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;
