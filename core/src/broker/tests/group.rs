//! The group coordinator driven through the wire protocol: joins, assignments, heartbeats,
//! offsets, static members, failover and the offsets topic's compaction.

use super::*;
use crate::broker::group::records::OFFSETS_TOPIC;
use crate::protocol::messages::delete_groups::*;
use crate::protocol::messages::describe_groups::*;
use crate::protocol::messages::find_coordinator::*;
use crate::protocol::messages::heartbeat::*;
use crate::protocol::messages::join_group::*;
use crate::protocol::messages::leave_group::*;
use crate::protocol::messages::list_groups::*;
use crate::protocol::messages::offset_commit::*;
use crate::protocol::messages::offset_fetch::*;
use crate::protocol::messages::sync_group::*;

const JOIN_V: i16 = 5;

impl Harness {
    /// Asks until the group has a coordinator; makes it the target. Returns its node id.
    fn coordinator(&mut self, group: &str) -> i32 {
        for _ in 0..2000 {
            for i in 0..self.nodes.len() {
                if self.nodes[i].broker.is_none() {
                    continue;
                }
                self.target = i;
                let r = self.call(
                    3,
                    Request::FindCoordinator(FindCoordinatorRequest {
                        key: group.into(),
                        ..Default::default()
                    }),
                );
                let Response::FindCoordinator(r) = r else {
                    panic!()
                };
                // A client cannot reach a coordinator that is down; it asks again.
                let up = r.node_id >= 1 && self.nodes[(r.node_id - 1) as usize].broker.is_some();
                if r.error_code == codes::NONE && up {
                    self.target = (r.node_id - 1) as usize;
                    return r.node_id;
                }
            }
            self.advance(Duration::from_millis(20));
        }
        panic!("{group} never got a coordinator");
    }

    /// Waits (bounded) for an answer on `conn`.
    fn answer(&mut self, conn: ConnId, api: ApiKey, version: i16) -> Response {
        for _ in 0..4000 {
            if let Some(r) = self.take(conn, api, version) {
                return r;
            }
            self.advance(Duration::from_millis(10));
        }
        panic!("no {api:?} answer on connection {conn} within 40 s of simulated time")
    }

    fn join_request(&mut self, conn: ConnId, group: &str, member: &str, instance: Option<&str>) {
        self.send(
            conn,
            JOIN_V,
            Request::JoinGroup(JoinGroupRequest {
                group_id: group.into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                member_id: member.into(),
                group_instance_id: instance.map(Into::into),
                protocol_type: "consumer".into(),
                protocols: vec![JoinGroupRequestProtocol {
                    name: "range".into(),
                    metadata: Bytes::from(format!("sub-{conn}")),
                }],
                ..Default::default()
            }),
        );
    }

    fn join_answer(&mut self, conn: ConnId) -> JoinGroupResponse {
        let Response::JoinGroup(r) = self.answer(conn, ApiKey::JoinGroup, JOIN_V) else {
            panic!()
        };
        r
    }

    /// A dynamic member's first join: the MEMBER_ID_REQUIRED round trip, then a parked join.
    fn join_new(&mut self, conn: ConnId, group: &str) -> String {
        self.join_request(conn, group, "", None);
        let first = self.join_answer(conn);
        assert_eq!(first.error_code, codes::MEMBER_ID_REQUIRED);
        assert!(first.member_id.starts_with("test-"), "{}", first.member_id);
        self.join_request(conn, group, &first.member_id.clone(), None);
        first.member_id
    }

    fn sync(
        &mut self,
        conn: ConnId,
        group: &str,
        member: &str,
        generation: i32,
        assignments: &[(&str, &str)],
    ) {
        self.send(
            conn,
            5,
            Request::SyncGroup(SyncGroupRequest {
                group_id: group.into(),
                generation_id: generation,
                member_id: member.into(),
                group_instance_id: None,
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                assignments: assignments
                    .iter()
                    .map(|(m, a)| SyncGroupRequestAssignment {
                        member_id: m.to_string(),
                        assignment: Bytes::from(a.to_string()),
                    })
                    .collect(),
            }),
        );
    }

    fn sync_answer(&mut self, conn: ConnId) -> SyncGroupResponse {
        let Response::SyncGroup(r) = self.answer(conn, ApiKey::SyncGroup, 5) else {
            panic!()
        };
        r
    }

    fn heartbeat(&mut self, conn: ConnId, group: &str, member: &str, generation: i32) -> i16 {
        self.send(
            conn,
            4,
            Request::Heartbeat(HeartbeatRequest {
                group_id: group.into(),
                generation_id: generation,
                member_id: member.into(),
                group_instance_id: None,
            }),
        );
        let Response::Heartbeat(r) = self.answer(conn, ApiKey::Heartbeat, 4) else {
            panic!()
        };
        r.error_code
    }

    fn commit(&mut self, group: &str, member: &str, generation: i32, offset: i64) -> i16 {
        let r = self.call(
            8,
            Request::OffsetCommit(OffsetCommitRequest {
                group_id: group.into(),
                generation_id_or_member_epoch: generation,
                member_id: member.into(),
                topics: vec![OffsetCommitRequestTopic {
                    name: "orders".into(),
                    partitions: vec![OffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: offset,
                        committed_metadata: Some("m".into()),
                        ..Default::default()
                    }],
                }],
                ..Default::default()
            }),
        );
        let Response::OffsetCommit(r) = r else {
            panic!()
        };
        r.topics[0].partitions[0].error_code
    }

    /// The committed offset of orders-0 (v8, many-groups form).
    fn committed(&mut self, group: &str) -> (i16, i64) {
        let r = self.call(
            8,
            Request::OffsetFetch(OffsetFetchRequest {
                groups: vec![OffsetFetchRequestGroup {
                    group_id: group.into(),
                    topics: None,
                }],
                require_stable: true,
                ..Default::default()
            }),
        );
        let Response::OffsetFetch(r) = r else {
            panic!()
        };
        let g = &r.groups[0];
        let offset = g
            .topics
            .iter()
            .find(|t| t.name == "orders")
            .map_or(-1, |t| t.partitions[0].committed_offset);
        (g.error_code, offset)
    }

    fn describe(&mut self, group: &str) -> DescribedGroup {
        let r = self.call(
            5,
            Request::DescribeGroups(DescribeGroupsRequest {
                groups: vec![group.into()],
                include_authorized_operations: false,
            }),
        );
        let Response::DescribeGroups(r) = r else {
            panic!()
        };
        r.groups[0].clone()
    }
}

#[test]
fn members_join_sync_heartbeat_commit_and_rebalance_when_another_joins() {
    let mut h = Harness::new();
    h.coordinator("g");
    let now = h.now;
    let target = h.target;
    h.input(
        target,
        Input::Connected {
            now,
            conn: 10,
            host: "10.0.0.7".into(),
        },
    );
    // First member: MEMBER_ID_REQUIRED, then its join waits out the initial rebalance delay.
    let a = h.join_new(10, "g");
    let ja = h.join_answer(10);
    assert_eq!(ja.error_code, codes::NONE);
    assert_eq!(ja.generation_id, 1);
    assert_eq!(ja.leader, a);
    assert_eq!(ja.protocol_name.as_deref(), Some("range"));
    assert_eq!(ja.members.len(), 1, "the leader gets the member list");
    h.sync(10, "g", &a, 1, &[(&a, "p0,p1")]);
    assert_eq!(h.sync_answer(10).assignment, Bytes::from("p0,p1"));
    assert_eq!(h.heartbeat(10, "g", &a, 1), codes::NONE);
    assert_eq!(h.commit("g", &a, 1, 42), codes::NONE);
    assert_eq!(h.committed("g"), (codes::NONE, 42));
    assert_eq!(h.commit("g", &a, 0, 43), codes::ILLEGAL_GENERATION);
    assert_eq!(h.commit("g", "stranger", 1, 43), codes::UNKNOWN_MEMBER_ID);

    // A second member joins: the first learns through its heartbeat and rejoins.
    let b = h.join_new(11, "g");
    assert_eq!(h.heartbeat(10, "g", &a, 1), codes::REBALANCE_IN_PROGRESS);
    assert_eq!(h.describe("g").group_state, "PreparingRebalance");
    h.join_request(10, "g", &a, None);
    let (ja, jb) = (h.join_answer(10), h.join_answer(11));
    assert_eq!((ja.generation_id, jb.generation_id), (2, 2));
    assert_eq!(ja.leader, a, "the leader stays");
    assert_eq!(ja.members.len(), 2);
    assert!(jb.members.is_empty());
    // The follower's sync waits for the leader's assignment.
    h.sync(11, "g", &b, 2, &[]);
    assert!(h.take(11, ApiKey::SyncGroup, 5).is_none());
    assert_eq!(h.describe("g").group_state, "CompletingRebalance");
    h.sync(10, "g", &a, 2, &[(&a, "p0"), (&b, "p1")]);
    assert_eq!(h.sync_answer(10).assignment, Bytes::from("p0"));
    assert_eq!(h.sync_answer(11).assignment, Bytes::from("p1"));
    let d = h.describe("g");
    assert_eq!(d.group_state, "Stable");
    assert_eq!(d.protocol_data, "range");
    assert_eq!(d.members.len(), 2);
    let hosts: Vec<&str> = d.members.iter().map(|m| m.client_host.as_str()).collect();
    assert!(hosts.contains(&"/10.0.0.7"), "{hosts:?}");

    // The group and its offsets survive a restart.
    let disk = std::mem::take(&mut h.nodes[0].disk);
    let mut h = Harness::boot(disk, 2);
    h.coordinator("g");
    assert_eq!(h.committed("g"), (codes::NONE, 42));
    let d = h.describe("g");
    assert_eq!(d.group_state, "Stable");
    assert_eq!(d.members.len(), 2);
    assert_eq!(h.heartbeat(10, "g", &a, 2), codes::NONE);
    h.sync(11, "g", &b, 2, &[]);
    assert_eq!(h.sync_answer(11).assignment, Bytes::from("p1"));
}

#[test]
fn a_silent_member_is_removed_after_its_session_timeout_and_the_rest_rebalance() {
    let mut h = Harness::new();
    h.coordinator("g");
    let a = h.join_new(10, "g");
    let b = h.join_new(11, "g");
    let (ja, jb) = (h.join_answer(10), h.join_answer(11));
    assert_eq!((ja.generation_id, jb.generation_id), (1, 1));
    let leader = ja.leader.clone();
    let (lc, fc, follower) = if leader == a {
        (10, 11, b.clone())
    } else {
        (11, 10, a.clone())
    };
    h.sync(lc, "g", &leader, 1, &[(&a, "x"), (&b, "y")]);
    h.sync(fc, "g", &follower, 1, &[]);
    h.sync_answer(lc);
    h.sync_answer(fc);
    // Only the leader heartbeats; the follower goes silent.
    let mut code = codes::NONE;
    for _ in 0..40 {
        h.run_for(Duration::from_millis(500));
        code = h.heartbeat(lc, "g", &leader, 1);
        if code != codes::NONE {
            break;
        }
    }
    assert_eq!(code, codes::REBALANCE_IN_PROGRESS);
    h.join_request(lc, "g", &leader, None);
    let j = h.join_answer(lc);
    assert_eq!(j.generation_id, 2);
    assert_eq!(j.members.len(), 1, "the silent member is gone");
    assert_eq!(h.heartbeat(fc, "g", &follower, 1), codes::UNKNOWN_MEMBER_ID);
}

#[test]
fn a_static_member_that_restarts_takes_its_place_back_without_a_rebalance() {
    let mut h = Harness::new();
    h.coordinator("g");
    h.join_request(10, "g", "", Some("i-1"));
    let j = h.join_answer(10);
    assert_eq!(
        j.error_code,
        codes::NONE,
        "static members skip MEMBER_ID_REQUIRED"
    );
    let old = j.member_id.clone();
    h.sync(10, "g", &old, 1, &[(&old, "p0")]);
    assert_eq!(h.sync_answer(10).assignment, Bytes::from("p0"));
    // Restarted: same instance id, no member id.
    h.join_request(12, "g", "", Some("i-1"));
    let j = h.join_answer(12);
    assert_eq!(j.error_code, codes::NONE);
    assert_eq!(j.generation_id, 1, "no rebalance");
    assert_ne!(j.member_id, old);
    assert_eq!(h.describe("g").group_state, "Stable");
    h.sync(12, "g", &j.member_id.clone(), 1, &[]);
    assert_eq!(h.sync_answer(12).assignment, Bytes::from("p0"));
    // The old incarnation is fenced.
    h.send(
        10,
        4,
        Request::Heartbeat(HeartbeatRequest {
            group_id: "g".into(),
            generation_id: 1,
            member_id: old,
            group_instance_id: Some("i-1".into()),
        }),
    );
    let Response::Heartbeat(r) = h.answer(10, ApiKey::Heartbeat, 4) else {
        panic!()
    };
    assert_eq!(r.error_code, codes::FENCED_INSTANCE_ID);
}

#[test]
fn leaving_rebalances_and_only_an_empty_group_can_be_deleted() {
    let mut h = Harness::new();
    h.coordinator("g");
    let a = h.join_new(10, "g");
    h.join_answer(10);
    h.sync(10, "g", &a, 1, &[(&a, "p0")]);
    h.sync_answer(10);
    let delete = |h: &mut Harness| {
        let r = h.call(
            2,
            Request::DeleteGroups(DeleteGroupsRequest {
                groups_names: vec!["g".into(), "nope".into()],
            }),
        );
        let Response::DeleteGroups(r) = r else {
            panic!()
        };
        (r.results[0].error_code, r.results[1].error_code)
    };
    assert_eq!(delete(&mut h).0, codes::NON_EMPTY_GROUP);
    let r = h.call(
        5,
        Request::LeaveGroup(LeaveGroupRequest {
            group_id: "g".into(),
            members: vec![MemberIdentity {
                member_id: a.clone(),
                group_instance_id: None,
                reason: Some("closing".into()),
            }],
            ..Default::default()
        }),
    );
    let Response::LeaveGroup(r) = r else { panic!() };
    assert_eq!(r.members[0].error_code, codes::NONE);
    let d = h.describe("g");
    assert_eq!(d.group_state, "Empty");
    // A simple (non-member) commit works on an empty group.
    assert_eq!(h.commit("g", "", -1, 7), codes::NONE);
    let r = h.call(4, Request::ListGroups(ListGroupsRequest::default()));
    let Response::ListGroups(r) = r else { panic!() };
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].group_state, "Empty");
    assert_eq!(delete(&mut h), (codes::NONE, codes::GROUP_ID_NOT_FOUND));
    assert_eq!(
        h.committed("g"),
        (codes::NONE, -1),
        "offsets went with the group"
    );
    assert_eq!(h.describe("g").group_state, "Dead");
}

#[test]
fn a_new_coordinator_resumes_the_group_and_its_offsets_after_failover() {
    let mut h = Harness::cluster(3, 11);
    h.until_cluster_formed();
    let first = h.coordinator("g");
    let a = h.join_new(10, "g");
    let j = h.join_answer(10);
    assert_eq!(j.generation_id, 1);
    h.sync(10, "g", &a, 1, &[(&a, "p0")]);
    h.sync_answer(10);
    assert_eq!(h.commit("g", &a, 1, 99), codes::NONE);
    h.stop((first - 1) as usize);
    // Clients on the old coordinator's connections are gone; new ones find the new one.
    let second = h.coordinator("g");
    assert_ne!(first, second);
    assert_eq!(h.committed("g"), (codes::NONE, 99));
    let d = h.describe("g");
    assert_eq!(d.group_state, "Stable", "resumed with its assignment");
    assert_eq!(h.heartbeat(20, "g", &a, 1), codes::NONE);
    h.sync(20, "g", &a, 1, &[]);
    assert_eq!(h.sync_answer(20).assignment, Bytes::from("p0"));
    // A broker that does not coordinate the group says so.
    let other = (0..3)
        .find(|&i| i != (second - 1) as usize && i != (first - 1) as usize)
        .unwrap();
    h.target = other;
    assert_eq!(h.committed("g").0, codes::NOT_COORDINATOR);
}

#[test]
fn the_offsets_topic_is_compacted_by_checkpoints_and_recovers_from_them() {
    let mut h = Harness::new();
    {
        let b = h.nodes[0].broker.as_mut().unwrap();
        b.cfg.offsets_segment_bytes = 4096;
    }
    h.coordinator("g");
    for offset in 0..3000 {
        assert_eq!(h.commit("g", "", -1, offset), codes::NONE);
    }
    // Housekeeping runs every minute.
    h.run_for(Duration::from_secs(61));
    let p = h
        .broker()
        .partitions()
        .find(|p| p.topic == OFFSETS_TOPIC && p.high_watermark > 0)
        .expect("the group's partition");
    assert!(
        p.log_start > 2000,
        "log start {} did not move past the checkpoints",
        p.log_start
    );
    assert!(
        p.size_bytes < 64 * 1024,
        "3000 commits of one key take {} bytes",
        p.size_bytes
    );
    let disk = std::mem::take(&mut h.nodes[0].disk);
    let mut h = Harness::boot(disk, 3);
    h.coordinator("g");
    assert_eq!(h.committed("g"), (codes::NONE, 2999));
}

#[test]
fn clients_cannot_create_delete_or_produce_to_the_offsets_topic() {
    let mut h = Harness::new();
    h.coordinator("g");
    assert_eq!(
        h.create_topic(OFFSETS_TOPIC, 1, &[]),
        codes::INVALID_REQUEST
    );
    let (code, _) = h.produce(OFFSETS_TOPIC, 0, -1, batch(&["x"], 0));
    assert_eq!(code, codes::INVALID_TOPIC_EXCEPTION);
    let Response::DeleteTopics(d) = h.call(
        4,
        Request::DeleteTopics(
            crate::protocol::messages::delete_topics::DeleteTopicsRequest {
                topic_names: vec![OFFSETS_TOPIC.into()],
                timeout_ms: 1000,
            },
        ),
    ) else {
        panic!()
    };
    assert_eq!(d.responses[0].error_code, codes::INVALID_TOPIC_EXCEPTION);
    let Response::Metadata(m) = h.call(
        9,
        Request::Metadata(MetadataRequest {
            topics: None,
            ..Default::default()
        }),
    ) else {
        panic!()
    };
    let t = m
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(OFFSETS_TOPIC))
        .unwrap();
    assert!(t.is_internal);
}
