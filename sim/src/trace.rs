//! The run's trace: a running hash of every event (the determinism fingerprint) and a ring of
//! the most recent records, rendered only when a run fails.

use std::collections::VecDeque;
use std::fmt;

/// Records are small and `Copy`, so tracing costs a hash update and a ring write per event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    Deliver {
        from: u32,
        to: u32,
        kind: &'static str,
        term: u64,
        a: u64,
        b: u64,
    },
    Drop {
        from: u32,
        to: u32,
        kind: &'static str,
        why: &'static str,
    },
    Timer {
        node: u32,
    },
    Storage {
        node: u32,
        kind: &'static str,
        index: u64,
    },
    Propose {
        node: u32,
        client: u32,
        op: u64,
    },
    ClientResult {
        client: u32,
        op: u64,
        outcome: &'static str,
        index: u64,
    },
    Role {
        node: u32,
        term: u64,
        role: &'static str,
    },
    Truncated {
        node: u32,
        from: u64,
        removed: u64,
    },
    Commit {
        node: u32,
        index: u64,
    },
    Fault {
        text: &'static str,
        node: u32,
        arg: i64,
    },
    Phase {
        name: &'static str,
    },
    /// A Kafka client's request, answer or connection event (Kafka-level runs).
    Client {
        client: u32,
        node: u32,
        what: &'static str,
        a: i64,
        b: i64,
    },
    /// A broker's view of a partition or of the metadata group changed (Kafka-level runs).
    Broker {
        node: u32,
        what: &'static str,
        partition: u32,
        a: i64,
    },
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Record::Deliver {
                from,
                to,
                kind,
                term,
                a,
                b,
            } => {
                write!(f, "n{from}->n{to} {kind} t{term} {a} {b}")
            }
            Record::Drop {
                from,
                to,
                kind,
                why,
            } => write!(f, "n{from}->n{to} {kind} dropped ({why})"),
            Record::Timer { node } => write!(f, "n{node} timeout"),
            Record::Storage { node, kind, index } => write!(f, "n{node} storage {kind} i{index}"),
            Record::Propose { node, client, op } => write!(f, "c{client} op{op} -> n{node}"),
            Record::ClientResult {
                client,
                op,
                outcome,
                index,
            } => {
                write!(f, "c{client} op{op} {outcome} i{index}")
            }
            Record::Role { node, term, role } => write!(f, "n{node} {role} t{term}"),
            Record::Truncated {
                node,
                from,
                removed,
            } => {
                write!(f, "n{node} truncated from i{from} ({removed} entries)")
            }
            Record::Commit { node, index } => write!(f, "n{node} commit i{index}"),
            Record::Fault { text, node, arg } => write!(f, "FAULT {text} n{node} {arg}"),
            Record::Phase { name } => write!(f, "PHASE {name}"),
            Record::Client {
                client,
                node,
                what,
                a,
                b,
            } => write!(f, "c{client} n{node} {what} {a} {b}"),
            Record::Broker {
                node,
                what,
                partition,
                a,
            } => write!(f, "n{node} p{partition} {what} {a}"),
        }
    }
}

const RING: usize = 256;

#[derive(Debug)]
pub struct Trace {
    hash: u64,
    ring: VecDeque<(u64, Record)>,
    pub records: u64,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            hash: FNV_OFFSET,
            ring: VecDeque::with_capacity(RING),
            records: 0,
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn mix(h: &mut u64, x: u64) {
    // FNV-1a over the eight bytes of x; stable across Rust versions, unlike std's hasher.
    for byte in x.to_le_bytes() {
        *h ^= u64::from(byte);
        *h = h.wrapping_mul(FNV_PRIME);
    }
}

fn mix_str(h: &mut u64, s: &str) {
    for byte in s.bytes() {
        *h ^= u64::from(byte);
        *h = h.wrapping_mul(FNV_PRIME);
    }
}

impl Trace {
    pub fn record(&mut self, at: u64, r: Record) {
        let h = &mut self.hash;
        mix(h, at);
        match r {
            Record::Deliver {
                from,
                to,
                kind,
                term,
                a,
                b,
            } => {
                mix(h, 1);
                mix(h, u64::from(from) << 32 | u64::from(to));
                mix_str(h, kind);
                mix(h, term);
                mix(h, a);
                mix(h, b);
            }
            Record::Drop {
                from,
                to,
                kind,
                why,
            } => {
                mix(h, 2);
                mix(h, u64::from(from) << 32 | u64::from(to));
                mix_str(h, kind);
                mix_str(h, why);
            }
            Record::Timer { node } => {
                mix(h, 3);
                mix(h, u64::from(node));
            }
            Record::Storage { node, kind, index } => {
                mix(h, 4);
                mix(h, u64::from(node));
                mix_str(h, kind);
                mix(h, index);
            }
            Record::Propose { node, client, op } => {
                mix(h, 5);
                mix(h, u64::from(node) << 32 | u64::from(client));
                mix(h, op);
            }
            Record::ClientResult {
                client,
                op,
                outcome,
                index,
            } => {
                mix(h, 6);
                mix(h, u64::from(client));
                mix(h, op);
                mix_str(h, outcome);
                mix(h, index);
            }
            Record::Role { node, term, role } => {
                mix(h, 7);
                mix(h, u64::from(node));
                mix(h, term);
                mix_str(h, role);
            }
            Record::Truncated {
                node,
                from,
                removed,
            } => {
                mix(h, 8);
                mix(h, u64::from(node));
                mix(h, from);
                mix(h, removed);
            }
            Record::Commit { node, index } => {
                mix(h, 9);
                mix(h, u64::from(node));
                mix(h, index);
            }
            Record::Fault { text, node, arg } => {
                mix(h, 10);
                mix_str(h, text);
                mix(h, u64::from(node));
                mix(h, arg as u64);
            }
            Record::Phase { name } => {
                mix(h, 11);
                mix_str(h, name);
            }
            Record::Client {
                client,
                node,
                what,
                a,
                b,
            } => {
                mix(h, 12);
                mix(h, u64::from(client) << 32 | u64::from(node));
                mix_str(h, what);
                mix(h, a as u64);
                mix(h, b as u64);
            }
            Record::Broker {
                node,
                what,
                partition,
                a,
            } => {
                mix(h, 13);
                mix(h, u64::from(node) << 32 | u64::from(partition));
                mix_str(h, what);
                mix(h, a as u64);
            }
        }
        if self.ring.len() == RING {
            self.ring.pop_front();
        }
        self.ring.push_back((at, r));
        self.records += 1;
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The last `n` records, rendered with their simulated time.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let skip = self.ring.len().saturating_sub(n);
        self.ring
            .iter()
            .skip(skip)
            .map(|(at, r)| format!("{:>10.3}ms  {r}", *at as f64 / 1e6))
            .collect()
    }
}
