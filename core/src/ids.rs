//! Identifier newtypes with explicit widths. One type per concept, so an index is never passed
//! where a term is expected.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty), $prefix:literal) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default,
            serde::Serialize, serde::Deserialize,
        )]
        pub struct $name(pub $inner);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    };
}

id_type!(
    /// A broker (and Raft node) id, as configured by the operator.
    NodeId(u32), "n"
);
id_type!(
    /// A Raft term. For a partition group it is exposed to Kafka clients as the leader epoch.
    Term(u64), "t"
);
id_type!(
    /// A position in a Raft log; 0 means "before the first entry".
    LogIndex(u64), "i"
);
id_type!(
    /// A Kafka leader epoch, as Kafka clients see it.
    LeaderEpoch(i32), "e"
);
id_type!(
    /// A Kafka record offset within one partition.
    Offset(u64), "o"
);

impl LogIndex {
    pub const ZERO: LogIndex = LogIndex(0);

    pub fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }

    /// The previous index, saturating at zero.
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }
}

impl Term {
    pub const ZERO: Term = Term(0);

    pub fn next(self) -> Term {
        Term(self.0 + 1)
    }

    /// The leader epoch Kafka clients see for this term; terms beyond `i32::MAX` saturate.
    pub fn leader_epoch(self) -> LeaderEpoch {
        LeaderEpoch(i32::try_from(self.0).unwrap_or(i32::MAX))
    }
}
