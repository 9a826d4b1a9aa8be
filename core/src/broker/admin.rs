//! Metadata and administration: Metadata, CreateTopics, DeleteTopics, CreatePartitions,
//! DescribeConfigs, DescribeCluster, InitProducerId. A change is checked here, forwarded to the
//! controller (see `metadata`), and answered once it is committed to the metadata log and this
//! broker's image has applied it.

use super::metadata::{MetaOp, NewTopic};
use super::topics::{validate_topic_name, Topic, TopicConfig, TOPIC_CONFIG_NAMES};
use super::{Broker, Reply, StorageTarget};
use crate::protocol::codes;
use crate::protocol::messages::create_partitions::*;
use crate::protocol::messages::create_topics::*;
use crate::protocol::messages::delete_topics::*;
use crate::protocol::messages::describe_cluster::*;
use crate::protocol::messages::describe_configs::*;
use crate::protocol::messages::describe_log_dirs::*;
use crate::protocol::messages::init_producer_id::*;
use crate::protocol::messages::metadata::*;
use crate::protocol::Response;
use std::collections::VecDeque;

/// DescribeConfigs resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// DescribeConfigs config sources.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

/// An admin request waiting on the controller: which response slots the forwarded items fill.
#[derive(Debug)]
pub(super) enum Waiter {
    CreateTopics {
        reply: Reply,
        response: CreateTopicsResponse,
        slots: Vec<usize>,
    },
    DeleteTopics {
        reply: Reply,
        response: DeleteTopicsResponse,
        slots: Vec<usize>,
    },
    CreatePartitions {
        reply: Reply,
        response: CreatePartitionsResponse,
        slots: Vec<usize>,
    },
    /// A producer-id block for the InitProducerId requests queued meanwhile.
    ProducerIds,
    /// A topic created because Metadata named it (nobody waits).
    AutoCreate,
}

/// One forwarded item's outcome: (error code, message).
pub(super) type ItemResult = (i16, Option<String>);

/// Admin answers waiting for this broker's image to reach the metadata index their change
/// committed at, so a client that reads metadata next (here) sees its change.
#[derive(Debug, Default)]
pub(super) struct Waiting {
    after_apply: Vec<(u64, Waiter, Vec<ItemResult>)>,
    producer_ids: VecDeque<(Reply, InitProducerIdResponse)>,
}

impl Broker {
    pub(super) fn finish_waiter(
        &mut self,
        waiter: Waiter,
        index: u64,
        results: Vec<(i16, Option<String>)>,
    ) {
        self.admin.after_apply.push((index, waiter, results));
        self.answer_after_apply();
    }

    pub(super) fn fail_waiter(&mut self, waiter: Waiter, code: i16) {
        let n = match &waiter {
            Waiter::CreateTopics { slots, .. }
            | Waiter::DeleteTopics { slots, .. }
            | Waiter::CreatePartitions { slots, .. } => slots.len(),
            Waiter::ProducerIds => {
                self.meta.producer_ids_requested = false;
                for (reply, mut response) in std::mem::take(&mut self.admin.producer_ids) {
                    response.error_code = code;
                    self.respond(reply, Response::InitProducerId(response));
                }
                return;
            }
            Waiter::AutoCreate => return,
        };
        let message = Some("the controller did not answer in time; retry".to_string());
        self.complete_waiter(waiter, vec![(code, message); n]);
    }

    pub(super) fn answer_after_apply(&mut self) {
        let applied = self.catalogue.applied;
        let (ready, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.admin.after_apply)
            .into_iter()
            .partition(|(index, _, _)| *index <= applied);
        self.admin.after_apply = wait;
        for (_, waiter, results) in ready {
            self.complete_waiter(waiter, results);
        }
    }

    fn complete_waiter(&mut self, waiter: Waiter, results: Vec<(i16, Option<String>)>) {
        match waiter {
            Waiter::CreateTopics {
                reply,
                mut response,
                slots,
            } => {
                for (slot, (code, message)) in slots.into_iter().zip(results) {
                    let t = &mut response.topics[slot];
                    t.error_code = code;
                    t.error_message = message;
                    match self.catalogue.topics.get(&t.name) {
                        Some(topic) if code == codes::NONE => {
                            t.topic_id = topic.id;
                            t.replication_factor =
                                topic.replicas.first().map_or(1, |r| r.len() as i16);
                        }
                        _ => {
                            t.num_partitions = -1;
                            t.replication_factor = -1;
                            t.configs = None;
                        }
                    }
                }
                self.respond(reply, Response::CreateTopics(response));
            }
            Waiter::DeleteTopics {
                reply,
                mut response,
                slots,
            } => {
                for (slot, (code, message)) in slots.into_iter().zip(results) {
                    response.responses[slot].error_code = code;
                    response.responses[slot].error_message = message;
                }
                self.respond(reply, Response::DeleteTopics(response));
            }
            Waiter::CreatePartitions {
                reply,
                mut response,
                slots,
            } => {
                for (slot, (code, message)) in slots.into_iter().zip(results) {
                    response.results[slot].error_code = code;
                    response.results[slot].error_message = message;
                }
                self.respond(reply, Response::CreatePartitions(response));
            }
            Waiter::ProducerIds | Waiter::AutoCreate => {}
        }
    }

    pub(super) fn on_metadata(&mut self, reply: Reply, r: MetadataRequest) {
        let names: Vec<String> = match &r.topics {
            None => self.catalogue.topics.keys().cloned().collect(),
            Some(list) if list.is_empty() && reply.api_version == 0 => {
                self.catalogue.topics.keys().cloned().collect()
            }
            Some(list) => list.iter().filter_map(|t| t.name.clone()).collect(),
        };
        let mut create = Vec::new();
        let mut topics = Vec::new();
        for name in names {
            if !self.catalogue.topics.contains_key(&name)
                && self.cfg.auto_create_topics
                && r.allow_auto_topic_creation
                && name != super::group::records::OFFSETS_TOPIC
                && validate_topic_name(&name).is_ok()
            {
                // As Kafka: the topic is being created; the client retries until it has a
                // leader.
                create.push(NewTopic {
                    name: name.clone(),
                    partitions: self.cfg.default_partitions,
                    replication_factor: self.default_replication_factor(),
                    configs: Vec::new(),
                });
                topics.push(MetadataResponseTopic {
                    error_code: codes::LEADER_NOT_AVAILABLE,
                    name: Some(name),
                    ..Default::default()
                });
                continue;
            }
            topics.push(self.topic_metadata(&name));
        }
        if !create.is_empty() {
            self.forward(MetaOp::CreateTopics(create), Waiter::AutoCreate, 30_000);
        }
        let response = Response::Metadata(MetadataResponse {
            brokers: self
                .live_brokers()
                .into_iter()
                .map(|(node_id, host, port)| MetadataResponseBroker {
                    node_id,
                    host,
                    port,
                    rack: None,
                })
                .collect(),
            cluster_id: self.cluster_id(),
            controller_id: self.meta.controller.unwrap_or(-1),
            topics,
            ..Default::default()
        });
        self.respond(reply, response);
    }

    /// The replication factor of a topic created without one: the configured default, capped
    /// by the live brokers so an auto-created topic in a shrunken cluster still works.
    fn default_replication_factor(&self) -> u16 {
        let live = self.catalogue.live_brokers().len().max(1) as u16;
        self.cfg.default_replication_factor.clamp(1, live)
    }

    /// (id, host, port) of every live broker; this broker is always listed (it is answering,
    /// so it is alive, even before its registration commits).
    pub(super) fn live_brokers(&self) -> Vec<(i32, String, i32)> {
        let mut out: Vec<(i32, String, i32)> = self
            .catalogue
            .brokers
            .iter()
            .filter(|(&id, b)| !b.fenced && id != self.cfg.node_id)
            .map(|(&id, b)| (id, b.host.clone(), b.port))
            .collect();
        out.push((
            self.cfg.node_id,
            self.cfg.advertised_host.clone(),
            self.cfg.advertised_port,
        ));
        out.sort();
        out
    }

    fn cluster_id(&self) -> Option<String> {
        (!self.catalogue.cluster_id.is_empty()).then(|| self.catalogue.cluster_id.clone())
    }

    fn topic_metadata(&self, name: &str) -> MetadataResponseTopic {
        let Some(topic) = self.catalogue.topics.get(name) else {
            let error_code = if validate_topic_name(name).is_ok() {
                codes::UNKNOWN_TOPIC_OR_PARTITION
            } else {
                codes::INVALID_TOPIC_EXCEPTION
            };
            return MetadataResponseTopic {
                error_code,
                name: Some(name.to_string()),
                ..Default::default()
            };
        };
        let partitions = (0..topic.partition_count())
            .map(|index| {
                let view = self.partition_view(topic, index);
                let fenced = |b: &i32| {
                    self.catalogue.brokers.get(b).is_some_and(|i| i.fenced)
                        && *b != self.cfg.node_id
                };
                MetadataResponsePartition {
                    error_code: if view.leader >= 0 {
                        codes::NONE
                    } else {
                        codes::LEADER_NOT_AVAILABLE
                    },
                    partition_index: index as i32,
                    leader_id: view.leader,
                    leader_epoch: view.epoch,
                    replica_nodes: view.replicas.clone(),
                    isr_nodes: view.in_sync,
                    offline_replicas: view.replicas.iter().copied().filter(fenced).collect(),
                }
            })
            .collect();
        MetadataResponseTopic {
            error_code: codes::NONE,
            name: Some(name.to_string()),
            topic_id: topic.id,
            is_internal: name == super::group::records::OFFSETS_TOPIC,
            partitions,
            ..Default::default()
        }
    }

    /// Adds a topic creation to `create` if the request is valid; the controller assigns it.
    pub(super) fn on_create_topics(&mut self, reply: Reply, r: CreateTopicsRequest) {
        let mut response = CreateTopicsResponse::default();
        let mut create = Vec::new();
        let mut slots = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for t in r.topics {
            let outcome = self.check_new_topic(&t, &mut seen);
            let mut result = CreatableTopicResult {
                name: t.name.clone(),
                ..Default::default()
            };
            match outcome {
                Err((code, message)) => {
                    result.error_code = code;
                    result.error_message = Some(message);
                }
                Ok((partitions, rf, config)) => {
                    result.num_partitions = partitions as i32;
                    result.replication_factor = rf as i16;
                    result.configs = Some(
                        TOPIC_CONFIG_NAMES
                            .iter()
                            .map(|&n| CreatableTopicConfigs {
                                name: n.to_string(),
                                value: config.get(n),
                                config_source: if config.explicit.iter().any(|e| e == n) {
                                    SOURCE_TOPIC
                                } else {
                                    SOURCE_DEFAULT
                                },
                                ..Default::default()
                            })
                            .collect(),
                    );
                    result.error_message = None;
                    if !r.validate_only {
                        slots.push(response.topics.len());
                        create.push(NewTopic {
                            name: t.name.clone(),
                            partitions,
                            replication_factor: rf,
                            configs: t
                                .configs
                                .iter()
                                .filter_map(|c| Some((c.name.clone(), c.value.clone()?)))
                                .collect(),
                        });
                    }
                }
            }
            response.topics.push(result);
        }
        if create.is_empty() {
            self.respond(reply, Response::CreateTopics(response));
        } else {
            let waiter = Waiter::CreateTopics {
                reply,
                response,
                slots,
            };
            self.forward(MetaOp::CreateTopics(create), waiter, r.timeout_ms);
        }
    }

    fn check_new_topic(
        &self,
        t: &CreatableTopic,
        seen: &mut std::collections::BTreeSet<String>,
    ) -> Result<(u32, u16, TopicConfig), (i16, String)> {
        validate_topic_name(&t.name).map_err(|m| (codes::INVALID_TOPIC_EXCEPTION, m))?;
        if t.name == super::group::records::OFFSETS_TOPIC {
            return Err((
                codes::INVALID_REQUEST,
                format!(
                    "{} is internal: brokers create it when a group first needs a coordinator",
                    t.name
                ),
            ));
        }
        if !seen.insert(t.name.clone()) {
            return Err((
                codes::INVALID_REQUEST,
                format!("topic '{}' is listed twice", t.name),
            ));
        }
        if self.catalogue.topics.contains_key(&t.name) {
            return Err((
                codes::TOPIC_ALREADY_EXISTS,
                format!("topic '{}' already exists", t.name),
            ));
        }
        if !t.assignments.is_empty() {
            return Err((
                codes::INVALID_REQUEST,
                "manual replica assignment is not supported; give a partition count".into(),
            ));
        }
        let partitions = match t.num_partitions {
            -1 => self.cfg.default_partitions,
            n if (1..=10_000).contains(&n) => n as u32,
            n => {
                return Err((
                    codes::INVALID_PARTITIONS,
                    format!("{n} partitions: the count must be between 1 and 10000"),
                ))
            }
        };
        let live = self.live_brokers().len();
        let rf = match t.replication_factor {
            -1 => self.default_replication_factor(),
            n if n >= 1 && n as usize <= live => n as u16,
            n if n >= 1 => {
                return Err((
                    codes::INVALID_REPLICATION_FACTOR,
                    format!("replication factor {n} is larger than the {live} live brokers"),
                ))
            }
            n => {
                return Err((
                    codes::INVALID_REPLICATION_FACTOR,
                    format!("replication factor {n} must be at least 1"),
                ))
            }
        };
        let mut config = TopicConfig::defaults(&self.cfg.log);
        for c in &t.configs {
            config.set(&c.name, c.value.as_deref())?;
        }
        config
            .log_config(&self.cfg.log)
            .validate()
            .map_err(|m| (codes::INVALID_CONFIG, m))?;
        Ok((partitions, rf, config))
    }

    pub(super) fn on_delete_topics(&mut self, reply: Reply, r: DeleteTopicsRequest) {
        let mut response = DeleteTopicsResponse::default();
        let mut names = Vec::new();
        let mut slots = Vec::new();
        for name in r.topic_names {
            if name == super::group::records::OFFSETS_TOPIC {
                response.responses.push(DeletableTopicResult {
                    error_code: codes::INVALID_TOPIC_EXCEPTION,
                    error_message: Some(format!(
                        "{name} is internal: it holds every group's offsets and cannot be deleted"
                    )),
                    name,
                });
                continue;
            }
            let error_code = if self.catalogue.topics.contains_key(&name) {
                slots.push(response.responses.len());
                names.push(name.clone());
                codes::NONE
            } else {
                codes::UNKNOWN_TOPIC_OR_PARTITION
            };
            response.responses.push(DeletableTopicResult {
                name,
                error_code,
                error_message: None,
            });
        }
        if names.is_empty() {
            self.respond(reply, Response::DeleteTopics(response));
        } else {
            let waiter = Waiter::DeleteTopics {
                reply,
                response,
                slots,
            };
            self.forward(MetaOp::DeleteTopics(names), waiter, r.timeout_ms);
        }
    }

    /// A topic the metadata log deleted: its partitions here stop and their files go.
    pub(super) fn remove_topic(&mut self, topic: &Topic) {
        for (_, id) in self.partition_ids.remove(&topic.name).unwrap_or_default() {
            self.data
                .fail_partition(id, codes::UNKNOWN_TOPIC_OR_PARTITION);
            if let Some(p) = self.partitions.get(&id) {
                self.keys.remove(&p.key);
            }
            self.outputs.push_back(super::Output::Storage {
                target: StorageTarget::Partition(id),
                job: super::StorageJob::Delete,
            });
        }
        self.flush_failed_produces();
        self.outputs
            .push_back(super::Output::Event(super::Event::TopicDeleted {
                topic: topic.name.clone(),
            }));
    }

    pub(super) fn on_create_partitions(&mut self, reply: Reply, r: CreatePartitionsRequest) {
        let mut response = CreatePartitionsResponse::default();
        let mut list = Vec::new();
        let mut slots = Vec::new();
        for t in r.topics {
            let outcome = match self.catalogue.topics.get(&t.name) {
                None => Err((
                    codes::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("topic '{}' does not exist", t.name),
                )),
                Some(topic) if t.count <= topic.partition_count() as i32 => Err((
                    codes::INVALID_PARTITIONS,
                    format!(
                        "topic '{}' has {} partitions; the new count {} must be larger",
                        t.name,
                        topic.partition_count(),
                        t.count
                    ),
                )),
                Some(_) if t.count > 10_000 => Err((
                    codes::INVALID_PARTITIONS,
                    format!("{} partitions is above the limit 10000", t.count),
                )),
                Some(_) if t.assignments.as_ref().is_some_and(|a| !a.is_empty()) => Err((
                    codes::INVALID_REQUEST,
                    "manual replica assignment is not supported".into(),
                )),
                Some(_) => Ok(()),
            };
            let (error_code, error_message) = match outcome {
                Err((code, m)) => (code, Some(m)),
                Ok(()) => {
                    if !r.validate_only {
                        slots.push(response.results.len());
                        list.push((t.name.clone(), t.count as u32));
                    }
                    (codes::NONE, None)
                }
            };
            response.results.push(CreatePartitionsTopicResult {
                name: t.name,
                error_code,
                error_message,
            });
        }
        if list.is_empty() {
            self.respond(reply, Response::CreatePartitions(response));
        } else {
            let waiter = Waiter::CreatePartitions {
                reply,
                response,
                slots,
            };
            self.forward(MetaOp::CreatePartitions(list), waiter, r.timeout_ms);
        }
    }

    pub(super) fn on_describe_configs(&mut self, reply: Reply, r: DescribeConfigsRequest) {
        let results = r
            .resources
            .into_iter()
            .map(|res| self.describe_resource(res))
            .collect();
        self.respond(
            reply,
            Response::DescribeConfigs(DescribeConfigsResponse {
                results,
                ..Default::default()
            }),
        );
    }

    fn describe_resource(&self, res: DescribeConfigsResource) -> DescribeConfigsResult {
        let mut out = DescribeConfigsResult {
            resource_type: res.resource_type,
            resource_name: res.resource_name.clone(),
            error_message: None,
            ..Default::default()
        };
        let wanted = |name: &str| {
            res.configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| k == name))
        };
        let entry = |name: &str, value: String, source: i8| DescribeConfigsResourceResult {
            name: name.to_string(),
            value: Some(value),
            read_only: false,
            config_source: source,
            documentation: None,
            ..Default::default()
        };
        match res.resource_type {
            RESOURCE_TOPIC => match self.catalogue.topics.get(&res.resource_name) {
                None => {
                    out.error_code = codes::UNKNOWN_TOPIC_OR_PARTITION;
                    out.error_message =
                        Some(format!("topic '{}' does not exist", res.resource_name));
                }
                Some(topic) => {
                    for &name in TOPIC_CONFIG_NAMES.iter().filter(|n| wanted(n)) {
                        let explicit = topic.config.explicit.iter().any(|e| e == name);
                        let value = topic.config.get(name).unwrap_or_default();
                        out.configs.push(entry(
                            name,
                            value,
                            if explicit {
                                SOURCE_TOPIC
                            } else {
                                SOURCE_DEFAULT
                            },
                        ));
                    }
                }
            },
            RESOURCE_BROKER
                if res.resource_name.is_empty()
                    || res.resource_name == self.cfg.node_id.to_string() =>
            {
                let defaults = TopicConfig::defaults(&self.cfg.log);
                let broker_configs = [
                    (
                        "auto.create.topics.enable",
                        self.cfg.auto_create_topics.to_string(),
                    ),
                    ("num.partitions", self.cfg.default_partitions.to_string()),
                    ("log.retention.ms", defaults.retention_ms.to_string()),
                    ("log.retention.bytes", defaults.retention_bytes.to_string()),
                    ("log.segment.bytes", defaults.segment_bytes.to_string()),
                    ("message.max.bytes", defaults.max_message_bytes.to_string()),
                ];
                for (name, value) in broker_configs.into_iter().filter(|(n, _)| wanted(n)) {
                    out.configs.push(entry(name, value, SOURCE_DEFAULT));
                }
            }
            RESOURCE_BROKER => {
                out.error_code = codes::INVALID_REQUEST;
                out.error_message = Some(format!(
                    "this is broker {}, not {}",
                    self.cfg.node_id, res.resource_name
                ));
            }
            other => {
                out.error_code = codes::INVALID_REQUEST;
                out.error_message = Some(format!("resource type {other} is not supported"));
            }
        }
        out
    }

    pub(super) fn on_describe_cluster(&mut self, reply: Reply) {
        let response = Response::DescribeCluster(DescribeClusterResponse {
            cluster_id: self.catalogue.cluster_id.clone(),
            controller_id: self.meta.controller.unwrap_or(-1),
            brokers: self
                .live_brokers()
                .into_iter()
                .map(|(broker_id, host, port)| DescribeClusterBroker {
                    broker_id,
                    host,
                    port,
                    rack: None,
                })
                .collect(),
            ..Default::default()
        });
        self.respond(reply, response);
    }

    /// Every hosted replica with its size and its lag behind the high watermark in offsets (0
    /// on the leader; a follower's lag as its leader last reported it, -1 when unknown).
    pub(super) fn on_describe_log_dirs(&mut self, reply: Reply, r: DescribeLogDirsRequest) {
        let me = self.cfg.node_id;
        let mut topics: std::collections::BTreeMap<String, Vec<DescribeLogDirsPartition>> =
            std::collections::BTreeMap::new();
        for p in self.partitions.values().filter(|p| p.raft.is_some()) {
            let wanted = r.topics.as_ref().is_none_or(|ts| {
                ts.iter()
                    .any(|t| t.topic == p.topic && t.partitions.contains(&(p.index as i32)))
            });
            if !wanted {
                continue;
            }
            let offset_lag = if p.is_leader() {
                0
            } else {
                self.meta
                    .known_leaders
                    .get(&p.key)
                    .and_then(|(_, _, lag)| lag.iter().find(|(b, _)| *b == me))
                    .map_or(-1, |&(_, l)| l)
            };
            topics
                .entry(p.topic.clone())
                .or_default()
                .push(DescribeLogDirsPartition {
                    partition_index: p.index as i32,
                    partition_size: i64::try_from(p.size_bytes).unwrap_or(i64::MAX),
                    offset_lag,
                    is_future_key: false,
                });
        }
        let result = DescribeLogDirsResult {
            error_code: codes::NONE,
            log_dir: self.cfg.log_dir.clone(),
            topics: topics
                .into_iter()
                .map(|(name, partitions)| DescribeLogDirsTopic { name, partitions })
                .collect(),
            total_bytes: -1,
            usable_bytes: -1,
        };
        self.respond(
            reply,
            Response::DescribeLogDirs(DescribeLogDirsResponse {
                results: vec![result],
                ..Default::default()
            }),
        );
    }

    pub(super) fn on_init_producer_id(&mut self, reply: Reply, r: InitProducerIdRequest) {
        let mut response = InitProducerIdResponse::default();
        if r.transactional_id.as_deref().is_some_and(|t| !t.is_empty()) {
            response.error_code = codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            self.respond(reply, Response::InitProducerId(response));
            return;
        }
        if r.producer_id >= 0
            && r.producer_id < self.catalogue.next_producer_id
            && r.producer_epoch >= 0
        {
            // KIP-360: an idempotent producer bumps its epoch to reset its sequences.
            if r.producer_epoch < i16::MAX - 1 {
                response.producer_id = r.producer_id;
                response.producer_epoch = r.producer_epoch + 1;
                self.respond(reply, Response::InitProducerId(response));
                return;
            }
        }
        self.admin.producer_ids.push_back((reply, response));
        self.serve_producer_id_waiters();
    }

    /// Hands out ids from this broker's block; asks the controller for a new block when empty.
    pub(super) fn serve_producer_id_waiters(&mut self) {
        while !self.admin.producer_ids.is_empty() {
            let (next, end) = self.meta.producer_ids;
            if next >= end {
                if !self.meta.producer_ids_requested {
                    self.meta.producer_ids_requested = true;
                    let incarnation = self.meta.incarnation;
                    self.forward(
                        MetaOp::AllocateProducerIds { incarnation },
                        Waiter::ProducerIds,
                        30_000,
                    );
                }
                return;
            }
            self.meta.producer_ids.0 += 1;
            let (reply, mut response) = self.admin.producer_ids.pop_front().expect("non-empty");
            response.producer_id = next;
            response.producer_epoch = 0;
            self.respond(reply, Response::InitProducerId(response));
        }
    }
}
