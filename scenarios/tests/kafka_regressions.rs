//! Every Kafka-level seed that ever exposed a bug, kept as a named test with its postmortem.
//! Each was checked to fail with the fix reverted and to pass with it.

use sluice_scenarios::kafka::find;
use sluice_sim::kafka::KafkaSim;

fn passes(scenario: &str, seed: u64) {
    let r = KafkaSim::new(find(scenario).expect("exists").config(seed))
        .expect("valid")
        .run();
    assert!(
        r.verdict.is_pass(),
        "{scenario} seed {seed}: {}\n  replay: cargo run --release -p sluice-scenarios --bin sluice-sim -- run --scenario {scenario} --seed {seed}\n{}",
        r.verdict,
        r.trace_tail[r.trace_tail.len().saturating_sub(40)..].join("\n")
    );
}

/// Postmortem (core, `PartitionStore::execute`, Append): a follower appended a batch after a
/// no-op and then failed writing the `epochs` file (an injected IO error; a power cut between
/// the two writes does the same); it stopped, and its crash kept the unsynced batch but not the
/// no-op. Recovery numbered every entry after it one lower; the leader's next append matched
/// on term (same term, shifted index), so the replica stored one batch twice and diverged
/// below the high watermark ("replicas disagree"). Fix: the epochs file is written before the
/// batches that follow a no-op (a no-op past the recovered end is dropped, so that is safe).
#[test]
fn kafka_swarm_seed_1853_a_no_op_is_durable_before_the_batches_after_it() {
    passes("kafka-swarm", 1853);
}

/// Postmortem (core, `PartitionStore::execute`, Truncate): truncating at a batch removed from
/// the `epochs` file the no-ops recorded at that batch's offset, though they come before it.
/// Nothing changed in memory, but after the next restart the replica had lost those no-ops,
/// numbered its entries one lower and diverged from the leader below the high watermark.
/// Fix: no-ops at the cut offset stay unless the cut starts at a no-op (then only earlier
/// terms stay), and the truncation is synced before the epochs file forgets a no-op.
#[test]
fn kafka_kip966_seed_100_a_truncation_keeps_the_no_ops_before_its_cut() {
    passes("kafka-kip966", 100);
}

#[test]
fn kafka_swarm_seed_362_a_truncation_keeps_the_no_ops_before_its_cut() {
    passes("kafka-swarm", 362);
}

/// Postmortem (core, `Broker::on_read`): a fetch's storage read was cut at the high watermark
/// of when the read completed, not of when it was issued. A paused leader resumed, issued
/// reads, processed its backlog (stepped down, truncated its uncommitted tail, learned the new
/// leader's higher high watermark), and its reads, queued before the truncation, returned the
/// old tail, which passed the new high watermark: consumers read records that were then
/// replaced (inconsistent-offsets). Fix: cut at the high watermark captured with the read.
#[test]
fn kafka_swarm_seed_965_a_fetch_is_cut_at_the_high_watermark_of_its_read() {
    passes("kafka-swarm", 965);
}

#[test]
fn kafka_swarm_seeds_2698_and_2802_a_fetch_is_cut_at_the_high_watermark_of_its_read() {
    passes("kafka-swarm", 2698);
    passes("kafka-swarm", 2802);
}

/// Postmortem (simulator, group-commit device): a drain took every queued job and computed
/// its latency at the slow-disk factor of when it started; a slow-disk episode ending just
/// before the liveness phase left one broker's device busy for 13 s with a thousand jobs, past
/// the liveness bound. Fix: a drain takes at most 64 jobs (a device queue depth).
#[test]
fn kafka_swarm_seed_1628_a_slow_disk_episode_ends_when_it_ends() {
    passes("kafka-swarm", 1628);
}

/// Postmortem (simulator, the group's end of run): the final state was read after the group's
/// members had committed and the observer had read the committed offsets, seconds after the
/// cluster was last seen converged; leader balancing had meanwhile moved a partition's
/// leadership, and the final read found no serving leader ("partition 0 has no serving leader
/// at the end"). Fix: the run ends only once the cluster is converged again.
#[test]
fn kafka_group_member_paused_seeds_179_and_338_the_final_state_is_read_from_a_converged_cluster() {
    passes("kafka-group-member-paused", 179);
    passes("kafka-group-member-paused", 338);
    passes("kafka-group-static-restart", 378);
}

/// Postmortem (simulator, group members): the group settled for the first time in the
/// liveness phase, and the end-of-run flush found the members still fetching their committed
/// offsets; it counted them as flushed, the observer read before any commit, and the run
/// failed its gate ("a commit acknowledged: false"). Fix: a member that holds partitions
/// flushes once it has read them to the end, whether or not it was still fetching offsets.
#[test]
fn kafka_group_rebalance_storm_seed_105_members_holding_partitions_commit_before_the_end() {
    passes("kafka-group-rebalance-storm", 105);
}
