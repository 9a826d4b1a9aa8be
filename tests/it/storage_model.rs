//! The storage engine against a model, on the simulator's faulty file system: random appends,
//! syncs, truncations, retention, clean reopens and crashes at random points. After every
//! step, what was synced (and not since truncated or expired) is still there, and every batch
//! the log serves is byte-for-byte one that was appended at that offset, never torn or corrupt.

use proptest::prelude::*;
use sluice_core::protocol::record::{build_batch, BatchSpec, NewRecord};
use sluice_core::protocol::records::{batches, verify_crc};
use sluice_core::rng::DetRng;
use sluice_core::storage::{LogConfig, SegmentLog};
use sluice_sim::fs::{FsFaults, SimFs, SimFsHandle};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Op {
    Append {
        batches: usize,
        records: usize,
        payload: usize,
    },
    Sync,
    /// Truncate to this fraction (per mille) of the log.
    Truncate(u16),
    Retention,
    Reopen,
    Crash,
    Read(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1usize..4, 1usize..6, 0usize..300).prop_map(|(batches, records, payload)| Op::Append { batches, records, payload }),
        3 => Just(Op::Sync),
        1 => (0u16..1000).prop_map(Op::Truncate),
        1 => Just(Op::Retention),
        1 => Just(Op::Reopen),
        2 => Just(Op::Crash),
        2 => (0u16..1000).prop_map(Op::Read),
    ]
}

struct Harness {
    fs: SimFs,
    rng: DetRng,
    log: SegmentLog,
    cfg: LogConfig,
    /// Every batch ever appended, by base offset.
    history: BTreeMap<i64, Vec<Vec<u8>>>,
    /// The model: batches currently in the log, by base offset.
    model: BTreeMap<i64, Vec<u8>>,
    /// Offsets below this were synced and must survive a crash (unless truncated or expired).
    durable_end: i64,
    now_ms: i64,
}

const DIR: &str = "p-0";

impl Harness {
    fn new(seed: u64, retention_bytes: Option<u64>) -> Harness {
        let cfg = LogConfig {
            segment_bytes: 2_048,
            index_interval_bytes: 200,
            retention_ms: Some(60_000),
            retention_bytes,
            ..LogConfig::default()
        };
        let mut fs = SimFs::new();
        fs.faults = FsFaults {
            io_error_ppm: 0,
            garbage_ppm: 500_000,
            torn_writes: true,
        };
        let mut rng = DetRng::new(seed);
        let (log, _) = SegmentLog::open(
            &mut SimFsHandle {
                fs: &mut fs,
                rng: &mut rng,
            },
            DIR,
            cfg.clone(),
            0,
            0,
        )
        .expect("opens");
        Harness {
            fs,
            rng,
            log,
            cfg,
            history: BTreeMap::new(),
            model: BTreeMap::new(),
            durable_end: 0,
            now_ms: 0,
        }
    }

    fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        self.now_ms += 1_000;
        let disk = &mut SimFsHandle {
            fs: &mut self.fs,
            rng: &mut self.rng,
        };
        match op {
            Op::Append {
                batches: n,
                records,
                payload,
            } => {
                let mut blob = Vec::new();
                let mut offset = self.log.next_offset();
                let value = vec![offset as u8; payload];
                for _ in 0..n {
                    let recs: Vec<NewRecord<'_>> = (0..records)
                        .map(|_| NewRecord {
                            value: Some(&value),
                            ..NewRecord::default()
                        })
                        .collect();
                    let b = build_batch(
                        BatchSpec {
                            base_offset: offset,
                            base_timestamp: self.now_ms,
                            ..BatchSpec::default()
                        },
                        &recs,
                    );
                    self.history.entry(offset).or_default().push(b.clone());
                    self.model.insert(offset, b.clone());
                    offset += records as i64;
                    blob.extend_from_slice(&b);
                }
                self.log
                    .append(disk, &blob, self.now_ms)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            Op::Sync => {
                self.log
                    .sync(disk)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                self.durable_end = self.log.next_offset();
            }
            Op::Truncate(per_mille) => {
                let (start, end) = (self.log.log_start(), self.log.next_offset());
                let to = start + (end - start) * i64::from(per_mille) / 1000;
                let new_end = self
                    .log
                    .truncate(disk, to, self.now_ms)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                self.model.retain(|&o, _| o < new_end);
                self.durable_end = self.durable_end.min(new_end);
            }
            Op::Retention => {
                self.log
                    .apply_retention(disk, self.now_ms)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let start = self.log.log_start();
                self.model.retain(|&o, _| o >= start);
            }
            Op::Reopen | Op::Crash => {
                if matches!(op, Op::Crash) {
                    self.fs.crash(&mut self.rng);
                } else {
                    let disk = &mut SimFsHandle {
                        fs: &mut self.fs,
                        rng: &mut self.rng,
                    };
                    self.log
                        .sync(disk)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    self.durable_end = self.log.next_offset();
                }
                let disk = &mut SimFsHandle {
                    fs: &mut self.fs,
                    rng: &mut self.rng,
                };
                let start_before = self.log.log_start();
                let (log, report) = SegmentLog::open(disk, DIR, self.cfg.clone(), 0, self.now_ms)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                // Synced data survives: the recovered log reaches at least the durable end.
                prop_assert!(
                    log.next_offset() >= self.durable_end,
                    "lost synced data: end {} < durable {} ({report})",
                    log.next_offset(),
                    self.durable_end
                );
                prop_assert!(
                    log.log_start() >= start_before.min(log.next_offset()) || log.log_start() == 0,
                    "log start moved back: {report}"
                );
                self.log = log;
                // What is there now is the truth; it is all on disk after recovery.
                self.model = self.read_all()?;
                self.durable_end = self.log.next_offset();
            }
            Op::Read(per_mille) => {
                let (start, end) = (self.log.log_start(), self.log.next_offset());
                if end > start {
                    let from = start + (end - start - 1) * i64::from(per_mille) / 1000;
                    let r = self
                        .log
                        .read(disk, from, 1_000)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    self.check_served(&r.bytes)?;
                    let first = batches(&r.bytes)
                        .next()
                        .expect("at least one batch")
                        .expect("valid");
                    prop_assert!(
                        first.header.base_offset <= from && first.header.last_offset() >= from
                    );
                }
            }
        }
        // The model's synced prefix is in the log, unchanged.
        let all = self.read_all()?;
        for (offset, bytes) in self.model.range(..self.durable_end) {
            prop_assert_eq!(
                all.get(offset),
                Some(bytes),
                "synced batch at {} changed or vanished",
                offset
            );
        }
        Ok(())
    }

    fn read_all(&mut self) -> Result<BTreeMap<i64, Vec<u8>>, TestCaseError> {
        let disk = &mut SimFsHandle {
            fs: &mut self.fs,
            rng: &mut self.rng,
        };
        let mut out = BTreeMap::new();
        let mut next = self.log.log_start();
        let mut served = Vec::new();
        while next < self.log.next_offset() {
            let r = self
                .log
                .read(disk, next, 4_096)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(r.next_offset > next, "read made no progress at {}", next);
            served.extend_from_slice(&r.bytes);
            next = r.next_offset;
        }
        self.check_served(&served)?;
        for b in batches(&served) {
            let b = b.expect("checked");
            out.insert(b.header.base_offset, b.bytes.to_vec());
        }
        Ok(out)
    }

    /// Every served batch is intact and is one that was appended at its offset.
    fn check_served(&self, bytes: &[u8]) -> Result<(), TestCaseError> {
        for b in batches(bytes) {
            let b = b.map_err(|e| TestCaseError::fail(format!("served a malformed batch: {e}")))?;
            verify_crc(b.bytes)
                .map_err(|e| TestCaseError::fail(format!("served a corrupt batch: {e}")))?;
            let known = self
                .history
                .get(&b.header.base_offset)
                .is_some_and(|v| v.iter().any(|h| h == b.bytes));
            prop_assert!(
                known,
                "served a batch at {} ({} bytes, header {:?}) that was never appended there; appended there: {:?}",
                b.header.base_offset,
                b.bytes.len(),
                b.header,
                self.history.get(&b.header.base_offset).map(|v| v.iter().map(|h| h.len()).collect::<Vec<_>>())
            );
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, max_shrink_iters: 5_000, ..ProptestConfig::default() })]

    #[test]
    fn synced_data_survives_crashes_and_nothing_corrupt_is_served(
        seed in any::<u64>(),
        retention_bytes in prop_oneof![Just(None), (4_000u64..20_000).prop_map(Some)],
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mut h = Harness::new(seed, retention_bytes);
        for op in ops {
            h.step(op)?;
        }
    }
}
