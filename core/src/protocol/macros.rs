//! `wire_struct!`: one declaration per Kafka schema structure generates the Rust struct, its
//! schema defaults, and its versioned decoder and encoder (and, under test, a proptest strategy
//! for values valid at a given version).
//!
//! Owns the mapping from a schema field list to code. It does not know any particular message;
//! the declarations live in `messages/`. It is a `macro_rules!` macro, not a build script, so the
//! field lists read like the JSON schemas they were transcribed from.
//!
//! # Field syntax
//!
//! ```text
//! /// doc
//! name: Type [versions] (nullable N+)? (tag T)? (= default)?,
//! ```
//!
//! - `[versions]` is `[N+]` or `[N-M]`, exactly as the schema's `versions`.
//! - `nullable N+` is the schema's `nullableVersions`; the type must be an `Option`. A null read
//!   in an earlier version is an error; a `None` written in an earlier version is written empty.
//! - `tag T` makes it a tagged field (present only in flexible versions, written only when it
//!   differs from its default, in ascending tag order: declare tagged fields in tag order).
//! - `= default` is the schema's `default`; without it, `Default::default()`.
//!
//! A field absent at a version keeps its default on decode and is not written on encode.

/// The lower bound of a `[N+]` / `[N-M]` version range.
macro_rules! version_min {
    ($min:literal +) => {
        $min
    };
    ($min:literal - $max:literal) => {
        $min
    };
}

/// The upper bound of a `[N+]` / `[N-M]` version range.
macro_rules! version_max {
    ($min:literal +) => {
        i16::MAX
    };
    ($min:literal - $max:literal) => {
        $max
    };
}

/// The field's schema default, or `Default::default()`.
macro_rules! default_or {
    () => {
        Default::default()
    };
    ($default:expr) => {
        $default
    };
}

/// Expands its body only for a field without a tag.
macro_rules! if_untagged {
    (() { $($body:tt)* }) => {
        $($body)*
    };
    (($tag:literal) { $($body:tt)* }) => {};
}

/// Expands its body, with the tag bound to `$t`, only for a tagged field.
macro_rules! if_tagged {
    (() |$t:ident| { $($body:tt)* }) => {};
    (($tag:literal) |$t:ident| { $($body:tt)* }) => {{
        let $t: u32 = $tag;
        $($body)*
    }};
}

/// Rejects a null read at a version in which the field is not nullable.
macro_rules! check_null {
    ($value:expr, $v:ident,) => {};
    ($value:expr, $v:ident, $nmin:literal) => {
        if $v.number < $nmin && $crate::protocol::wire::NullableField::is_null(&$value) {
            return Err($crate::protocol::error::DecodeError::UnexpectedNull);
        }
    };
}

/// Writes a field, using its non-null form in versions where it is not nullable.
macro_rules! write_field {
    ($value:expr, $w:ident, $v:ident,) => {
        $crate::protocol::wire::Wire::write(&$value, $w, $v)
    };
    ($value:expr, $w:ident, $v:ident, $nmin:literal) => {
        if $v.number >= $nmin {
            $crate::protocol::wire::Wire::write(&$value, $w, $v)
        } else {
            $crate::protocol::wire::NullableField::write_non_null(&$value, $w, $v)
        }
    };
}

/// Whether a field may be null at `$v`.
#[cfg(test)]
macro_rules! nullable_at {
    ($v:ident,) => {
        false
    };
    ($v:ident, $nmin:literal) => {
        $v.number >= $nmin
    };
}

macro_rules! wire_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty [$($ver:tt)+]
                    $(nullable $nmin:literal +)?
                    $(tag $tag:literal)?
                    $(= $default:expr)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    $( $field: $crate::protocol::macros::default_or!($($default)?), )*
                }
            }
        }

        impl $crate::protocol::wire::Wire for $name {
            #[allow(unused_mut)]
            fn min_size(v: $crate::protocol::wire::Version) -> usize {
                let mut n = usize::from(v.flexible);
                $(
                    $crate::protocol::macros::if_untagged!(($($tag)?) {
                        if v.within(
                            $crate::protocol::macros::version_min!($($ver)+),
                            $crate::protocol::macros::version_max!($($ver)+),
                        ) {
                            n += <$ty as $crate::protocol::wire::Wire>::min_size(v);
                        }
                    });
                )*
                n.max(1)
            }

            #[allow(unused_mut)]
            fn read(
                r: &mut $crate::protocol::wire::Reader<'_>,
                v: $crate::protocol::wire::Version,
            ) -> Result<Self, $crate::protocol::error::DecodeError> {
                let mut this = Self::default();
                $(
                    $crate::protocol::macros::if_untagged!(($($tag)?) {
                        if v.within(
                            $crate::protocol::macros::version_min!($($ver)+),
                            $crate::protocol::macros::version_max!($($ver)+),
                        ) {
                            this.$field = <$ty as $crate::protocol::wire::Wire>::read(r, v)?;
                            $crate::protocol::macros::check_null!(this.$field, v, $($nmin)?);
                        }
                    });
                )*
                if v.flexible {
                    r.tagged_fields(|tag, field| {
                        let _ = (&tag, &field);
                        $(
                            $crate::protocol::macros::if_tagged!(($($tag)?) |t| {
                                if tag == t && v.within(
                                    $crate::protocol::macros::version_min!($($ver)+),
                                    $crate::protocol::macros::version_max!($($ver)+),
                                ) {
                                    this.$field =
                                        <$ty as $crate::protocol::wire::Wire>::read(field, v)?;
                                    $crate::protocol::macros::check_null!(
                                        this.$field, v, $($nmin)?
                                    );
                                    return Ok(true);
                                }
                            });
                        )*
                        Ok(false)
                    })?;
                }
                Ok(this)
            }

            #[allow(unused_mut)]
            fn write(
                &self,
                w: &mut $crate::protocol::wire::Writer,
                v: $crate::protocol::wire::Version,
            ) {
                $(
                    $crate::protocol::macros::if_untagged!(($($tag)?) {
                        if v.within(
                            $crate::protocol::macros::version_min!($($ver)+),
                            $crate::protocol::macros::version_max!($($ver)+),
                        ) {
                            $crate::protocol::macros::write_field!(self.$field, w, v, $($nmin)?);
                        }
                    });
                )*
                if v.flexible {
                    let mut tagged: Vec<(u32, Vec<u8>)> = Vec::new();
                    $(
                        $crate::protocol::macros::if_tagged!(($($tag)?) |t| {
                            let default: $ty =
                                $crate::protocol::macros::default_or!($($default)?);
                            if v.within(
                                $crate::protocol::macros::version_min!($($ver)+),
                                $crate::protocol::macros::version_max!($($ver)+),
                            ) && self.$field != default
                            {
                                let mut value = $crate::protocol::wire::Writer::new();
                                let w = &mut value;
                                $crate::protocol::macros::write_field!(
                                    self.$field, w, v, $($nmin)?
                                );
                                tagged.push((t, value.into_inner()));
                            }
                        });
                    )*
                    w.tagged_fields(&tagged);
                }
            }
        }

        #[cfg(test)]
        impl $crate::protocol::tests::arb::Arb for $name {
            fn arb(
                v: $crate::protocol::wire::Version,
                _nullable: bool,
            ) -> proptest::strategy::BoxedStrategy<Self> {
                use proptest::strategy::{Just, Strategy};
                let s = Just(Self::default()).boxed();
                $(
                    let s = if v.within(
                        $crate::protocol::macros::version_min!($($ver)+),
                        $crate::protocol::macros::version_max!($($ver)+),
                    ) {
                        let nullable = $crate::protocol::macros::nullable_at!(v, $($nmin)?);
                        (s, <$ty as $crate::protocol::tests::arb::Arb>::arb(v, nullable))
                            .prop_map(|(mut this, x)| {
                                this.$field = x;
                                this
                            })
                            .boxed()
                    } else {
                        s
                    };
                )*
                s
            }
        }
    };
}

pub(crate) use check_null;
pub(crate) use default_or;
pub(crate) use if_tagged;
pub(crate) use if_untagged;
#[cfg(test)]
pub(crate) use nullable_at;
pub(crate) use version_max;
pub(crate) use version_min;
pub(crate) use wire_struct;
pub(crate) use write_field;
