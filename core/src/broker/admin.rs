//! Metadata and administration: Metadata, CreateTopics, DeleteTopics, CreatePartitions,
//! DescribeConfigs, DescribeCluster, InitProducerId. Changes to the catalogue are answered
//! only after the catalogue file is durable.

use super::topics::{validate_topic_name, Topic, TopicConfig, TOPIC_CONFIG_NAMES};
use super::{random_uuid, Broker, Reply};
use crate::protocol::codes;
use crate::protocol::messages::create_partitions::*;
use crate::protocol::messages::create_topics::*;
use crate::protocol::messages::delete_topics::*;
use crate::protocol::messages::describe_cluster::*;
use crate::protocol::messages::describe_configs::*;
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

/// Responses waiting for the catalogue to be durable, in save order.
#[derive(Debug, Default)]
pub(super) struct Waiting {
    saves: VecDeque<Vec<(Reply, Response)>>,
}

impl Broker {
    /// Saves the catalogue and answers `replies` once it is durable.
    fn commit_catalogue(&mut self, replies: Vec<(Reply, Response)>) {
        self.save_catalogue();
        self.admin.saves.push_back(replies);
    }

    pub(super) fn on_catalogue_saved(&mut self) {
        // The first save (of a fresh data directory) has no waiters.
        if let Some(replies) = self.admin.saves.pop_front() {
            for (reply, response) in replies {
                self.respond(reply, response);
            }
        }
    }

    pub(super) fn save_catalogue_silently(&mut self) {
        self.commit_catalogue(Vec::new());
    }

    pub(super) fn on_metadata(&mut self, reply: Reply, r: MetadataRequest) {
        let names: Vec<String> = match &r.topics {
            None => self.catalogue.topics.keys().cloned().collect(),
            Some(list) if list.is_empty() && reply.api_version == 0 => {
                self.catalogue.topics.keys().cloned().collect()
            }
            Some(list) => list.iter().filter_map(|t| t.name.clone()).collect(),
        };
        let mut created = Vec::new();
        let mut topics = Vec::new();
        for name in names {
            if !self.catalogue.topics.contains_key(&name)
                && self.cfg.auto_create_topics
                && r.allow_auto_topic_creation
                && validate_topic_name(&name).is_ok()
            {
                let config = TopicConfig::defaults(&self.cfg.log);
                self.create_topic(&name, self.cfg.default_partitions, config);
                created.push(name.clone());
            }
            topics.push(self.topic_metadata(&name));
        }
        let response = Response::Metadata(MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: self.cfg.node_id,
                host: self.cfg.advertised_host.clone(),
                port: self.cfg.advertised_port,
                rack: None,
            }],
            cluster_id: Some(self.catalogue.cluster_id.clone()),
            controller_id: self.cfg.node_id,
            topics,
            ..Default::default()
        });
        if created.is_empty() {
            self.respond(reply, response);
        } else {
            self.commit_catalogue(vec![(reply, response)]);
        }
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
        let node = self.cfg.node_id;
        let partitions = (0..topic.partitions)
            .map(|index| {
                let p = self
                    .partition_id(name, index as i32)
                    .and_then(|id| self.partitions.get(&id));
                let leader = p.is_some_and(|p| p.is_leader());
                MetadataResponsePartition {
                    error_code: if leader {
                        codes::NONE
                    } else {
                        codes::LEADER_NOT_AVAILABLE
                    },
                    partition_index: index as i32,
                    leader_id: if leader { node } else { -1 },
                    leader_epoch: p.map_or(-1, |p| p.leader_epoch()),
                    replica_nodes: vec![node],
                    isr_nodes: vec![node],
                    offline_replicas: Vec::new(),
                }
            })
            .collect();
        MetadataResponseTopic {
            error_code: codes::NONE,
            name: Some(name.to_string()),
            topic_id: topic.id,
            partitions,
            ..Default::default()
        }
    }

    /// Adds a topic to the catalogue and opens its partitions (the caller saves the catalogue).
    fn create_topic(&mut self, name: &str, partitions: u32, config: TopicConfig) {
        let topic = Topic {
            name: name.to_string(),
            id: random_uuid(&mut self.rng),
            partitions,
            config,
        };
        self.open_partitions(&topic, 0);
        self.outputs
            .push_back(super::Output::Event(super::Event::TopicCreated {
                topic: name.to_string(),
                partitions,
            }));
        self.catalogue.topics.insert(name.to_string(), topic);
    }

    pub(super) fn on_create_topics(&mut self, reply: Reply, r: CreateTopicsRequest) {
        let mut results = Vec::new();
        let mut changed = false;
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
                Ok((partitions, config)) => {
                    result.num_partitions = partitions as i32;
                    result.replication_factor = 1;
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
                        self.create_topic(&t.name, partitions, config);
                        result.topic_id = self.catalogue.topics[&t.name].id;
                        changed = true;
                    }
                }
            }
            results.push(result);
        }
        let response = Response::CreateTopics(CreateTopicsResponse {
            topics: results,
            ..Default::default()
        });
        if changed {
            self.commit_catalogue(vec![(reply, response)]);
        } else {
            self.respond(reply, response);
        }
    }

    fn check_new_topic(
        &self,
        t: &CreatableTopic,
        seen: &mut std::collections::BTreeSet<String>,
    ) -> Result<(u32, TopicConfig), (i16, String)> {
        validate_topic_name(&t.name).map_err(|m| (codes::INVALID_TOPIC_EXCEPTION, m))?;
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
        if t.replication_factor != -1 && t.replication_factor != 1 {
            return Err((
                codes::INVALID_REPLICATION_FACTOR,
                format!(
                    "replication factor {} is larger than the 1 available broker",
                    t.replication_factor
                ),
            ));
        }
        let mut config = TopicConfig::defaults(&self.cfg.log);
        for c in &t.configs {
            config.set(&c.name, c.value.as_deref())?;
        }
        config
            .log_config(&self.cfg.log)
            .validate()
            .map_err(|m| (codes::INVALID_CONFIG, m))?;
        Ok((partitions, config))
    }

    pub(super) fn on_delete_topics(&mut self, reply: Reply, r: DeleteTopicsRequest) {
        let mut results = Vec::new();
        let mut changed = false;
        let mut doomed = Vec::new();
        for name in r.topic_names {
            let error_code = if self.catalogue.topics.remove(&name).is_some() {
                changed = true;
                for id in self.partition_ids.remove(&name).unwrap_or_default() {
                    self.data
                        .fail_partition(id, codes::UNKNOWN_TOPIC_OR_PARTITION);
                    doomed.push(id);
                }
                self.outputs
                    .push_back(super::Output::Event(super::Event::TopicDeleted {
                        topic: name.clone(),
                    }));
                codes::NONE
            } else {
                codes::UNKNOWN_TOPIC_OR_PARTITION
            };
            results.push(DeletableTopicResult {
                name,
                error_code,
                error_message: None,
            });
        }
        self.flush_failed_produces();
        let response = Response::DeleteTopics(DeleteTopicsResponse {
            responses: results,
            ..Default::default()
        });
        if changed {
            // The catalogue forgets the topic before its files go (storage jobs run in order):
            // a crash in between leaves unreferenced files, never a listed topic without data.
            self.commit_catalogue(vec![(reply, response)]);
            for id in doomed {
                self.outputs.push_back(super::Output::Storage {
                    target: Some(id),
                    job: super::StorageJob::Delete,
                });
            }
        } else {
            self.respond(reply, response);
        }
    }

    pub(super) fn on_create_partitions(&mut self, reply: Reply, r: CreatePartitionsRequest) {
        let mut results = Vec::new();
        let mut changed = false;
        for t in r.topics {
            let outcome = match self.catalogue.topics.get(&t.name) {
                None => Err((
                    codes::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("topic '{}' does not exist", t.name),
                )),
                Some(topic) if t.count <= topic.partitions as i32 => Err((
                    codes::INVALID_PARTITIONS,
                    format!(
                        "topic '{}' has {} partitions; the new count {} must be larger",
                        t.name, topic.partitions, t.count
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
                Some(topic) => Ok(topic.clone()),
            };
            let (error_code, error_message) = match outcome {
                Err((code, m)) => (code, Some(m)),
                Ok(mut topic) => {
                    if !r.validate_only {
                        let from = topic.partitions;
                        topic.partitions = t.count as u32;
                        self.open_partitions(&topic, from);
                        self.catalogue.topics.insert(topic.name.clone(), topic);
                        changed = true;
                    }
                    (codes::NONE, None)
                }
            };
            results.push(CreatePartitionsTopicResult {
                name: t.name,
                error_code,
                error_message,
            });
        }
        let response = Response::CreatePartitions(CreatePartitionsResponse {
            results,
            ..Default::default()
        });
        if changed {
            self.commit_catalogue(vec![(reply, response)]);
        } else {
            self.respond(reply, response);
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
            controller_id: self.cfg.node_id,
            brokers: vec![DescribeClusterBroker {
                broker_id: self.cfg.node_id,
                host: self.cfg.advertised_host.clone(),
                port: self.cfg.advertised_port,
                rack: None,
            }],
            ..Default::default()
        });
        self.respond(reply, response);
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
        response.producer_id = self.catalogue.next_producer_id;
        response.producer_epoch = 0;
        self.catalogue.next_producer_id += 1;
        self.commit_catalogue(vec![(reply, Response::InitProducerId(response))]);
    }
}
