//! The API table: every Kafka API Sluice speaks, its key, the versions Sluice implements, and the
//! first flexible version of its schema; plus the [`Request`] and [`Response`] enums and the
//! [`Message`] trait that every top-level message implements.
//!
//! Owns "which APIs and versions exist". It does not decide what versions to advertise to a
//! given client, and it does not handle requests. Adding an API is one line in the `apis!` table
//! below plus a module under `messages/`. The consumer-group APIs (FindCoordinator, JoinGroup,
//! Heartbeat, LeaveGroup, SyncGroup, OffsetCommit, OffsetFetch, DescribeGroups, ListGroups,
//! DeleteGroups) are decoded and encoded here, but the broker does not answer them yet: it
//! closes the connection (see `broker::on_request`).

use super::error::DecodeError;
use super::messages::{
    api_versions, create_partitions, create_topics, delete_groups, delete_topics, describe_cluster,
    describe_configs, describe_groups, describe_log_dirs, fetch, find_coordinator, heartbeat,
    init_producer_id, join_group, leave_group, list_groups, list_offsets, metadata, offset_commit,
    offset_fetch, offset_for_leader_epoch, produce, sync_group,
};
use super::wire::{Reader, Version, Wire, Writer};

/// An inclusive range of API versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    pub min: i16,
    pub max: i16,
}

impl VersionRange {
    pub fn contains(self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }

    pub fn iter(self) -> impl Iterator<Item = i16> {
        self.min..=self.max
    }
}

/// A top-level request or response body of one API.
pub trait Message: Wire {
    const API_KEY: ApiKey;

    /// Decodes the body at `version`; versions outside the supported range are refused, because
    /// their field layout is unknown.
    fn decode(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError> {
        let v = Self::API_KEY.version(version)?;
        Self::read(r, v)
    }

    /// Encodes the body at `version`.
    ///
    /// # Panics
    ///
    /// If `version` is not supported: Sluice only answers at versions it decoded, so this is a
    /// bug in the caller, not something a peer can cause.
    fn encode(&self, w: &mut Writer, version: i16) {
        let v = Self::API_KEY
            .version(version)
            .expect("encoding at a version Sluice does not implement");
        self.write(w, v)
    }
}

macro_rules! apis {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $key:literal, versions $min:literal ..= $max:literal,
            flexible from $flex:literal, $req:ty, $resp:ty;
    )*) => {
        /// A Kafka API key, numbered as in the protocol specification.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(i16)]
        pub enum ApiKey {
            $( $(#[$doc])* $variant = $key, )*
        }

        impl ApiKey {
            /// Every API Sluice implements, in key order (the order ApiVersions lists them).
            pub const ALL: &'static [ApiKey] = &[$(ApiKey::$variant),*];

            pub fn from_i16(key: i16) -> Option<ApiKey> {
                match key {
                    $( $key => Some(ApiKey::$variant), )*
                    _ => None,
                }
            }

            pub fn name(self) -> &'static str {
                match self {
                    $( ApiKey::$variant => stringify!($variant), )*
                }
            }

            /// The versions Sluice implements.
            pub fn supported(self) -> VersionRange {
                match self {
                    $( ApiKey::$variant => VersionRange { min: $min, max: $max }, )*
                }
            }

            /// The first version whose schema is flexible (compact lengths, tagged fields).
            /// Taken from the schema, so it may lie beyond what Sluice implements.
            pub fn first_flexible(self) -> i16 {
                match self {
                    $( ApiKey::$variant => $flex, )*
                }
            }
        }

        /// A decoded request body, one variant per API.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)] // one request is decoded at a time; boxing buys nothing
        pub enum Request {
            $( $variant($req), )*
            /// An ApiVersions request at a version Sluice does not implement. Its body was not
            /// parsed (its layout is unknown); answer with
            /// [`super::api_versions_fallback_response`], as Kafka clients expect.
            UnsupportedApiVersions,
        }

        /// A response body, one variant per API.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum Response {
            $( $variant($resp), )*
        }

        impl Request {
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $( Request::$variant(_) => ApiKey::$variant, )*
                    Request::UnsupportedApiVersions => ApiKey::ApiVersions,
                }
            }

            pub(crate) fn decode_body(
                api: ApiKey,
                r: &mut Reader<'_>,
                version: i16,
            ) -> Result<Request, DecodeError> {
                match api {
                    $( ApiKey::$variant => Ok(Request::$variant(<$req>::decode(r, version)?)), )*
                }
            }

            pub(crate) fn encode_body(&self, w: &mut Writer, version: i16) {
                match self {
                    $( Request::$variant(body) => body.encode(w, version), )*
                    Request::UnsupportedApiVersions => {}
                }
            }
        }

        impl Response {
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $( Response::$variant(_) => ApiKey::$variant, )*
                }
            }

            pub(crate) fn decode_body(
                api: ApiKey,
                r: &mut Reader<'_>,
                version: i16,
            ) -> Result<Response, DecodeError> {
                match api {
                    $( ApiKey::$variant => Ok(Response::$variant(<$resp>::decode(r, version)?)), )*
                }
            }

            pub(crate) fn encode_body(&self, w: &mut Writer, version: i16) {
                match self {
                    $( Response::$variant(body) => body.encode(w, version), )*
                }
            }
        }

        $(
            impl Message for $req {
                const API_KEY: ApiKey = ApiKey::$variant;
            }
            impl Message for $resp {
                const API_KEY: ApiKey = ApiKey::$variant;
            }
        )*
    };
}

// Key order. Supported ranges: what Sluice implements. Clients seen here ask for Produce v7-v10,
// Fetch v11-v12 and Metadata v4-v12, and settle on the highest version both sides know.
// Flexible versions: from each schema's `flexibleVersions`.
apis! {
    Produce = 0, versions 3..=9, flexible from 9,
        produce::ProduceRequest, produce::ProduceResponse;
    Fetch = 1, versions 4..=12, flexible from 12,
        fetch::FetchRequest, fetch::FetchResponse;
    ListOffsets = 2, versions 1..=7, flexible from 6,
        list_offsets::ListOffsetsRequest, list_offsets::ListOffsetsResponse;
    Metadata = 3, versions 0..=12, flexible from 9,
        metadata::MetadataRequest, metadata::MetadataResponse;
    OffsetCommit = 8, versions 0..=8, flexible from 8,
        offset_commit::OffsetCommitRequest, offset_commit::OffsetCommitResponse;
    OffsetFetch = 9, versions 0..=8, flexible from 6,
        offset_fetch::OffsetFetchRequest, offset_fetch::OffsetFetchResponse;
    FindCoordinator = 10, versions 0..=4, flexible from 3,
        find_coordinator::FindCoordinatorRequest, find_coordinator::FindCoordinatorResponse;
    JoinGroup = 11, versions 0..=9, flexible from 6,
        join_group::JoinGroupRequest, join_group::JoinGroupResponse;
    Heartbeat = 12, versions 0..=4, flexible from 4,
        heartbeat::HeartbeatRequest, heartbeat::HeartbeatResponse;
    LeaveGroup = 13, versions 0..=5, flexible from 4,
        leave_group::LeaveGroupRequest, leave_group::LeaveGroupResponse;
    SyncGroup = 14, versions 0..=5, flexible from 4,
        sync_group::SyncGroupRequest, sync_group::SyncGroupResponse;
    DescribeGroups = 15, versions 0..=5, flexible from 5,
        describe_groups::DescribeGroupsRequest, describe_groups::DescribeGroupsResponse;
    ListGroups = 16, versions 0..=4, flexible from 3,
        list_groups::ListGroupsRequest, list_groups::ListGroupsResponse;
    ApiVersions = 18, versions 0..=3, flexible from 3,
        api_versions::ApiVersionsRequest, api_versions::ApiVersionsResponse;
    CreateTopics = 19, versions 2..=7, flexible from 5,
        create_topics::CreateTopicsRequest, create_topics::CreateTopicsResponse;
    DeleteTopics = 20, versions 1..=5, flexible from 4,
        delete_topics::DeleteTopicsRequest, delete_topics::DeleteTopicsResponse;
    InitProducerId = 22, versions 0..=4, flexible from 2,
        init_producer_id::InitProducerIdRequest, init_producer_id::InitProducerIdResponse;
    OffsetForLeaderEpoch = 23, versions 2..=4, flexible from 4,
        offset_for_leader_epoch::OffsetForLeaderEpochRequest,
        offset_for_leader_epoch::OffsetForLeaderEpochResponse;
    DescribeConfigs = 32, versions 1..=4, flexible from 4,
        describe_configs::DescribeConfigsRequest, describe_configs::DescribeConfigsResponse;
    DescribeLogDirs = 35, versions 1..=4, flexible from 2,
        describe_log_dirs::DescribeLogDirsRequest, describe_log_dirs::DescribeLogDirsResponse;
    CreatePartitions = 37, versions 0..=3, flexible from 2,
        create_partitions::CreatePartitionsRequest, create_partitions::CreatePartitionsResponse;
    DeleteGroups = 42, versions 0..=2, flexible from 2,
        delete_groups::DeleteGroupsRequest, delete_groups::DeleteGroupsResponse;
    DescribeCluster = 60, versions 0..=1, flexible from 0,
        describe_cluster::DescribeClusterRequest, describe_cluster::DescribeClusterResponse;
}

impl ApiKey {
    pub fn is_flexible(self, version: i16) -> bool {
        version >= self.first_flexible()
    }

    /// The [`Version`] context for a supported `version`, or `UnsupportedVersion`.
    pub fn version(self, version: i16) -> Result<Version, DecodeError> {
        if !self.supported().contains(version) {
            return Err(DecodeError::UnsupportedVersion { api: self, version });
        }
        Ok(Version {
            number: version,
            flexible: self.is_flexible(version),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_listed_in_key_order_and_round_trip_through_i16() {
        assert!(ApiKey::ALL
            .windows(2)
            .all(|w| (w[0] as i16) < (w[1] as i16)));
        for &api in ApiKey::ALL {
            assert_eq!(ApiKey::from_i16(api as i16), Some(api));
        }
        assert_eq!(ApiKey::from_i16(-1), None);
        assert_eq!(ApiKey::from_i16(4), None);
        assert_eq!(ApiKey::from_i16(17), None);
    }

    #[test]
    fn api_key_numbers_match_the_protocol_specification() {
        let expected = [
            (ApiKey::Produce, 0),
            (ApiKey::Fetch, 1),
            (ApiKey::ListOffsets, 2),
            (ApiKey::Metadata, 3),
            (ApiKey::OffsetCommit, 8),
            (ApiKey::OffsetFetch, 9),
            (ApiKey::FindCoordinator, 10),
            (ApiKey::JoinGroup, 11),
            (ApiKey::Heartbeat, 12),
            (ApiKey::LeaveGroup, 13),
            (ApiKey::SyncGroup, 14),
            (ApiKey::DescribeGroups, 15),
            (ApiKey::ListGroups, 16),
            (ApiKey::ApiVersions, 18),
            (ApiKey::CreateTopics, 19),
            (ApiKey::DeleteTopics, 20),
            (ApiKey::InitProducerId, 22),
            (ApiKey::OffsetForLeaderEpoch, 23),
            (ApiKey::DescribeConfigs, 32),
            (ApiKey::DescribeLogDirs, 35),
            (ApiKey::CreatePartitions, 37),
            (ApiKey::DeleteGroups, 42),
            (ApiKey::DescribeCluster, 60),
        ];
        for (api, key) in expected {
            assert_eq!(api as i16, key, "{}", api.name());
        }
    }

    #[test]
    fn an_unsupported_version_is_a_typed_error() {
        assert_eq!(
            ApiKey::Produce.version(2),
            Err(DecodeError::UnsupportedVersion {
                api: ApiKey::Produce,
                version: 2
            })
        );
        assert!(ApiKey::Produce.version(9).unwrap().flexible);
        assert!(!ApiKey::Produce.version(8).unwrap().flexible);
    }
}
