//! Round-trips: for every request and response type, at every supported version, random values
//! valid at that version decode back to themselves, consuming exactly the bytes encoded. Also
//! whole frames through `encode_request`/`decode_request` and `encode_response`/`decode_response`.

use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::arb::Arb;
use crate::protocol::messages::*;
use crate::protocol::*;

const CASES_PER_VERSION: u32 = 48;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES_PER_VERSION,
        failure_persistence: None,
        ..Config::default()
    })
}

fn round_trips<M: Message + Arb + PartialEq>() {
    let api = M::API_KEY;
    for version in api.supported().iter() {
        let v = api.version(version).expect("supported");
        let result = runner().run(&M::arb(v, false), |msg| {
            let mut w = Writer::new();
            msg.encode(&mut w, version);
            let mut r = Reader::new(w.as_slice());
            let back = M::decode(&mut r, version)
                .map_err(|e| TestCaseError::fail(format!("decode failed: {e}")))?;
            proptest::prop_assert_eq!(r.remaining(), 0);
            proptest::prop_assert_eq!(back, msg);
            Ok(())
        });
        if let Err(e) = result {
            panic!("{} v{version}: {e}", std::any::type_name::<M>());
        }
    }
}

macro_rules! round_trip_tests {
    ($($test:ident: $ty:ty;)*) => {$(
        #[test]
        fn $test() {
            round_trips::<$ty>();
        }
    )*};
}

round_trip_tests! {
    api_versions_request_round_trips_at_every_supported_version: api_versions::ApiVersionsRequest;
    api_versions_response_round_trips_at_every_supported_version: api_versions::ApiVersionsResponse;
    metadata_request_round_trips_at_every_supported_version: metadata::MetadataRequest;
    metadata_response_round_trips_at_every_supported_version: metadata::MetadataResponse;
    produce_request_round_trips_at_every_supported_version: produce::ProduceRequest;
    produce_response_round_trips_at_every_supported_version: produce::ProduceResponse;
    fetch_request_round_trips_at_every_supported_version: fetch::FetchRequest;
    fetch_response_round_trips_at_every_supported_version: fetch::FetchResponse;
    list_offsets_request_round_trips_at_every_supported_version: list_offsets::ListOffsetsRequest;
    list_offsets_response_round_trips_at_every_supported_version: list_offsets::ListOffsetsResponse;
    create_topics_request_round_trips_at_every_supported_version: create_topics::CreateTopicsRequest;
    create_topics_response_round_trips_at_every_supported_version: create_topics::CreateTopicsResponse;
    delete_topics_request_round_trips_at_every_supported_version: delete_topics::DeleteTopicsRequest;
    delete_topics_response_round_trips_at_every_supported_version: delete_topics::DeleteTopicsResponse;
    create_partitions_request_round_trips_at_every_supported_version: create_partitions::CreatePartitionsRequest;
    create_partitions_response_round_trips_at_every_supported_version: create_partitions::CreatePartitionsResponse;
    init_producer_id_request_round_trips_at_every_supported_version: init_producer_id::InitProducerIdRequest;
    init_producer_id_response_round_trips_at_every_supported_version: init_producer_id::InitProducerIdResponse;
    offset_for_leader_epoch_request_round_trips_at_every_supported_version: offset_for_leader_epoch::OffsetForLeaderEpochRequest;
    offset_for_leader_epoch_response_round_trips_at_every_supported_version: offset_for_leader_epoch::OffsetForLeaderEpochResponse;
    describe_configs_request_round_trips_at_every_supported_version: describe_configs::DescribeConfigsRequest;
    describe_configs_response_round_trips_at_every_supported_version: describe_configs::DescribeConfigsResponse;
    describe_cluster_request_round_trips_at_every_supported_version: describe_cluster::DescribeClusterRequest;
    describe_cluster_response_round_trips_at_every_supported_version: describe_cluster::DescribeClusterResponse;
    describe_log_dirs_request_round_trips_at_every_supported_version: describe_log_dirs::DescribeLogDirsRequest;
    describe_log_dirs_response_round_trips_at_every_supported_version: describe_log_dirs::DescribeLogDirsResponse;
    offset_commit_request_round_trips_at_every_supported_version: offset_commit::OffsetCommitRequest;
    offset_commit_response_round_trips_at_every_supported_version: offset_commit::OffsetCommitResponse;
    offset_fetch_request_round_trips_at_every_supported_version: offset_fetch::OffsetFetchRequest;
    offset_fetch_response_round_trips_at_every_supported_version: offset_fetch::OffsetFetchResponse;
    find_coordinator_request_round_trips_at_every_supported_version: find_coordinator::FindCoordinatorRequest;
    find_coordinator_response_round_trips_at_every_supported_version: find_coordinator::FindCoordinatorResponse;
    join_group_request_round_trips_at_every_supported_version: join_group::JoinGroupRequest;
    join_group_response_round_trips_at_every_supported_version: join_group::JoinGroupResponse;
    heartbeat_request_round_trips_at_every_supported_version: heartbeat::HeartbeatRequest;
    heartbeat_response_round_trips_at_every_supported_version: heartbeat::HeartbeatResponse;
    leave_group_request_round_trips_at_every_supported_version: leave_group::LeaveGroupRequest;
    leave_group_response_round_trips_at_every_supported_version: leave_group::LeaveGroupResponse;
    sync_group_request_round_trips_at_every_supported_version: sync_group::SyncGroupRequest;
    sync_group_response_round_trips_at_every_supported_version: sync_group::SyncGroupResponse;
    describe_groups_request_round_trips_at_every_supported_version: describe_groups::DescribeGroupsRequest;
    describe_groups_response_round_trips_at_every_supported_version: describe_groups::DescribeGroupsResponse;
    list_groups_request_round_trips_at_every_supported_version: list_groups::ListGroupsRequest;
    list_groups_response_round_trips_at_every_supported_version: list_groups::ListGroupsResponse;
    delete_groups_request_round_trips_at_every_supported_version: delete_groups::DeleteGroupsRequest;
    delete_groups_response_round_trips_at_every_supported_version: delete_groups::DeleteGroupsResponse;
}

/// A deterministic sample request of every API at every supported version, as whole frames.
pub(super) fn sample_request_frames() -> Vec<(ApiKey, i16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut runner = TestRunner::deterministic();
    for &api in ApiKey::ALL {
        for version in api.supported().iter() {
            let request = sample_request(api, version, &mut runner);
            let header = RequestHeader {
                api_key: api,
                api_version: version,
                correlation_id: 0x0102_0304,
                client_id: Some("sluice-test".into()),
            };
            out.push((api, version, encode_request(&header, &request)));
        }
    }
    out
}

fn sample<M: Arb>(api: ApiKey, version: i16, runner: &mut TestRunner) -> M {
    use proptest::strategy::{Strategy, ValueTree};
    let v = api.version(version).expect("supported");
    M::arb(v, false)
        .new_tree(runner)
        .expect("strategy")
        .current()
}

/// Several draws, keeping the largest encoding, so the sample exercises nested structures.
fn sample_request(api: ApiKey, version: i16, runner: &mut TestRunner) -> Request {
    let mut best: Option<(usize, Request)> = None;
    for _ in 0..8 {
        let request = match api {
            ApiKey::Produce => Request::Produce(sample(api, version, runner)),
            ApiKey::Fetch => Request::Fetch(sample(api, version, runner)),
            ApiKey::ListOffsets => Request::ListOffsets(sample(api, version, runner)),
            ApiKey::Metadata => Request::Metadata(sample(api, version, runner)),
            ApiKey::ApiVersions => Request::ApiVersions(sample(api, version, runner)),
            ApiKey::CreateTopics => Request::CreateTopics(sample(api, version, runner)),
            ApiKey::DeleteTopics => Request::DeleteTopics(sample(api, version, runner)),
            ApiKey::InitProducerId => Request::InitProducerId(sample(api, version, runner)),
            ApiKey::OffsetForLeaderEpoch => {
                Request::OffsetForLeaderEpoch(sample(api, version, runner))
            }
            ApiKey::DescribeConfigs => Request::DescribeConfigs(sample(api, version, runner)),
            ApiKey::DescribeLogDirs => Request::DescribeLogDirs(sample(api, version, runner)),
            ApiKey::CreatePartitions => Request::CreatePartitions(sample(api, version, runner)),
            ApiKey::DescribeCluster => Request::DescribeCluster(sample(api, version, runner)),
            ApiKey::OffsetCommit => Request::OffsetCommit(sample(api, version, runner)),
            ApiKey::OffsetFetch => Request::OffsetFetch(sample(api, version, runner)),
            ApiKey::FindCoordinator => Request::FindCoordinator(sample(api, version, runner)),
            ApiKey::JoinGroup => Request::JoinGroup(sample(api, version, runner)),
            ApiKey::Heartbeat => Request::Heartbeat(sample(api, version, runner)),
            ApiKey::LeaveGroup => Request::LeaveGroup(sample(api, version, runner)),
            ApiKey::SyncGroup => Request::SyncGroup(sample(api, version, runner)),
            ApiKey::DescribeGroups => Request::DescribeGroups(sample(api, version, runner)),
            ApiKey::ListGroups => Request::ListGroups(sample(api, version, runner)),
            ApiKey::DeleteGroups => Request::DeleteGroups(sample(api, version, runner)),
        };
        let mut w = Writer::new();
        request.encode_body(&mut w, version);
        if best.as_ref().is_none_or(|(len, _)| w.len() > *len) {
            best = Some((w.len(), request));
        }
    }
    best.expect("eight draws").1
}

#[test]
fn every_sample_request_frame_decodes_back_to_its_header_and_body() {
    for (api, version, frame) in sample_request_frames() {
        let FrameStatus::Complete {
            frame: body,
            consumed,
        } = next_frame(&frame, DEFAULT_MAX_FRAME_BYTES).expect("valid frame")
        else {
            panic!("{api:?} v{version}: incomplete");
        };
        assert_eq!(consumed, frame.len());
        let (header, request) = decode_request(body).expect("decodes");
        assert_eq!(header.api_key, api);
        assert_eq!(header.api_version, version);
        assert_eq!(header.correlation_id, 0x0102_0304);
        assert_eq!(header.client_id.as_deref(), Some("sluice-test"));
        assert_eq!(request.api_key(), api);
        let again = encode_request(&header, &request);
        assert_eq!(again, frame, "{api:?} v{version}: re-encoding differs");
    }
}

#[test]
fn a_response_frame_round_trips_with_the_right_header_version() {
    let body = metadata::MetadataResponse {
        cluster_id: Some("c1".into()),
        ..Default::default()
    };
    for version in [8, 9] {
        let frame = encode_response(77, version, &Response::Metadata(body.clone()));
        let size = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        assert_eq!(size, frame.len() - 4);
        let (header, response) = decode_response(ApiKey::Metadata, version, &frame[4..]).unwrap();
        assert_eq!(header.correlation_id, 77);
        assert_eq!(response, Response::Metadata(body.clone()));
    }
    // v9 is flexible: its header carries one more byte (an empty tagged-field section).
    let v8 = encode_response(77, 8, &Response::Metadata(body.clone()));
    let v9 = encode_response(77, 9, &Response::Metadata(body));
    assert_eq!(v8[4..8], v9[4..8]);
    assert_eq!(v9[8], 0);
}

#[test]
fn supported_api_versions_lists_every_api_in_key_order() {
    let list = supported_api_versions();
    assert_eq!(list.len(), ApiKey::ALL.len());
    let metadata = list.iter().find(|a| a.api_key == 3).unwrap();
    assert_eq!((metadata.min_version, metadata.max_version), (0, 12));
    let produce = list.iter().find(|a| a.api_key == 0).unwrap();
    assert_eq!((produce.min_version, produce.max_version), (3, 9));
}
