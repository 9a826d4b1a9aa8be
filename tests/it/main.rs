//! Sluice's integration tests, in one binary so the workspace links once.
//!
//! - `scenarios`: every named scenario over a fixed seed set, plus banner snapshots that pin
//!   each scenario's config to its seed (old seeds must keep replaying).
//! - `determinism`: the same seed gives the same trace hash; different seeds do not.
//! - `fault_schedules`: proptest over fault timelines, and shrinking to a minimal timeline.
//! - `broken_variants`: each checker, alone, catches the bug it exists for.
//! - `regressions`: every seed that ever failed, with its postmortem.
//! - `hostile_live`: the hostile-frame suite against a live broker over TCP.
//! - `recovery_live`: a real broker cuts a torn or corrupt segment tail on restart, with a warning.
//! - `cli_live`: the `sluice` command's errors, `topic describe`, and the metrics endpoint.
//! - `broker_crash_model`: the broker on the faulty file system under random produces and
//!   power-loss crashes: every acks=all record survives, offsets stay dense, nothing twice.
//! - `more_clients`: aiokafka and kafkajs produce, read back or look up offsets.
//! - `tidy`: the architecture invariants of ARCHITECTURE.md.
//! - `broker_proc`: real `sluice broker` processes (start, SIGKILL, restart, SIGTERM) on loopback.
//! - `cluster_live`: three `sluice broker` processes as one cluster: replicated topic, SIGKILL
//!   of the controller, failover, and the killed broker catching up after its restart.
//! - `cluster_chaos`: librdkafka's idempotent acks=all producer against three brokers while
//!   partition leaders are SIGKILLed and restarted: every acknowledged record exactly once, in
//!   send order, replicas converge; failover time printed.
//! - `groups_live`: consumer groups on three brokers with real clients: confluent-kafka members
//!   take over a SIGKILLed member's partitions from its commits (rebalance time printed), a
//!   group survives its coordinator's SIGKILL and restart with no commit going backwards,
//!   kafka-python resumes from its commits, two groups each get every record, and
//!   `sluice group` follows kcat's balanced consumer.
//! - `python_clients`: confluent-kafka and kafka-python produce, read back and survive a SIGKILL.
//! - `netns_faults`: three brokers in their own network namespaces under iptables partitions,
//!   one-way cuts, packet loss, SIGSTOP and SIGKILL, with confluent-kafka producing and
//!   consuming in a group; the history is checked for lost, duplicated and reordered records
//!   (needs root, `ip` and `iptables`).
//! - `rdkafka_client`: librdkafka (the `rdkafka` crate) produces with every codec, reads back,
//!   checks watermarks and timestamp lookups, and survives a SIGKILL; missing and deleted topics.

mod broken_variants;
mod broker_crash_model;
mod broker_proc;
mod cli_live;
mod cluster_chaos;
mod cluster_live;
mod determinism;
mod fault_schedules;
mod gates;
mod groups_live;
mod hostile_live;
mod more_clients;
mod netns_faults;
mod python_clients;
mod rdkafka_client;
mod recovery_live;
mod regressions;
mod scenarios;
mod storage_model;
mod support;
mod tidy;
