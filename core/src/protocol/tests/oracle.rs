//! Differential tests against the `kafka-protocol` crate (0.18.0), an independent codec
//! generated from the same Kafka schemas. For random values valid at each supported version:
//! bytes we encode decode with `kafka-protocol` to the same field values, and its bytes for the
//! same values decode with ours; the two encodings must also be byte-identical. Versions older
//! than `kafka-protocol` implements (OffsetCommit v0-v1, OffsetFetch v0) are compared from its
//! first version on (`from N` in the table below).
//!
//! Only bytes we produced are fed to `kafka-protocol`'s decoder: it sizes allocations from wire
//! counts, so it must never see hostile input. Values are compared field by field through
//! [`Conv`], never through `Debug` strings. The struct conversions list every one of our fields,
//! so a field missing from a conversion is a compile error.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages as kp;
use kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, Message as KpMessage, StrBytes,
};
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::arb::Arb;
use crate::protocol::messages::*;
use crate::protocol::wire::Uuid;
use crate::protocol::*;

/// A value conversion between our types and `kafka-protocol`'s.
trait Conv<T> {
    fn conv(&self) -> T;
}

macro_rules! conv_identity {
    ($($t:ty),*) => {$(
        impl Conv<$t> for $t {
            fn conv(&self) -> $t {
                self.clone()
            }
        }
    )*};
}

conv_identity!(i8, i16, i32, i64, bool, Bytes);

impl Conv<StrBytes> for String {
    fn conv(&self) -> StrBytes {
        StrBytes::from_string(self.clone())
    }
}
impl Conv<String> for StrBytes {
    fn conv(&self) -> String {
        self.as_str().to_owned()
    }
}
impl Conv<kp::TopicName> for String {
    fn conv(&self) -> kp::TopicName {
        kp::TopicName(self.conv())
    }
}
impl Conv<String> for kp::TopicName {
    fn conv(&self) -> String {
        self.0.conv()
    }
}
impl Conv<kp::TransactionalId> for String {
    fn conv(&self) -> kp::TransactionalId {
        kp::TransactionalId(self.conv())
    }
}
impl Conv<String> for kp::TransactionalId {
    fn conv(&self) -> String {
        self.0.conv()
    }
}
impl Conv<kp::GroupId> for String {
    fn conv(&self) -> kp::GroupId {
        kp::GroupId(self.conv())
    }
}
impl Conv<String> for kp::GroupId {
    fn conv(&self) -> String {
        self.0.conv()
    }
}
impl Conv<kp::BrokerId> for i32 {
    fn conv(&self) -> kp::BrokerId {
        kp::BrokerId(*self)
    }
}
impl Conv<i32> for kp::BrokerId {
    fn conv(&self) -> i32 {
        self.0
    }
}
impl Conv<kp::ProducerId> for i64 {
    fn conv(&self) -> kp::ProducerId {
        kp::ProducerId(*self)
    }
}
impl Conv<i64> for kp::ProducerId {
    fn conv(&self) -> i64 {
        self.0
    }
}
impl Conv<uuid::Uuid> for Uuid {
    fn conv(&self) -> uuid::Uuid {
        uuid::Uuid::from_bytes(self.0)
    }
}
impl Conv<Uuid> for uuid::Uuid {
    fn conv(&self) -> Uuid {
        Uuid(*self.as_bytes())
    }
}
// DeleteTopics names became nullable in v6 (delete by id); Sluice's v1-v5 names never are.
impl Conv<Option<kp::TopicName>> for String {
    fn conv(&self) -> Option<kp::TopicName> {
        Some(self.conv())
    }
}
impl Conv<String> for Option<kp::TopicName> {
    fn conv(&self) -> String {
        self.as_ref().map(Conv::conv).unwrap_or_default()
    }
}
impl<A: Conv<B>, B> Conv<Option<B>> for Option<A> {
    fn conv(&self) -> Option<B> {
        self.as_ref().map(Conv::conv)
    }
}
impl<A: Conv<B>, B> Conv<Vec<B>> for Vec<A> {
    fn conv(&self) -> Vec<B> {
        self.iter().map(Conv::conv).collect()
    }
}

/// Both directions for one struct. Fields `kafka-protocol` has beyond ours (from versions Sluice
/// does not implement) keep its defaults, which is what it encodes when they are absent.
///
/// Fields only we have (`ours_only`: from versions `kafka-protocol` does not implement) take our
/// schema default when converting back; they are listed so that every field is still named.
macro_rules! conv_struct {
    ($ours:path, $theirs:path { $($f:ident),* $(,)? } $(ours_only { $($o:ident),* $(,)? })?) => {
        impl Conv<$theirs> for $ours {
            fn conv(&self) -> $theirs {
                let mut t = <$theirs>::default();
                $( t.$f = self.$f.conv(); )*
                t
            }
        }
        impl Conv<$ours> for $theirs {
            fn conv(&self) -> $ours {
                $ours { $( $f: self.$f.conv(), )* $($( $o: <$ours>::default().$o, )*)? }
            }
        }
    };
}

conv_struct!(
    api_versions::ApiVersionsRequest,
    kp::ApiVersionsRequest {
        client_software_name,
        client_software_version,
    }
);
conv_struct!(
    api_versions::ApiVersionsResponse,
    kp::ApiVersionsResponse {
        error_code,
        api_keys,
        throttle_time_ms,
        supported_features,
        finalized_features_epoch,
        finalized_features,
        zk_migration_ready,
    }
);
conv_struct!(
    api_versions::ApiVersion,
    kp::api_versions_response::ApiVersion {
        api_key,
        min_version,
        max_version,
    }
);
conv_struct!(
    api_versions::SupportedFeatureKey,
    kp::api_versions_response::SupportedFeatureKey {
        name,
        min_version,
        max_version,
    }
);
conv_struct!(
    api_versions::FinalizedFeatureKey,
    kp::api_versions_response::FinalizedFeatureKey {
        name,
        max_version_level,
        min_version_level,
    }
);

conv_struct!(
    metadata::MetadataRequest,
    kp::MetadataRequest {
        topics,
        allow_auto_topic_creation,
        include_cluster_authorized_operations,
        include_topic_authorized_operations,
    }
);
conv_struct!(
    metadata::MetadataRequestTopic,
    kp::metadata_request::MetadataRequestTopic { topic_id, name }
);
conv_struct!(
    metadata::MetadataResponse,
    kp::MetadataResponse {
        throttle_time_ms,
        brokers,
        cluster_id,
        controller_id,
        topics,
        cluster_authorized_operations,
    }
);
conv_struct!(
    metadata::MetadataResponseBroker,
    kp::metadata_response::MetadataResponseBroker {
        node_id,
        host,
        port,
        rack,
    }
);
conv_struct!(
    metadata::MetadataResponseTopic,
    kp::metadata_response::MetadataResponseTopic {
        error_code,
        name,
        topic_id,
        is_internal,
        partitions,
        topic_authorized_operations,
    }
);
conv_struct!(
    metadata::MetadataResponsePartition,
    kp::metadata_response::MetadataResponsePartition {
        error_code,
        partition_index,
        leader_id,
        leader_epoch,
        replica_nodes,
        isr_nodes,
        offline_replicas,
    }
);

conv_struct!(
    produce::ProduceRequest,
    kp::ProduceRequest {
        transactional_id,
        acks,
        timeout_ms,
        topic_data,
    }
);
conv_struct!(
    produce::TopicProduceData,
    kp::produce_request::TopicProduceData {
        name,
        partition_data,
    }
);
conv_struct!(
    produce::PartitionProduceData,
    kp::produce_request::PartitionProduceData { index, records }
);
conv_struct!(
    produce::ProduceResponse,
    kp::ProduceResponse {
        responses,
        throttle_time_ms
    }
);
conv_struct!(
    produce::TopicProduceResponse,
    kp::produce_response::TopicProduceResponse {
        name,
        partition_responses,
    }
);
conv_struct!(
    produce::PartitionProduceResponse,
    kp::produce_response::PartitionProduceResponse {
        index,
        error_code,
        base_offset,
        log_append_time_ms,
        log_start_offset,
        record_errors,
        error_message,
    }
);
conv_struct!(
    produce::BatchIndexAndErrorMessage,
    kp::produce_response::BatchIndexAndErrorMessage {
        batch_index,
        batch_index_error_message
    }
);

conv_struct!(
    fetch::FetchRequest,
    kp::FetchRequest {
        cluster_id,
        replica_id,
        max_wait_ms,
        min_bytes,
        max_bytes,
        isolation_level,
        session_id,
        session_epoch,
        topics,
        forgotten_topics_data,
        rack_id,
    }
);
conv_struct!(
    fetch::FetchTopic,
    kp::fetch_request::FetchTopic { topic, partitions }
);
conv_struct!(
    fetch::FetchPartition,
    kp::fetch_request::FetchPartition {
        partition,
        current_leader_epoch,
        fetch_offset,
        last_fetched_epoch,
        log_start_offset,
        partition_max_bytes,
    }
);
conv_struct!(
    fetch::ForgottenTopic,
    kp::fetch_request::ForgottenTopic { topic, partitions }
);
conv_struct!(
    fetch::FetchResponse,
    kp::FetchResponse {
        throttle_time_ms,
        error_code,
        session_id,
        responses,
    }
);
conv_struct!(
    fetch::FetchableTopicResponse,
    kp::fetch_response::FetchableTopicResponse { topic, partitions }
);
conv_struct!(
    fetch::PartitionData,
    kp::fetch_response::PartitionData {
        partition_index,
        error_code,
        high_watermark,
        last_stable_offset,
        log_start_offset,
        diverging_epoch,
        current_leader,
        snapshot_id,
        aborted_transactions,
        preferred_read_replica,
        records,
    }
);
conv_struct!(
    fetch::EpochEndOffset,
    kp::fetch_response::EpochEndOffset { epoch, end_offset }
);
conv_struct!(
    fetch::LeaderIdAndEpoch,
    kp::fetch_response::LeaderIdAndEpoch {
        leader_id,
        leader_epoch,
    }
);
conv_struct!(
    fetch::SnapshotId,
    kp::fetch_response::SnapshotId { end_offset, epoch }
);
conv_struct!(
    fetch::AbortedTransaction,
    kp::fetch_response::AbortedTransaction {
        producer_id,
        first_offset,
    }
);

conv_struct!(
    list_offsets::ListOffsetsRequest,
    kp::ListOffsetsRequest {
        replica_id,
        isolation_level,
        topics,
    }
);
conv_struct!(
    list_offsets::ListOffsetsTopic,
    kp::list_offsets_request::ListOffsetsTopic { name, partitions }
);
conv_struct!(
    list_offsets::ListOffsetsPartition,
    kp::list_offsets_request::ListOffsetsPartition {
        partition_index,
        current_leader_epoch,
        timestamp,
    }
);
conv_struct!(
    list_offsets::ListOffsetsResponse,
    kp::ListOffsetsResponse {
        throttle_time_ms,
        topics,
    }
);
conv_struct!(
    list_offsets::ListOffsetsTopicResponse,
    kp::list_offsets_response::ListOffsetsTopicResponse { name, partitions }
);
conv_struct!(
    list_offsets::ListOffsetsPartitionResponse,
    kp::list_offsets_response::ListOffsetsPartitionResponse {
        partition_index,
        error_code,
        timestamp,
        offset,
        leader_epoch,
    }
);

conv_struct!(
    create_topics::CreateTopicsRequest,
    kp::CreateTopicsRequest {
        topics,
        timeout_ms,
        validate_only,
    }
);
conv_struct!(
    create_topics::CreatableTopic,
    kp::create_topics_request::CreatableTopic {
        name,
        num_partitions,
        replication_factor,
        assignments,
        configs,
    }
);
conv_struct!(
    create_topics::CreatableReplicaAssignment,
    kp::create_topics_request::CreatableReplicaAssignment {
        partition_index,
        broker_ids
    }
);
conv_struct!(
    create_topics::CreatableTopicConfig,
    kp::create_topics_request::CreatableTopicConfig { name, value }
);
conv_struct!(
    create_topics::CreateTopicsResponse,
    kp::CreateTopicsResponse {
        throttle_time_ms,
        topics,
    }
);
conv_struct!(
    create_topics::CreatableTopicResult,
    kp::create_topics_response::CreatableTopicResult {
        name,
        topic_id,
        error_code,
        error_message,
        topic_config_error_code,
        num_partitions,
        replication_factor,
        configs,
    }
);
conv_struct!(
    create_topics::CreatableTopicConfigs,
    kp::create_topics_response::CreatableTopicConfigs {
        name,
        value,
        read_only,
        config_source,
        is_sensitive,
    }
);

conv_struct!(
    init_producer_id::InitProducerIdRequest,
    kp::InitProducerIdRequest {
        transactional_id,
        transaction_timeout_ms,
        producer_id,
        producer_epoch,
    }
);
conv_struct!(
    init_producer_id::InitProducerIdResponse,
    kp::InitProducerIdResponse {
        throttle_time_ms,
        error_code,
        producer_id,
        producer_epoch,
    }
);

conv_struct!(
    delete_topics::DeleteTopicsRequest,
    kp::DeleteTopicsRequest {
        topic_names,
        timeout_ms,
    }
);
conv_struct!(
    delete_topics::DeleteTopicsResponse,
    kp::DeleteTopicsResponse {
        throttle_time_ms,
        responses,
    }
);
conv_struct!(
    delete_topics::DeletableTopicResult,
    kp::delete_topics_response::DeletableTopicResult {
        name,
        error_code,
        error_message,
    }
);

conv_struct!(
    create_partitions::CreatePartitionsRequest,
    kp::CreatePartitionsRequest {
        topics,
        timeout_ms,
        validate_only,
    }
);
conv_struct!(
    create_partitions::CreatePartitionsTopic,
    kp::create_partitions_request::CreatePartitionsTopic {
        name,
        count,
        assignments
    }
);
conv_struct!(
    create_partitions::CreatePartitionsAssignment,
    kp::create_partitions_request::CreatePartitionsAssignment { broker_ids }
);
conv_struct!(
    create_partitions::CreatePartitionsResponse,
    kp::CreatePartitionsResponse {
        throttle_time_ms,
        results,
    }
);
conv_struct!(
    create_partitions::CreatePartitionsTopicResult,
    kp::create_partitions_response::CreatePartitionsTopicResult {
        name,
        error_code,
        error_message
    }
);

conv_struct!(
    offset_for_leader_epoch::OffsetForLeaderEpochRequest,
    kp::OffsetForLeaderEpochRequest { replica_id, topics }
);
conv_struct!(
    offset_for_leader_epoch::OffsetForLeaderTopic,
    kp::offset_for_leader_epoch_request::OffsetForLeaderTopic { topic, partitions }
);
conv_struct!(
    offset_for_leader_epoch::OffsetForLeaderPartition,
    kp::offset_for_leader_epoch_request::OffsetForLeaderPartition {
        partition,
        current_leader_epoch,
        leader_epoch,
    }
);
conv_struct!(
    offset_for_leader_epoch::OffsetForLeaderEpochResponse,
    kp::OffsetForLeaderEpochResponse {
        throttle_time_ms,
        topics
    }
);
conv_struct!(
    offset_for_leader_epoch::OffsetForLeaderTopicResult,
    kp::offset_for_leader_epoch_response::OffsetForLeaderTopicResult { topic, partitions }
);
conv_struct!(
    offset_for_leader_epoch::EpochEndOffset,
    kp::offset_for_leader_epoch_response::EpochEndOffset {
        error_code,
        partition,
        leader_epoch,
        end_offset,
    }
);

conv_struct!(
    describe_configs::DescribeConfigsRequest,
    kp::DescribeConfigsRequest {
        resources,
        include_synonyms,
        include_documentation,
    }
);
conv_struct!(
    describe_configs::DescribeConfigsResource,
    kp::describe_configs_request::DescribeConfigsResource {
        resource_type,
        resource_name,
        configuration_keys,
    }
);
conv_struct!(
    describe_configs::DescribeConfigsResponse,
    kp::DescribeConfigsResponse {
        throttle_time_ms,
        results,
    }
);
conv_struct!(
    describe_configs::DescribeConfigsResult,
    kp::describe_configs_response::DescribeConfigsResult {
        error_code,
        error_message,
        resource_type,
        resource_name,
        configs,
    }
);
conv_struct!(
    describe_configs::DescribeConfigsResourceResult,
    kp::describe_configs_response::DescribeConfigsResourceResult {
        name,
        value,
        read_only,
        config_source,
        is_sensitive,
        synonyms,
        config_type,
        documentation,
    }
);
conv_struct!(
    describe_configs::DescribeConfigsSynonym,
    kp::describe_configs_response::DescribeConfigsSynonym {
        name,
        value,
        source
    }
);

conv_struct!(
    describe_cluster::DescribeClusterRequest,
    kp::DescribeClusterRequest {
        include_cluster_authorized_operations,
        endpoint_type,
    }
);
conv_struct!(
    describe_cluster::DescribeClusterResponse,
    kp::DescribeClusterResponse {
        throttle_time_ms,
        error_code,
        error_message,
        endpoint_type,
        cluster_id,
        controller_id,
        brokers,
        cluster_authorized_operations,
    }
);
conv_struct!(
    describe_cluster::DescribeClusterBroker,
    kp::describe_cluster_response::DescribeClusterBroker {
        broker_id,
        host,
        port,
        rack
    }
);

conv_struct!(
    offset_commit::OffsetCommitRequest,
    kp::OffsetCommitRequest {
        group_id,
        generation_id_or_member_epoch,
        member_id,
        group_instance_id,
        retention_time_ms,
        topics,
    }
);
conv_struct!(
    offset_commit::OffsetCommitRequestTopic,
    kp::offset_commit_request::OffsetCommitRequestTopic { name, partitions }
);
// CommitTimestamp exists only in v1, which kafka-protocol does not implement (it starts at v2).
conv_struct!(
    offset_commit::OffsetCommitRequestPartition,
    kp::offset_commit_request::OffsetCommitRequestPartition {
        partition_index,
        committed_offset,
        committed_leader_epoch,
        committed_metadata,
    } ours_only { commit_timestamp }
);
conv_struct!(
    offset_commit::OffsetCommitResponse,
    kp::OffsetCommitResponse {
        throttle_time_ms,
        topics,
    }
);
conv_struct!(
    offset_commit::OffsetCommitResponseTopic,
    kp::offset_commit_response::OffsetCommitResponseTopic { name, partitions }
);
conv_struct!(
    offset_commit::OffsetCommitResponsePartition,
    kp::offset_commit_response::OffsetCommitResponsePartition {
        partition_index,
        error_code,
    }
);

conv_struct!(
    offset_fetch::OffsetFetchRequest,
    kp::OffsetFetchRequest {
        group_id,
        topics,
        groups,
        require_stable,
    }
);
conv_struct!(
    offset_fetch::OffsetFetchRequestTopic,
    kp::offset_fetch_request::OffsetFetchRequestTopic {
        name,
        partition_indexes,
    }
);
conv_struct!(
    offset_fetch::OffsetFetchRequestGroup,
    kp::offset_fetch_request::OffsetFetchRequestGroup { group_id, topics }
);
conv_struct!(
    offset_fetch::OffsetFetchRequestTopics,
    kp::offset_fetch_request::OffsetFetchRequestTopics {
        name,
        partition_indexes,
    }
);
conv_struct!(
    offset_fetch::OffsetFetchResponse,
    kp::OffsetFetchResponse {
        throttle_time_ms,
        topics,
        error_code,
        groups,
    }
);
conv_struct!(
    offset_fetch::OffsetFetchResponseTopic,
    kp::offset_fetch_response::OffsetFetchResponseTopic { name, partitions }
);
conv_struct!(
    offset_fetch::OffsetFetchResponsePartition,
    kp::offset_fetch_response::OffsetFetchResponsePartition {
        partition_index,
        committed_offset,
        committed_leader_epoch,
        metadata,
        error_code,
    }
);
conv_struct!(
    offset_fetch::OffsetFetchResponseGroup,
    kp::offset_fetch_response::OffsetFetchResponseGroup {
        group_id,
        topics,
        error_code,
    }
);
conv_struct!(
    offset_fetch::OffsetFetchResponseTopics,
    kp::offset_fetch_response::OffsetFetchResponseTopics { name, partitions }
);
conv_struct!(
    offset_fetch::OffsetFetchResponsePartitions,
    kp::offset_fetch_response::OffsetFetchResponsePartitions {
        partition_index,
        committed_offset,
        committed_leader_epoch,
        metadata,
        error_code,
    }
);

conv_struct!(
    find_coordinator::FindCoordinatorRequest,
    kp::FindCoordinatorRequest {
        key,
        key_type,
        coordinator_keys,
    }
);
conv_struct!(
    find_coordinator::FindCoordinatorResponse,
    kp::FindCoordinatorResponse {
        throttle_time_ms,
        error_code,
        error_message,
        node_id,
        host,
        port,
        coordinators,
    }
);
conv_struct!(
    find_coordinator::Coordinator,
    kp::find_coordinator_response::Coordinator {
        key,
        node_id,
        host,
        port,
        error_code,
        error_message,
    }
);

conv_struct!(
    join_group::JoinGroupRequest,
    kp::JoinGroupRequest {
        group_id,
        session_timeout_ms,
        rebalance_timeout_ms,
        member_id,
        group_instance_id,
        protocol_type,
        protocols,
        reason,
    }
);
conv_struct!(
    join_group::JoinGroupRequestProtocol,
    kp::join_group_request::JoinGroupRequestProtocol { name, metadata }
);
conv_struct!(
    join_group::JoinGroupResponse,
    kp::JoinGroupResponse {
        throttle_time_ms,
        error_code,
        generation_id,
        protocol_type,
        protocol_name,
        leader,
        skip_assignment,
        member_id,
        members,
    }
);
conv_struct!(
    join_group::JoinGroupResponseMember,
    kp::join_group_response::JoinGroupResponseMember {
        member_id,
        group_instance_id,
        metadata,
    }
);

conv_struct!(
    heartbeat::HeartbeatRequest,
    kp::HeartbeatRequest {
        group_id,
        generation_id,
        member_id,
        group_instance_id,
    }
);
conv_struct!(
    heartbeat::HeartbeatResponse,
    kp::HeartbeatResponse {
        throttle_time_ms,
        error_code,
    }
);

conv_struct!(
    leave_group::LeaveGroupRequest,
    kp::LeaveGroupRequest {
        group_id,
        member_id,
        members,
    }
);
conv_struct!(
    leave_group::MemberIdentity,
    kp::leave_group_request::MemberIdentity {
        member_id,
        group_instance_id,
        reason,
    }
);
conv_struct!(
    leave_group::LeaveGroupResponse,
    kp::LeaveGroupResponse {
        throttle_time_ms,
        error_code,
        members,
    }
);
conv_struct!(
    leave_group::MemberResponse,
    kp::leave_group_response::MemberResponse {
        member_id,
        group_instance_id,
        error_code,
    }
);

conv_struct!(
    sync_group::SyncGroupRequest,
    kp::SyncGroupRequest {
        group_id,
        generation_id,
        member_id,
        group_instance_id,
        protocol_type,
        protocol_name,
        assignments,
    }
);
conv_struct!(
    sync_group::SyncGroupRequestAssignment,
    kp::sync_group_request::SyncGroupRequestAssignment {
        member_id,
        assignment,
    }
);
conv_struct!(
    sync_group::SyncGroupResponse,
    kp::SyncGroupResponse {
        throttle_time_ms,
        error_code,
        protocol_type,
        protocol_name,
        assignment,
    }
);

conv_struct!(
    describe_groups::DescribeGroupsRequest,
    kp::DescribeGroupsRequest {
        groups,
        include_authorized_operations,
    }
);
conv_struct!(
    describe_groups::DescribeGroupsResponse,
    kp::DescribeGroupsResponse {
        throttle_time_ms,
        groups,
    }
);
conv_struct!(
    describe_groups::DescribedGroup,
    kp::describe_groups_response::DescribedGroup {
        error_code,
        group_id,
        group_state,
        protocol_type,
        protocol_data,
        members,
        authorized_operations,
    }
);
conv_struct!(
    describe_groups::DescribedGroupMember,
    kp::describe_groups_response::DescribedGroupMember {
        member_id,
        group_instance_id,
        client_id,
        client_host,
        member_metadata,
        member_assignment,
    }
);

conv_struct!(
    list_groups::ListGroupsRequest,
    kp::ListGroupsRequest { states_filter }
);
conv_struct!(
    list_groups::ListGroupsResponse,
    kp::ListGroupsResponse {
        throttle_time_ms,
        error_code,
        groups,
    }
);
conv_struct!(
    list_groups::ListedGroup,
    kp::list_groups_response::ListedGroup {
        group_id,
        protocol_type,
        group_state,
    }
);

conv_struct!(
    delete_groups::DeleteGroupsRequest,
    kp::DeleteGroupsRequest { groups_names }
);
conv_struct!(
    delete_groups::DeleteGroupsResponse,
    kp::DeleteGroupsResponse {
        throttle_time_ms,
        results,
    }
);
conv_struct!(
    delete_groups::DeletableGroupResult,
    kp::delete_groups_response::DeletableGroupResult {
        group_id,
        error_code,
    }
);

const CASES_PER_VERSION: u32 = 48;

/// Agreement at every supported version from `first` on. `first` is above our minimum only for
/// versions `kafka-protocol` does not implement (its range must start exactly there, so the gap
/// is noticed when it grows); those versions are covered by the round-trip tests alone.
fn agree<M, K>(first: i16)
where
    M: Message + Arb + PartialEq + Conv<K>,
    K: Encodable + Decodable + KpMessage + Conv<M>,
{
    let api = M::API_KEY;
    let ours = api.supported();
    if first != ours.min {
        assert_eq!(
            K::VERSIONS.min,
            first,
            "{}: skip only the versions kafka-protocol lacks",
            std::any::type_name::<M>()
        );
    }
    assert!(K::VERSIONS.min <= first && ours.max <= K::VERSIONS.max);
    for version in first..=ours.max {
        let v = api.version(version).expect("supported");
        let mut runner = TestRunner::new(Config {
            cases: CASES_PER_VERSION,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&M::arb(v, false), |ours| {
            // Ours -> bytes -> theirs.
            let mut w = Writer::new();
            ours.encode(&mut w, version);
            let our_bytes = w.into_inner();
            let mut buf = Bytes::from(our_bytes.clone());
            let theirs = K::decode(&mut buf, version)
                .map_err(|e| TestCaseError::fail(format!("kafka-protocol refused: {e}")))?;
            proptest::prop_assert!(buf.is_empty(), "kafka-protocol left {} bytes", buf.len());
            proptest::prop_assert_eq!(&theirs.conv(), &ours);

            // Theirs -> bytes -> ours.
            let theirs: K = ours.conv();
            let mut their_bytes = BytesMut::new();
            theirs
                .encode(&mut their_bytes, version)
                .map_err(|e| TestCaseError::fail(format!("kafka-protocol encode: {e}")))?;
            let mut r = Reader::new(&their_bytes);
            let back = M::decode(&mut r, version)
                .map_err(|e| TestCaseError::fail(format!("we refused: {e}")))?;
            proptest::prop_assert_eq!(r.remaining(), 0);
            proptest::prop_assert_eq!(&back, &ours);
            proptest::prop_assert_eq!(&their_bytes[..], &our_bytes[..]);
            Ok(())
        });
        if let Err(e) = result {
            panic!("{} v{version}: {e}", std::any::type_name::<M>());
        }
    }
}

/// The first version to compare: our minimum, or the one given after `from`.
macro_rules! first_version {
    ($ours:ty) => {
        <$ours as Message>::API_KEY.supported().min
    };
    ($ours:ty, $first:literal) => {
        $first
    };
}

macro_rules! oracle_tests {
    ($($test:ident: $ours:ty, $theirs:ty $(, from $first:literal)?;)*) => {$(
        #[test]
        fn $test() {
            agree::<$ours, $theirs>(first_version!($ours $(, $first)?));
        }
    )*};
}

oracle_tests! {
    api_versions_request_agrees_with_kafka_protocol: api_versions::ApiVersionsRequest, kp::ApiVersionsRequest;
    api_versions_response_agrees_with_kafka_protocol: api_versions::ApiVersionsResponse, kp::ApiVersionsResponse;
    metadata_request_agrees_with_kafka_protocol: metadata::MetadataRequest, kp::MetadataRequest;
    metadata_response_agrees_with_kafka_protocol: metadata::MetadataResponse, kp::MetadataResponse;
    produce_request_agrees_with_kafka_protocol: produce::ProduceRequest, kp::ProduceRequest;
    produce_response_agrees_with_kafka_protocol: produce::ProduceResponse, kp::ProduceResponse;
    fetch_request_agrees_with_kafka_protocol: fetch::FetchRequest, kp::FetchRequest;
    fetch_response_agrees_with_kafka_protocol: fetch::FetchResponse, kp::FetchResponse;
    list_offsets_request_agrees_with_kafka_protocol: list_offsets::ListOffsetsRequest, kp::ListOffsetsRequest;
    list_offsets_response_agrees_with_kafka_protocol: list_offsets::ListOffsetsResponse, kp::ListOffsetsResponse;
    create_topics_request_agrees_with_kafka_protocol: create_topics::CreateTopicsRequest, kp::CreateTopicsRequest;
    create_topics_response_agrees_with_kafka_protocol: create_topics::CreateTopicsResponse, kp::CreateTopicsResponse;
    init_producer_id_request_agrees_with_kafka_protocol: init_producer_id::InitProducerIdRequest, kp::InitProducerIdRequest;
    init_producer_id_response_agrees_with_kafka_protocol: init_producer_id::InitProducerIdResponse, kp::InitProducerIdResponse;
    delete_topics_request_agrees_with_kafka_protocol: delete_topics::DeleteTopicsRequest, kp::DeleteTopicsRequest;
    delete_topics_response_agrees_with_kafka_protocol: delete_topics::DeleteTopicsResponse, kp::DeleteTopicsResponse;
    create_partitions_request_agrees_with_kafka_protocol: create_partitions::CreatePartitionsRequest, kp::CreatePartitionsRequest;
    create_partitions_response_agrees_with_kafka_protocol: create_partitions::CreatePartitionsResponse, kp::CreatePartitionsResponse;
    offset_for_leader_epoch_request_agrees_with_kafka_protocol: offset_for_leader_epoch::OffsetForLeaderEpochRequest, kp::OffsetForLeaderEpochRequest;
    offset_for_leader_epoch_response_agrees_with_kafka_protocol: offset_for_leader_epoch::OffsetForLeaderEpochResponse, kp::OffsetForLeaderEpochResponse;
    describe_configs_request_agrees_with_kafka_protocol: describe_configs::DescribeConfigsRequest, kp::DescribeConfigsRequest;
    describe_configs_response_agrees_with_kafka_protocol: describe_configs::DescribeConfigsResponse, kp::DescribeConfigsResponse;
    describe_cluster_request_agrees_with_kafka_protocol: describe_cluster::DescribeClusterRequest, kp::DescribeClusterRequest;
    describe_cluster_response_agrees_with_kafka_protocol: describe_cluster::DescribeClusterResponse, kp::DescribeClusterResponse;
    offset_commit_request_agrees_with_kafka_protocol: offset_commit::OffsetCommitRequest, kp::OffsetCommitRequest, from 2;
    offset_commit_response_agrees_with_kafka_protocol: offset_commit::OffsetCommitResponse, kp::OffsetCommitResponse, from 2;
    offset_fetch_request_agrees_with_kafka_protocol: offset_fetch::OffsetFetchRequest, kp::OffsetFetchRequest, from 1;
    offset_fetch_response_agrees_with_kafka_protocol: offset_fetch::OffsetFetchResponse, kp::OffsetFetchResponse, from 1;
    find_coordinator_request_agrees_with_kafka_protocol: find_coordinator::FindCoordinatorRequest, kp::FindCoordinatorRequest;
    find_coordinator_response_agrees_with_kafka_protocol: find_coordinator::FindCoordinatorResponse, kp::FindCoordinatorResponse;
    join_group_request_agrees_with_kafka_protocol: join_group::JoinGroupRequest, kp::JoinGroupRequest;
    join_group_response_agrees_with_kafka_protocol: join_group::JoinGroupResponse, kp::JoinGroupResponse;
    heartbeat_request_agrees_with_kafka_protocol: heartbeat::HeartbeatRequest, kp::HeartbeatRequest;
    heartbeat_response_agrees_with_kafka_protocol: heartbeat::HeartbeatResponse, kp::HeartbeatResponse;
    leave_group_request_agrees_with_kafka_protocol: leave_group::LeaveGroupRequest, kp::LeaveGroupRequest;
    leave_group_response_agrees_with_kafka_protocol: leave_group::LeaveGroupResponse, kp::LeaveGroupResponse;
    sync_group_request_agrees_with_kafka_protocol: sync_group::SyncGroupRequest, kp::SyncGroupRequest;
    sync_group_response_agrees_with_kafka_protocol: sync_group::SyncGroupResponse, kp::SyncGroupResponse;
    describe_groups_request_agrees_with_kafka_protocol: describe_groups::DescribeGroupsRequest, kp::DescribeGroupsRequest;
    describe_groups_response_agrees_with_kafka_protocol: describe_groups::DescribeGroupsResponse, kp::DescribeGroupsResponse;
    list_groups_request_agrees_with_kafka_protocol: list_groups::ListGroupsRequest, kp::ListGroupsRequest;
    list_groups_response_agrees_with_kafka_protocol: list_groups::ListGroupsResponse, kp::ListGroupsResponse;
    delete_groups_request_agrees_with_kafka_protocol: delete_groups::DeleteGroupsRequest, kp::DeleteGroupsRequest;
    delete_groups_response_agrees_with_kafka_protocol: delete_groups::DeleteGroupsResponse, kp::DeleteGroupsResponse;
}

/// A whole request frame encoded by `kafka-protocol` (header included) decodes with ours.
fn their_request_frame<K: Encodable + HeaderVersion>(
    api: ApiKey,
    version: i16,
    body: &K,
) -> Vec<u8> {
    let header = kp::RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(99)
        .with_client_id(Some(StrBytes::from_static_str("rdkafka")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, K::header_version(version))
        .expect("header encodes");
    body.encode(&mut buf, version).expect("body encodes");
    buf.to_vec()
}

#[test]
fn request_headers_encoded_by_kafka_protocol_decode_at_every_version() {
    for version in ApiKey::Metadata.supported().iter() {
        let body = kp::MetadataRequest::default().with_topics(Some(vec![
            kp::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(kp::TopicName(StrBytes::from_static_str("t")))),
        ]));
        let frame = their_request_frame(ApiKey::Metadata, version, &body);
        let (header, request) = decode_request(&frame).unwrap();
        assert_eq!(header.correlation_id, 99, "v{version}");
        assert_eq!(header.client_id.as_deref(), Some("rdkafka"));
        let Request::Metadata(ours) = request else {
            panic!("v{version}: {request:?}");
        };
        assert_eq!(ours.topics.unwrap()[0].name.as_deref(), Some("t"));
    }
    for version in ApiKey::ApiVersions.supported().iter() {
        let body = kp::ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("librdkafka"));
        let frame = their_request_frame(ApiKey::ApiVersions, version, &body);
        assert!(matches!(
            decode_request(&frame),
            Ok((_, Request::ApiVersions(_)))
        ));
    }
}

#[test]
fn response_frames_we_encode_decode_with_kafka_protocol_headers() {
    let body = produce::ProduceResponse {
        responses: vec![produce::TopicProduceResponse {
            name: "t".into(),
            partition_responses: vec![produce::PartitionProduceResponse {
                base_offset: 42,
                ..Default::default()
            }],
        }],
        throttle_time_ms: 5,
    };
    for version in ApiKey::Produce.supported().iter() {
        let frame = encode_response(123, version, &Response::Produce(body.clone()));
        let mut buf = Bytes::copy_from_slice(&frame[4..]);
        let header_version = kp::ProduceResponse::header_version(version);
        let header = kp::ResponseHeader::decode(&mut buf, header_version).unwrap();
        assert_eq!(header.correlation_id, 123);
        let theirs = kp::ProduceResponse::decode(&mut buf, version).unwrap();
        assert!(buf.is_empty());
        let back: produce::ProduceResponse = theirs.conv();
        assert_eq!(back, body, "v{version}");
    }
}

#[test]
fn the_api_versions_fallback_is_a_v0_response_kafka_protocol_understands() {
    // kafka-python opens with ApiVersions v4, which Sluice does not implement.
    let body = kp::ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("kafka-python"))
        .with_client_software_version(StrBytes::from_static_str("3.0"));
    let frame = their_request_frame(ApiKey::ApiVersions, 4, &body);
    let (header, request) = decode_request(&frame).unwrap();
    assert_eq!(request, Request::UnsupportedApiVersions);
    assert_eq!(header.api_version, 4);

    let reply = api_versions_fallback_response(header.correlation_id);
    let mut buf = Bytes::copy_from_slice(&reply[4..]);
    let response_header = kp::ResponseHeader::decode(&mut buf, 0).unwrap();
    assert_eq!(response_header.correlation_id, 99);
    let theirs = kp::ApiVersionsResponse::decode(&mut buf, 0).unwrap();
    assert!(buf.is_empty());
    assert_eq!(theirs.error_code, codes::UNSUPPORTED_VERSION);
    let api_versions = theirs
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .expect("ApiVersions itself is listed");
    assert_eq!((api_versions.min_version, api_versions.max_version), (0, 3));
    assert_eq!(theirs.api_keys.len(), ApiKey::ALL.len());
}
