//! Everything a Kafka-level run depends on besides the seed's streams: the cluster (brokers,
//! metadata voters, broker knobs), the simulated clients, the fault models, the fault plan,
//! the phases and the gates. A Kafka scenario is a function from a seed to one of these; the
//! banner prints all of it.
//!
//! Deliberately not here: anything about how the simulator runs (that is `sim.rs`), and the
//! Raft-level knobs of `SimConfig` that the broker sets for itself (its partition groups take
//! their Raft configuration from the broker, not from the simulator).

use super::checkers::KAFKA_CHECKERS;
use crate::checkers::{CheckerKind, CheckerSet};
use crate::config::ClockParams;
use crate::disk::DiskParams;
use crate::faults::{FaultAction, TimedFault};
use crate::network::NetworkParams;
use sluice_core::broker::BrokerBug;
use std::fmt::Write as _;

/// A known-wrong behaviour planted for a checker test: in a broker (core's `BrokerBug`), in the
/// simulated clients, or in the simulated disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KafkaBug {
    Broker(BrokerBug),
    /// A consumer now and then moves its position one past where it should (it skips a record
    /// without recording a seek).
    ConsumerSkipsOffset,
    /// A consumer goes back to where its previous fetch started after a metadata refresh,
    /// without recording a seek.
    ConsumerRewindsWithoutSeek,
    /// An idempotent producer stamps a new batch with the sequence numbers of its previous one.
    ProducerReusesSequence,
    /// A producer takes NOT_LEADER_OR_FOLLOWER for a definite failure (it is not: the leader
    /// may have appended the batch before it lost leadership) and gives up on the batch.
    ProducerTreatsNotLeaderAsDefinite,
    /// The disk loses the last rename of every `hard_state` file in a crash (it lies about the
    /// directory sync): a restarted replica forgets its latest term and vote.
    DiskForgetsHardState,
}

impl KafkaBug {
    /// Every planted bug with its command-line name.
    pub const ALL: [(&'static str, KafkaBug); 15] = [
        (
            "read-above-hw",
            KafkaBug::Broker(BrokerBug::ReadAboveHighWatermark),
        ),
        (
            "ack-all-at-append",
            KafkaBug::Broker(BrokerBug::AckAllAtLeaderAppend),
        ),
        (
            "serve-before-term-commit",
            KafkaBug::Broker(BrokerBug::ServeBeforeTermCommit),
        ),
        (
            "forget-producer-state",
            KafkaBug::Broker(BrokerBug::ForgetReplicatedProducerState),
        ),
        ("consumer-skips-offset", KafkaBug::ConsumerSkipsOffset),
        ("consumer-rewinds", KafkaBug::ConsumerRewindsWithoutSeek),
        ("producer-reuses-sequence", KafkaBug::ProducerReusesSequence),
        (
            "not-leader-is-definite",
            KafkaBug::ProducerTreatsNotLeaderAsDefinite,
        ),
        ("disk-forgets-hard-state", KafkaBug::DiskForgetsHardState),
        (
            "group-commit-any-generation",
            KafkaBug::Broker(BrokerBug::GroupCommitFromAnyGeneration),
        ),
        (
            "group-join-not-written",
            KafkaBug::Broker(BrokerBug::GroupJoinNotWritten),
        ),
        (
            "group-commit-before-replicated",
            KafkaBug::Broker(BrokerBug::GroupCommitBeforeReplicated),
        ),
        (
            "group-no-session-expiry",
            KafkaBug::Broker(BrokerBug::GroupNoSessionExpiry),
        ),
        (
            "group-fetch-offset-off-by-one",
            KafkaBug::Broker(BrokerBug::GroupFetchOffsetOffByOne),
        ),
        (
            "group-rebalance-not-written",
            KafkaBug::Broker(BrokerBug::GroupRebalanceNotWritten),
        ),
    ];

    pub fn name(self) -> &'static str {
        KafkaBug::ALL
            .iter()
            .find(|(_, b)| *b == self)
            .map(|(n, _)| *n)
            .expect("every bug is listed")
    }

    pub fn parse(name: &str) -> Option<KafkaBug> {
        KafkaBug::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
    }
}

/// The broker's own knobs (each becomes a `BrokerConfig` field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerKnobs {
    pub election_timeout_ms: u64,
    pub raft_heartbeat_ms: u64,
    /// Broker -> controller heartbeats.
    pub heartbeat_ms: u64,
    /// A broker silent this long is fenced by the controller.
    pub session_timeout_ms: u64,
    pub leader_balance_ms: u64,
    pub segment_bytes: u64,
}

impl Default for BrokerKnobs {
    fn default() -> Self {
        BrokerKnobs {
            election_timeout_ms: 150,
            raft_heartbeat_ms: 50,
            heartbeat_ms: 100,
            session_timeout_ms: 1_000,
            leader_balance_ms: 2_000,
            segment_bytes: 32 * 1024,
        }
    }
}

/// One simulated producer: its acks and whether it is idempotent (idempotence implies acks=all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerKind {
    pub acks: i16,
    pub idempotent: bool,
}

impl ProducerKind {
    pub fn label(self) -> String {
        if self.idempotent {
            "idempotent".into()
        } else {
            format!(
                "acks={}",
                if self.acks == -1 {
                    "all".to_string()
                } else {
                    self.acks.to_string()
                }
            )
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaWorkload {
    pub partitions: u32,
    pub replication_factor: u16,
    pub producers: Vec<ProducerKind>,
    pub consumers: u32,
    /// Pause between a producer's new batches.
    pub think_us: (u64, u64),
    /// Records per batch.
    pub batch_records: (u64, u64),
    pub payload_bytes: (u64, u64),
    /// Requests a producer keeps in flight per partition (Kafka's
    /// max.in.flight.requests.per.connection, at most 5 with idempotence).
    pub max_in_flight: u32,
    /// A client request unanswered this long counts as lost: the client closes the connection.
    pub request_timeout_ms: u64,
    /// Attempts of a non-idempotent send before it gives up (idempotent ones retry until done).
    pub max_attempts: u32,
    /// Backoff before a retry and between metadata refreshes.
    pub retry_backoff_ms: u64,
    /// Consumers' long-poll wait.
    pub fetch_max_wait_ms: u64,
    /// Probability that a non-idempotent batch is larger than the topic's max.message.bytes
    /// (a definite failure: the broker refuses it before appending).
    pub oversize_ppm: u32,
    /// The topic's max.message.bytes.
    pub max_message_bytes: u64,
    /// New acknowledgements each producer needs in the liveness phase before it stops.
    pub liveness_acks: u64,
}

impl Default for KafkaWorkload {
    fn default() -> Self {
        KafkaWorkload {
            partitions: 3,
            replication_factor: 3,
            producers: vec![
                ProducerKind {
                    acks: -1,
                    idempotent: true,
                },
                ProducerKind {
                    acks: -1,
                    idempotent: false,
                },
                ProducerKind {
                    acks: 1,
                    idempotent: false,
                },
            ],
            consumers: 2,
            think_us: (1_000, 20_000),
            batch_records: (1, 3),
            payload_bytes: (0, 64),
            max_in_flight: 5,
            request_timeout_ms: 1_000,
            max_attempts: 5,
            retry_backoff_ms: 50,
            fetch_max_wait_ms: 100,
            oversize_ppm: 5_000,
            max_message_bytes: 4_096,
            liveness_acks: 3,
        }
    }
}

/// What a scheduled action does to one member slot of the group workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberAction {
    /// Start the member (a new incarnation if it ran before): it finds the coordinator and
    /// joins. Nothing if it runs.
    Join,
    /// Commit its positions, send LeaveGroup and stop (a clean `close()`).
    Leave,
    /// Vanish without a word: the process dies and its connections close.
    Crash,
    /// Freeze for `ms` (a long GC pause, SIGSTOP): nothing it sent or was sent is handled,
    /// and none of its timers fire, until it resumes.
    Pause { ms: u64 },
    /// Crash, then start again `down_ms` later (with the same group.instance.id if static).
    Restart { down_ms: u64 },
    /// Move every owned partition's position back and commit it: a deliberate rewind, which
    /// the history records as a reset.
    Reset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedMemberAction {
    pub at_ms: u64,
    pub member: u32,
    pub action: MemberAction,
}

/// The rebalance step that fires a group trigger, as the coordinator reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebalanceStep {
    /// The group entered PreparingRebalance (waiting for members to rejoin).
    Preparing,
    /// The group entered CompletingRebalance (the join phase is over, the leader's assignment
    /// is awaited).
    Completing,
    /// A member learned of a rebalance and began committing its positions before it revokes
    /// its partitions (seen at the member: the coordinator cannot tell).
    Revoking,
}

/// A fault fired by the group's progress rather than by the clock: the first time, at or
/// after `after_ms`, that the group reaches `step`, `action` is
/// applied `delay_us` later, and `then` (a restart, a heal) its delay in ms after that, in
/// the safety phase only. Each trigger fires at most once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupTrigger {
    pub after_ms: u64,
    pub step: RebalanceStep,
    pub delay_us: u64,
    pub action: FaultAction,
    pub then: Option<(u64, FaultAction)>,
}

/// One consumer group of simulated members subscribed to the topic (see `group_member.rs`),
/// with the broker knobs that only matter to groups, the members' timeouts, and a timeline of
/// member actions and rebalance-triggered faults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupWorkload {
    pub group: String,
    /// Member slots; each is one simulated client that runs incarnation after incarnation.
    pub members: u32,
    /// Slots `0..static_members` are static members (group.instance.id `static-<slot>`).
    pub static_members: u32,
    pub session_timeout_ms: u64,
    pub heartbeat_ms: u64,
    pub rebalance_timeout_ms: u64,
    /// A member commits its positions this often (auto.commit.interval.ms).
    pub commit_interval_ms: u64,
    /// The broker's offsets.topic.num.partitions.
    pub offsets_partitions: u32,
    /// The broker's group.initial.rebalance.delay.ms.
    pub initial_rebalance_delay_ms: u64,
    pub actions: Vec<TimedMemberAction>,
    pub triggers: Vec<GroupTrigger>,
}

impl GroupWorkload {
    /// Kafka-python's timeouts (session 10 s, heartbeat 3 s), a rebalance timeout of 20 s, a
    /// commit every second, 4 offsets partitions; no members and no actions yet.
    pub fn new(group: &str) -> GroupWorkload {
        GroupWorkload {
            group: group.to_string(),
            members: 0,
            static_members: 0,
            session_timeout_ms: 10_000,
            heartbeat_ms: 3_000,
            rebalance_timeout_ms: 20_000,
            commit_interval_ms: 1_000,
            offsets_partitions: 4,
            initial_rebalance_delay_ms: 3_000,
            actions: Vec::new(),
            triggers: Vec::new(),
        }
    }

    /// The group.instance.id of a member slot, if it is static.
    pub fn instance_id(&self, slot: u32) -> Option<String> {
        (slot < self.static_members).then(|| format!("static-{slot}"))
    }

    fn validate(&self) -> Result<(), String> {
        if self.group.is_empty() || self.members == 0 || self.static_members > self.members {
            return Err("a group needs an id and members (static ones among them)".into());
        }
        if self.heartbeat_ms == 0 || self.heartbeat_ms >= self.session_timeout_ms {
            return Err("the heartbeat interval must be shorter than the session timeout".into());
        }
        if !(6_000..=1_800_000).contains(&self.session_timeout_ms) {
            return Err("the session timeout must be within the broker's 6 s..30 min".into());
        }
        if self.rebalance_timeout_ms < self.session_timeout_ms || self.offsets_partitions == 0 {
            return Err(
                "a rebalance timeout below the session timeout, or no offsets partitions".into(),
            );
        }
        if self.actions.iter().any(|a| a.member >= self.members) {
            return Err("a member action names a slot that does not exist".into());
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaConfig {
    pub seed: u64,
    pub brokers: u32,
    /// Metadata voters: brokers `1..=voters`; the others follow the metadata log.
    pub voters: u32,
    pub broker: BrokerKnobs,
    pub network: NetworkParams,
    pub disk: DiskParams,
    pub clock: ClockParams,
    pub workload: KafkaWorkload,
    pub faults: Vec<TimedFault>,
    pub safety_ms: u64,
    /// The liveness phase must converge within this much simulated time.
    pub liveness_ms: u64,
    /// Gate: a run with fewer acknowledged acks=all sends than this fails.
    pub min_acked: u64,
    /// Gate: a run whose consumers read fewer records than this fails.
    pub min_polled: u64,
    pub max_events: u64,
    pub checkers: CheckerSet,
    pub bug: Option<KafkaBug>,
    /// A consumer group of simulated members, if the run has one.
    pub group: Option<GroupWorkload>,
}

impl KafkaConfig {
    pub fn new(seed: u64, brokers: u32) -> KafkaConfig {
        KafkaConfig {
            seed,
            brokers,
            voters: brokers.min(5),
            broker: BrokerKnobs::default(),
            network: NetworkParams::default(),
            disk: DiskParams {
                segment_bytes: 32 * 1024,
                ..DiskParams::default()
            },
            clock: ClockParams::default(),
            workload: KafkaWorkload::default(),
            faults: Vec::new(),
            safety_ms: 2_000,
            liveness_ms: 10_000,
            min_acked: 1,
            min_polled: 1,
            max_events: 4_000_000,
            checkers: CheckerSet(KAFKA_CHECKERS.to_vec()),
            bug: None,
            group: None,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(1..=9).contains(&self.brokers) {
            return Err(format!("brokers must be 1..=9, got {}", self.brokers));
        }
        if self.voters == 0 || self.voters > self.brokers {
            return Err(format!(
                "voters must be 1..={}, got {}",
                self.brokers, self.voters
            ));
        }
        let w = &self.workload;
        if u32::from(w.replication_factor) > self.brokers || w.replication_factor == 0 {
            return Err(format!(
                "replication factor {} does not fit {} brokers",
                w.replication_factor, self.brokers
            ));
        }
        if w.partitions == 0 || w.producers.is_empty() {
            return Err("the workload needs partitions and producers".into());
        }
        if !(1..=5).contains(&w.max_in_flight) {
            return Err("max_in_flight must be 1..=5".into());
        }
        if w.request_timeout_ms <= w.fetch_max_wait_ms {
            return Err("request_timeout_ms must exceed fetch_max_wait_ms".into());
        }
        if self.broker.raft_heartbeat_ms >= self.broker.election_timeout_ms {
            return Err("raft heartbeat must be shorter than the election timeout".into());
        }
        if self.checkers.0.iter().any(|c| !KAFKA_CHECKERS.contains(c)) {
            return Err("only Kafka-level checkers apply to a Kafka run".into());
        }
        if let Some(g) = &self.group {
            g.validate()?;
        }
        Ok(())
    }

    pub fn has_checker(&self, c: CheckerKind) -> bool {
        self.checkers.contains(c)
    }

    /// Every parameter of the run, one per line, for the banner.
    pub fn banner(&self) -> String {
        let mut s = String::new();
        let b = &self.broker;
        let n = &self.network;
        let d = &self.disk;
        let w = &self.workload;
        let _ = writeln!(
            s,
            "seed={} brokers={} voters={} safety_ms={} liveness_ms={} min_acked={} min_polled={} bug={}",
            self.seed,
            self.brokers,
            self.voters,
            self.safety_ms,
            self.liveness_ms,
            self.min_acked,
            self.min_polled,
            self.bug.map_or("none", KafkaBug::name)
        );
        let _ = writeln!(
            s,
            "broker: election_timeout_ms={} raft_heartbeat_ms={} heartbeat_ms={} session_timeout_ms={} leader_balance_ms={} segment_bytes={}",
            b.election_timeout_ms, b.raft_heartbeat_ms, b.heartbeat_ms, b.session_timeout_ms, b.leader_balance_ms, b.segment_bytes
        );
        let _ = writeln!(
            s,
            "network: delay_us={}..{} tail_ppm={} tail_max_us={} loss_ppm={} dup_ppm={} client_drop_ppm={}",
            n.delay_min_us, n.delay_max_us, n.tail_ppm, n.tail_max_us, n.loss_ppm, n.dup_ppm, n.client_drop_ppm
        );
        let _ = writeln!(
            s,
            "disk: write_us={}..{} sync_us={}..{} torn_writes={} garbage_ppm={} io_error_ppm={}",
            d.write_us_min,
            d.write_us_max,
            d.sync_us_min,
            d.sync_us_max,
            d.torn_writes,
            d.garbage_ppm,
            d.io_error_ppm
        );
        let _ = writeln!(
            s,
            "clock: drift_ppm_max={} wall_skew_ms_max={}",
            self.clock.drift_ppm_max, self.clock.wall_skew_ms_max
        );
        let producers: Vec<String> = w.producers.iter().map(|p| p.label()).collect();
        let _ = writeln!(
            s,
            "topic: partitions={} replication_factor={} max_message_bytes={}",
            w.partitions, w.replication_factor, w.max_message_bytes
        );
        let _ = writeln!(
            s,
            "clients: producers=[{}] consumers={} think_us={}..{} batch_records={}..{} payload_bytes={}..{} max_in_flight={} request_timeout_ms={} max_attempts={} retry_backoff_ms={} fetch_max_wait_ms={} oversize_ppm={} liveness_acks={}",
            producers.join(","),
            w.consumers,
            w.think_us.0,
            w.think_us.1,
            w.batch_records.0,
            w.batch_records.1,
            w.payload_bytes.0,
            w.payload_bytes.1,
            w.max_in_flight,
            w.request_timeout_ms,
            w.max_attempts,
            w.retry_backoff_ms,
            w.fetch_max_wait_ms,
            w.oversize_ppm,
            w.liveness_acks
        );
        let names: Vec<&str> = self.checkers.0.iter().map(|c| c.name()).collect();
        let _ = writeln!(s, "checkers: {}", names.join(","));
        let _ = writeln!(s, "faults: {} actions", self.faults.len());
        for f in self.faults.iter().take(40) {
            let _ = writeln!(s, "  {f}");
        }
        if self.faults.len() > 40 {
            let _ = writeln!(s, "  ... and {} more", self.faults.len() - 40);
        }
        if let Some(g) = &self.group {
            group_banner(&mut s, g);
        }
        s
    }
}

/// The group's lines of the banner (only runs with a group print them).
fn group_banner(s: &mut String, g: &GroupWorkload) {
    let _ = writeln!(
        s,
        "group: id={} members={} static={} session_timeout_ms={} heartbeat_ms={} rebalance_timeout_ms={} commit_interval_ms={} offsets_partitions={} initial_rebalance_delay_ms={}",
        g.group,
        g.members,
        g.static_members,
        g.session_timeout_ms,
        g.heartbeat_ms,
        g.rebalance_timeout_ms,
        g.commit_interval_ms,
        g.offsets_partitions,
        g.initial_rebalance_delay_ms
    );
    let _ = writeln!(s, "member actions: {}", g.actions.len());
    for a in g.actions.iter().take(40) {
        let _ = writeln!(s, "  @{}ms member {} {:?}", a.at_ms, a.member, a.action);
    }
    if g.actions.len() > 40 {
        let _ = writeln!(s, "  ... and {} more", g.actions.len() - 40);
    }
    let _ = writeln!(s, "group triggers: {}", g.triggers.len());
    for t in g.triggers.iter().take(40) {
        let _ = writeln!(
            s,
            "  after {}ms, on {:?}, +{}us: {:?}{}",
            t.after_ms,
            t.step,
            t.delay_us,
            t.action,
            t.then
                .as_ref()
                .map_or(String::new(), |(ms, a)| format!(", +{ms}ms: {a:?}"))
        );
    }
    if g.triggers.len() > 40 {
        let _ = writeln!(s, "  ... and {} more", g.triggers.len() - 40);
    }
}
