//! Tests of the wire codec as a whole: round-trips of every message at every supported version,
//! differential tests against the `kafka-protocol` crate, and the hostile-frame suite.
//!
//! Unit tests of single pieces (varints, framing, headers, record batches) live beside the code
//! they test; these are the cross-cutting ones. Nothing here runs in production.

pub(crate) mod arb;
mod hostile;
mod oracle;
mod roundtrip;
