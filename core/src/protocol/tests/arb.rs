//! Proptest strategies for wire values that are valid at a given version: every field present in
//! that version gets a random value, every absent one keeps its default, and nulls appear only
//! where that version allows them. `wire_struct!` implements [`Arb`] for every generated struct,
//! so round-trips need no per-message normalisation.
//!
//! Owns the leaf strategies (integers, strings, bytes, ids, arrays, options) only.

use bytes::Bytes;
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;

use crate::protocol::wire::{Uuid, Version};

/// Values of `Self` that can be encoded at `v`; `nullable` says whether `None` is allowed.
pub(crate) trait Arb: Sized + Clone + std::fmt::Debug + 'static {
    fn arb(v: Version, nullable: bool) -> BoxedStrategy<Self>;
}

macro_rules! arb_any {
    ($($t:ty),*) => {$(
        impl Arb for $t {
            fn arb(_: Version, _: bool) -> BoxedStrategy<Self> {
                any::<$t>().boxed()
            }
        }
    )*};
}

arb_any!(i8, i16, i32, i64, u16, u32, bool);

impl Arb for Uuid {
    fn arb(_: Version, _: bool) -> BoxedStrategy<Self> {
        any::<[u8; 16]>().prop_map(Uuid).boxed()
    }
}

impl Arb for String {
    fn arb(_: Version, _: bool) -> BoxedStrategy<Self> {
        // Short, with multi-byte characters, so byte and char lengths differ.
        prop_oneof!["[a-z0-9._-]{0,12}", "\\PC{0,6}",].boxed()
    }
}

impl Arb for Bytes {
    fn arb(_: Version, _: bool) -> BoxedStrategy<Self> {
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(Bytes::from)
            .boxed()
    }
}

impl<T: Arb> Arb for Vec<T> {
    fn arb(v: Version, _: bool) -> BoxedStrategy<Self> {
        proptest::collection::vec(T::arb(v, false), 0..3).boxed()
    }
}

impl<T: Arb> Arb for Option<T> {
    fn arb(v: Version, nullable: bool) -> BoxedStrategy<Self> {
        if nullable {
            proptest::option::of(T::arb(v, false)).boxed()
        } else {
            T::arb(v, false).prop_map(Some).boxed()
        }
    }
}
