//! Unit tests of the storage engine over an in-memory disk. Crash behaviour (lost unsynced
//! writes, torn writes, bit flips) is tested against the simulator's faulty disk.

use super::mem::MemDisk;
use super::*;
use crate::protocol::record::test_batch;

const DIR: &str = "t-0";

fn cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn open(disk: &mut MemDisk, cfg: LogConfig) -> (SegmentLog, RecoveryReport) {
    SegmentLog::open(disk, DIR, cfg, 0, 1_000).expect("opens")
}

/// Appends `n` batches of 3 records each with timestamps 1000, 2000, ... and syncs.
fn fill(log: &mut SegmentLog, disk: &mut MemDisk, n: usize, payload: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..n {
        let b = test_batch(log.next_offset(), 3, 1_000 * (i as i64 + 1), payload);
        log.append(disk, &b, 1_000).expect("appends");
        out.push(b);
    }
    log.sync(disk).expect("syncs");
    out
}

#[test]
fn appended_batches_read_back_byte_for_byte() {
    let mut disk = MemDisk::default();
    let (mut log, report) = open(&mut disk, cfg());
    assert_eq!((report.log_start, report.next_offset), (0, 0));
    let batches = fill(&mut log, &mut disk, 5, 40);
    assert_eq!(log.next_offset(), 15);
    let all = log.read(&mut disk, 0, usize::MAX).expect("reads");
    assert_eq!(all.bytes, batches.concat());
    assert_eq!(all.next_offset, 15);
    // From the middle of the third batch: that batch is returned whole.
    let mid = log.read(&mut disk, 7, usize::MAX).expect("reads");
    assert_eq!(mid.bytes, batches[2..].concat());
    // max_bytes smaller than a batch still returns one batch.
    let one = log.read(&mut disk, 3, 1).expect("reads");
    assert_eq!(one.bytes, batches[1]);
    assert_eq!(one.next_offset, 6);
    assert!(log.read(&mut disk, 15, 100).expect("end").bytes.is_empty());
    assert!(matches!(
        log.read(&mut disk, 16, 100),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn appends_must_continue_the_log_and_be_valid() {
    let mut disk = MemDisk::default();
    let (mut log, _) = open(&mut disk, cfg());
    fill(&mut log, &mut disk, 1, 10);
    let gap = test_batch(7, 1, 5, 10);
    assert_eq!(
        log.append(&mut disk, &gap, 1_000),
        Err(LogError::NonContiguous {
            expected: 3,
            got: 7
        })
    );
    let mut bad = test_batch(3, 1, 5, 10);
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    assert!(matches!(
        log.append(&mut disk, &bad, 1_000),
        Err(LogError::Corrupt(_))
    ));
    assert_eq!(log.next_offset(), 3, "a rejected append changes nothing");
}

#[test]
fn segments_roll_by_size_and_reads_find_old_segments() {
    let mut disk = MemDisk::default();
    let (mut log, _) = open(&mut disk, cfg());
    let batches = fill(&mut log, &mut disk, 40, 200);
    assert!(log.segment_count() > 3, "{} segments", log.segment_count());
    for (i, b) in batches.iter().enumerate() {
        let r = log.read(&mut disk, i as i64 * 3 + 1, 1).expect("reads");
        assert_eq!(&r.bytes, b, "batch {i}");
    }
}

#[test]
fn segments_roll_by_age() {
    let mut disk = MemDisk::default();
    let (mut log, _) = open(
        &mut disk,
        LogConfig {
            segment_ms: 10_000,
            ..cfg()
        },
    );
    log.append(&mut disk, &test_batch(0, 1, 1, 10), 1_000)
        .expect("appends");
    let info = log
        .append(&mut disk, &test_batch(1, 1, 2, 10), 5_000)
        .expect("appends");
    assert!(!info.rolled);
    let info = log
        .append(&mut disk, &test_batch(2, 1, 3, 10), 11_000)
        .expect("appends");
    assert!(info.rolled);
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn retention_deletes_closed_segments_by_time_and_by_size() {
    let mut disk = MemDisk::default();
    let (mut log, _) = open(
        &mut disk,
        LogConfig {
            retention_ms: Some(10_000),
            ..cfg()
        },
    );
    fill(&mut log, &mut disk, 40, 200);
    let segments = log.segment_count();
    // Timestamps run 1000..40000; at now = 25_000 everything older than 15_000 goes.
    let start = log.apply_retention(&mut disk, 25_000).expect("retention");
    assert!(start > 0 && log.segment_count() < segments);
    assert!(
        log.read(&mut disk, 0, 1).is_err(),
        "deleted offsets are out of range"
    );
    // Far in the future everything but the active segment goes.
    log.apply_retention(&mut disk, i64::MAX / 2)
        .expect("retention");
    assert_eq!(log.segment_count(), 1);

    let mut disk = MemDisk::default();
    let (mut log, _) = open(
        &mut disk,
        LogConfig {
            retention_ms: None,
            retention_bytes: Some(8_000),
            ..cfg()
        },
    );
    fill(&mut log, &mut disk, 40, 200);
    log.apply_retention(&mut disk, 0).expect("retention");
    assert!(
        log.size_bytes() >= 8_000 - 4_096 && log.size_bytes() <= 8_000 + 4_096,
        "{}",
        log.size_bytes()
    );
}

#[test]
fn recovery_cuts_a_torn_tail_and_says_what_it_dropped() {
    let mut disk = MemDisk::default();
    let (mut log, _) = open(&mut disk, cfg());
    fill(&mut log, &mut disk, 3, 50);
    let path = format!("{DIR}/{:020}.log", 0);
    let len = disk.files[&path].len();
    disk.files
        .get_mut(&path)
        .expect("exists")
        .truncate(len - 10);
    let (log, report) = open(&mut disk, cfg());
    assert_eq!(log.next_offset(), 6);
    assert_eq!(report.truncated.len(), 1);
    assert!(report.truncated[0].3.contains("torn"), "{report}");
    assert_eq!(
        report.truncated[0].2,
        (len - 10 - report.truncated[0].1 as usize) as u64
    );
}

#[test]
fn recovery_cuts_at_the_first_corrupt_batch() {
    let mut disk = MemDisk::default();
    let (mut log, _) = open(&mut disk, cfg());
    let batches = fill(&mut log, &mut disk, 4, 50);
    let path = format!("{DIR}/{:020}.log", 0);
    let flip = batches[0].len() + 4 + 70; // inside the second batch's records (after a trailer)
    disk.files.get_mut(&path).expect("exists")[flip] ^= 0x01;
    let (log, report) = open(&mut disk, cfg());
    assert_eq!(log.next_offset(), 3, "{report}");
    assert!(report.truncated[0].3.contains("corrupt"), "{report}");
    let r = log.read(&mut disk, 0, usize::MAX).expect("reads");
    assert_eq!(r.bytes, batches[0]);
}

#[test]
fn recovery_catches_a_torn_leader_epoch_outside_the_batch_crc() {
    let mut disk = MemDisk::default();
    let (mut log, _) = open(&mut disk, cfg());
    let batches = fill(&mut log, &mut disk, 3, 50);
    let path = format!("{DIR}/{:020}.log", 0);
    let epoch_byte = batches[0].len() + 4 + 14; // the second batch's partition leader epoch
    disk.files.get_mut(&path).expect("exists")[epoch_byte] ^= 0x04;
    let (log, report) = open(&mut disk, cfg());
    assert_eq!(log.next_offset(), 3, "{report}");
    assert!(report.truncated[0].3.contains("trailer"), "{report}");
}

#[test]
fn closed_segment_indexes_are_persisted_and_reused() {
    let mut disk = MemDisk::default();
    let (mut log, _) = open(&mut disk, cfg());
    let batches = fill(&mut log, &mut disk, 40, 200);
    let segments = log.segment_count();
    let (log, report) = open(&mut disk, cfg());
    assert_eq!(report.segments, segments);
    assert_eq!(
        report.rebuilt_indexes, 1,
        "only the active segment is scanned: {report}"
    );
    assert_eq!(
        log.read(&mut disk, 61, 1).expect("reads").bytes,
        batches[20]
    );
}

#[test]
fn a_missing_middle_segment_ends_the_log_there() {
    let mut disk = MemDisk::default();
    let (mut log, _) = open(&mut disk, cfg());
    fill(&mut log, &mut disk, 40, 200);
    let second = disk
        .files
        .keys()
        .filter(|k| k.ends_with(".log"))
        .nth(1)
        .expect("two segments")
        .clone();
    disk.files.remove(&second);
    let (log, report) = open(&mut disk, cfg());
    assert_eq!(log.segment_count(), 1);
    assert!(!report.removed_segments.is_empty(), "{report}");
}

#[test]
fn truncate_removes_later_batches_and_segments() {
    let mut disk = MemDisk::default();
    let (mut log, _) = open(&mut disk, cfg());
    let batches = fill(&mut log, &mut disk, 40, 200);
    assert_eq!(log.truncate(&mut disk, 30, 1_000).expect("truncates"), 30);
    assert_eq!(log.next_offset(), 30);
    assert_eq!(log.read(&mut disk, 27, 1).expect("reads").bytes, batches[9]);
    // Inside a batch: the whole batch goes.
    assert_eq!(log.truncate(&mut disk, 25, 1_000).expect("truncates"), 24);
    log.append(&mut disk, &test_batch(24, 2, 7, 10), 1_000)
        .expect("appends after truncation");
    log.sync(&mut disk).expect("syncs");
    let (reopened, _) = open(&mut disk, cfg());
    assert_eq!(reopened.next_offset(), 26);
}

#[test]
fn offset_for_timestamp_finds_the_first_batch_at_or_after() {
    let mut disk = MemDisk::default();
    let (mut log, _) = open(&mut disk, cfg());
    fill(&mut log, &mut disk, 40, 200);
    assert_eq!(
        log.offset_for_timestamp(&mut disk, 0).expect("ok"),
        Some((0, 1_000))
    );
    assert_eq!(
        log.offset_for_timestamp(&mut disk, 20_500).expect("ok"),
        Some((60, 21_000))
    );
    assert_eq!(
        log.offset_for_timestamp(&mut disk, 40_000).expect("ok"),
        Some((117, 40_000))
    );
    assert_eq!(
        log.offset_for_timestamp(&mut disk, 40_001).expect("ok"),
        None
    );
}

#[test]
fn state_files_round_trip_and_corruption_is_detected() {
    let mut disk = MemDisk::default();
    assert_eq!(read_state_file(&mut disk, "raft/state"), Ok(None));
    write_state_file(&mut disk, "raft/state", b"term=3").expect("writes");
    write_state_file(&mut disk, "raft/state", b"term=4").expect("replaces");
    assert_eq!(
        read_state_file(&mut disk, "raft/state"),
        Ok(Some(b"term=4".to_vec()))
    );
    assert!(!disk.files.contains_key("raft/state.tmp"));
    disk.files.get_mut("raft/state").expect("exists")[9] ^= 0xff;
    assert!(matches!(
        read_state_file(&mut disk, "raft/state"),
        Err(StateFileError::Corrupt { .. })
    ));
    disk.files
        .get_mut("raft/state")
        .expect("exists")
        .truncate(5);
    assert!(matches!(
        read_state_file(&mut disk, "raft/state"),
        Err(StateFileError::Corrupt { .. })
    ));
}

#[test]
fn invalid_log_configs_are_rejected_with_a_reason() {
    assert!(LogConfig {
        segment_bytes: 10,
        ..LogConfig::default()
    }
    .validate()
    .unwrap_err()
    .contains("segment.bytes"));
    assert!(LogConfig {
        retention_ms: Some(0),
        ..LogConfig::default()
    }
    .validate()
    .is_err());
    assert!(LogConfig::default().validate().is_ok());
}

// ----- Raft logs on the engine: commit points, catch-up reads, retention -----

use crate::ids::{LogIndex, NodeId, Term};
use crate::protocol::records::set_partition_leader_epoch;
use crate::raft::{Entry, LogPosition, Recovered, StorageCompletion, StorageRequest};
use bytes::Bytes;

const PART: &str = "p-0";

fn open_partition(
    disk: &mut MemDisk,
    cfg: LogConfig,
    single_voter: bool,
) -> (PartitionStore, PartitionRecovery) {
    PartitionStore::open(disk, PART, cfg, 0, single_voter, &mut |_| {}).expect("opens")
}

/// Builds the entries a partition leader proposes: batches stamped with their base offset and
/// with the term as leader epoch, as the broker does, so the store keeps them byte for byte.
struct Proposer {
    next_offset: i64,
}

impl Proposer {
    fn batch(&mut self, term: u64, records: usize) -> Entry {
        let mut b = test_batch(self.next_offset, records, 1_000, 20);
        set_partition_leader_epoch(&mut b, term as i32).expect("a batch");
        self.next_offset += records as i64;
        Entry::normal(Term(term), Bytes::from(b))
    }
}

/// noop(1), 3 records, 2 records, noop(2), 1 record, 4 records: indexes 1..=6, offsets 0..10.
fn six_entries() -> Vec<Entry> {
    let mut p = Proposer { next_offset: 0 };
    vec![
        Entry::noop(Term(1)),
        p.batch(1, 3),
        p.batch(1, 2),
        Entry::noop(Term(2)),
        p.batch(2, 1),
        p.batch(2, 4),
    ]
}

/// Appends `entries` from index `first` one request each (so segments can roll), then syncs.
fn raft_append<S>(execute: &mut S, first: u64, entries: Vec<Entry>)
where
    S: FnMut(StorageRequest) -> StorageCompletion,
{
    for (k, entry) in entries.into_iter().enumerate() {
        execute(StorageRequest::Append {
            first: LogIndex(first + k as u64),
            entries: vec![entry],
        });
    }
    execute(StorageRequest::Sync { up_to: LogIndex(0) });
}

fn read_request(from: u64, max_entries: usize, max_bytes: usize) -> StorageRequest {
    StorageRequest::ReadEntries {
        peer: NodeId(2),
        from: LogIndex(from),
        max_entries,
        max_bytes,
    }
}

/// `(prev, entries)` of an `EntriesRead` completion for peer n2 from `from`.
fn entries_read(c: StorageCompletion, from: u64) -> (Option<LogPosition>, Vec<Entry>) {
    match c {
        StorageCompletion::EntriesRead {
            peer,
            from: f,
            prev,
            entries,
        } => {
            assert_eq!((peer, f), (NodeId(2), LogIndex(from)));
            (prev, entries)
        }
        other => panic!("not an EntriesRead: {other:?}"),
    }
}

fn pos(index: u64, term: u64) -> LogPosition {
    LogPosition {
        index: LogIndex(index),
        term: Term(term),
    }
}

#[test]
fn a_crash_leaves_the_entries_after_the_commit_point_as_an_uncommitted_tail() {
    let mut disk = MemDisk::default();
    let (mut s, rec) = open_partition(&mut disk, cfg(), false);
    assert_eq!(rec.raft, Recovered::default());
    let log = six_entries();
    raft_append(
        &mut |r| s.execute(&mut disk, r, 0).expect("executes"),
        1,
        log.clone(),
    );
    s.save_commit(&mut disk, LogIndex(3)).expect("saves");
    s.save_commit(&mut disk, LogIndex(2))
        .expect("a lower point is ignored");
    drop(s); // crash: everything was synced, nothing is lost

    let (_, rec) = open_partition(&mut disk, cfg(), false);
    assert_eq!(rec.raft.base, pos(3, 1));
    assert_eq!(rec.raft.entries, log[3..].to_vec());
    assert_eq!(rec.next_offset, 10);
    // A single voter counts every entry on disk as committed.
    let (_, single) = open_partition(&mut disk, cfg(), true);
    assert_eq!(single.raft.base, pos(6, 2));
    assert!(single.raft.entries.is_empty());
}

#[test]
fn the_recovered_tail_can_be_truncated_and_replaced_but_not_the_committed_entries() {
    let mut disk = MemDisk::default();
    let (mut s, _) = open_partition(&mut disk, cfg(), false);
    let log = six_entries();
    raft_append(
        &mut |r| s.execute(&mut disk, r, 0).expect("executes"),
        1,
        log.clone(),
    );
    s.save_commit(&mut disk, LogIndex(3)).expect("saves");
    drop(s);

    let (mut s, rec) = open_partition(&mut disk, cfg(), false);
    assert_eq!(rec.raft.entries.len(), 3);
    assert!(matches!(
        s.execute(&mut disk, StorageRequest::Truncate { from: LogIndex(3) }, 0),
        Err(StoreError::Invalid(_))
    ));
    s.execute(&mut disk, StorageRequest::Truncate { from: LogIndex(4) }, 0)
        .expect("truncates the tail");
    // A new leader's entries follow entry 3 (offsets 3..5).
    let mut p = Proposer { next_offset: 5 };
    let new_tail = vec![Entry::noop(Term(3)), p.batch(3, 2)];
    raft_append(
        &mut |r| s.execute(&mut disk, r, 0).expect("executes"),
        4,
        new_tail.clone(),
    );
    drop(s);

    let (_, rec) = open_partition(&mut disk, cfg(), false);
    assert_eq!(rec.raft.base, pos(3, 1));
    assert_eq!(rec.raft.entries, new_tail);
    assert_eq!(rec.next_offset, 7);
    assert_eq!(rec.epochs, vec![(1, 0), (3, 5)]);
}

#[test]
fn read_entries_returns_the_entries_as_appended_with_their_limits() {
    let mut disk = MemDisk::default();
    // Small segments: reads cross segment boundaries.
    let small = LogConfig {
        segment_bytes: 300,
        ..cfg()
    };
    let (mut s, _) = open_partition(&mut disk, small, false);
    let log = six_entries();
    raft_append(
        &mut |r| s.execute(&mut disk, r, 0).expect("executes"),
        1,
        log.clone(),
    );
    assert!(s.log().segment_count() > 1);
    let mut read = |from: u64, max_entries: usize, max_bytes: usize| {
        let c = s
            .execute(&mut disk, read_request(from, max_entries, max_bytes), 0)
            .expect("reads");
        entries_read(c, from)
    };
    let terms = [0, 1, 1, 1, 2, 2, 2];
    for from in 1..=6u64 {
        let prev = pos(from - 1, terms[from as usize - 1]);
        assert_eq!(
            read(from, usize::MAX, usize::MAX),
            (Some(prev), log[from as usize - 1..].to_vec()),
            "from i{from}"
        );
    }
    assert_eq!(read(7, 10, 10), (Some(pos(6, 2)), Vec::new()), "at the end");
    assert_eq!(read(8, 10, 10), (None, Vec::new()), "past the end");
    assert_eq!(read(1, 3, usize::MAX).1, log[..3].to_vec());
    assert_eq!(read(2, 10, 1).1, log[1..2].to_vec(), "at least one entry");
    let two = log[1].data.len() + log[2].data.len();
    assert_eq!(
        read(2, 10, two).1,
        log[1..4].to_vec(),
        "no-ops carry no bytes"
    );
}

#[test]
fn retention_keeps_the_entries_above_the_commit_point_and_then_reads_say_so() {
    let mut disk = MemDisk::default();
    // Four batches a segment (offsets 0..8, 8..16, 16..20); retention wants the first two.
    let cfg = LogConfig {
        segment_bytes: 500,
        retention_bytes: Some(300),
        ..cfg()
    };
    let (mut s, _) = open_partition(&mut disk, cfg.clone(), false);
    let mut p = Proposer { next_offset: 0 };
    let mut log = vec![Entry::noop(Term(1))];
    log.extend((0..10).map(|_| p.batch(1, 2)));
    raft_append(
        &mut |r| s.execute(&mut disk, r, 0).expect("executes"),
        1,
        log.clone(),
    );
    // Nothing is committed yet: retention may remove nothing.
    assert_eq!(s.housekeeping(&mut disk, 0, None).expect("housekeeping"), 0);
    assert_eq!(s.log().segment_count(), 3);
    s.save_commit(&mut disk, LogIndex(3)).expect("saves");
    // Entry 4 (offsets 4 and 5) must stay: the first segment stays on disk, but the log
    // starts at offset 4 as far as anyone is told.
    let start = s.housekeeping(&mut disk, 0, None).expect("housekeeping");
    assert_eq!(start, 4);
    assert_eq!(s.log().segment_count(), 3);
    let read = |s: &mut PartitionStore, disk: &mut MemDisk, from: u64| {
        let c = s
            .execute(disk, read_request(from, usize::MAX, usize::MAX), 0)
            .expect("reads");
        entries_read(c, from)
    };
    assert_eq!(
        read(&mut s, &mut disk, 4),
        (Some(pos(3, 1)), log[3..].to_vec())
    );
    assert_eq!(read(&mut s, &mut disk, 1), (None, Vec::new()));
    drop(s);
    let (mut s, rec) = open_partition(&mut disk, cfg.clone(), false);
    assert_eq!(rec.raft.base, pos(3, 1));
    assert_eq!(rec.raft.entries, log[3..].to_vec());
    assert_eq!(rec.log_start, start);

    s.save_commit(&mut disk, LogIndex(11)).expect("saves");
    let start = s.housekeeping(&mut disk, 0, None).expect("housekeeping");
    assert_eq!(
        start, 8,
        "the first segment goes; the second must stay (retention bytes)"
    );
    assert_eq!(s.log().segment_count(), 2);
    let first_held = 6; // entry i holds offsets 2(i-2) and 2(i-2)+1
    assert_eq!(read(&mut s, &mut disk, first_held - 1), (None, Vec::new()));
    assert_eq!(
        read(&mut s, &mut disk, first_held),
        (
            Some(pos(first_held - 1, 1)),
            log[first_held as usize - 1..].to_vec()
        )
    );
    drop(s);
    let (_, rec) = open_partition(&mut disk, cfg, false);
    assert_eq!(
        rec.raft.base,
        pos(11, 1),
        "the commit point, above the retention base"
    );
    assert!(rec.raft.entries.is_empty());
}

#[test]
fn the_raft_store_reads_entries_back_with_their_predecessor() {
    let mut disk = MemDisk::default();
    let (mut store, _, _) = RaftStore::open(&mut disk, "raft", cfg(), 0).expect("opens");
    let log = vec![
        Entry::noop(Term(1)),
        Entry::normal(Term(1), Bytes::from_static(b"a")),
        Entry::normal(Term(2), Bytes::from(vec![7; 300])),
        Entry::normal(Term(2), Bytes::from_static(b"")),
    ];
    raft_append(
        &mut |r| store.execute(&mut disk, r, 0).expect("executes"),
        1,
        log.clone(),
    );
    let mut read = |from: u64, max_entries: usize, max_bytes: usize| {
        let c = store
            .execute(&mut disk, read_request(from, max_entries, max_bytes), 0)
            .expect("reads");
        entries_read(c, from)
    };
    assert_eq!(read(1, 10, 1000), (Some(pos(0, 0)), log.clone()));
    assert_eq!(read(3, 10, 1000), (Some(pos(2, 1)), log[2..].to_vec()));
    assert_eq!(read(2, 10, 1), (Some(pos(1, 1)), log[1..2].to_vec()));
    assert_eq!(read(2, 2, 1000).1, log[1..3].to_vec());
    assert_eq!(read(5, 10, 1000), (Some(pos(4, 2)), Vec::new()));
    assert_eq!(read(6, 10, 1000), (None, Vec::new()));
}
