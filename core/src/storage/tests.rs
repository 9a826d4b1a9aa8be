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
