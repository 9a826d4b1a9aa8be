//! The hostile-frame suite: malformed, truncated, oversized and random frames all come back as
//! typed errors, never as a panic, and lying lengths are refused at the length, before anything
//! is allocated for them.
//!
//! Allocation cannot be measured here without a counting global allocator (which would need
//! `unsafe`), so the bound is shown by construction: every oversized count below must fail with
//! `InvalidLength`, the error raised where the count is compared with the bytes left, which is
//! before the array is reserved or its elements are read.

use proptest::prelude::*;

use super::roundtrip::sample_request_frames;
use crate::protocol::records;
use crate::protocol::*;

/// A frame body: header fields for `api`/`version` with client id "c", then `body`.
fn request_frame(api: i16, version: i16, flexible_header: bool, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.i16(api);
    w.i16(version);
    w.i32(1);
    w.nullable_string(false, Some("c"));
    if flexible_header {
        w.tagged_fields(&[]);
    }
    w.raw(body);
    w.into_inner()
}

#[test]
fn every_truncation_of_every_sample_request_is_an_error() {
    let mut checked = 0;
    for (api, version, frame) in sample_request_frames() {
        let body = &frame[4..];
        for len in 0..body.len() {
            let result = decode_request(&body[..len]);
            assert!(
                result.is_err(),
                "{api:?} v{version}: prefix of {len}/{} bytes decoded: {result:?}",
                body.len()
            );
            checked += 1;
        }
        // And a size prefix that promises more than arrived is incomplete, not an error.
        let status = next_frame(&frame[..frame.len() - 1], DEFAULT_MAX_FRAME_BYTES);
        assert_eq!(
            status,
            Ok(FrameStatus::Incomplete {
                needed: frame.len()
            })
        );
    }
    assert!(
        checked > 1000,
        "the suite exercised only {checked} prefixes"
    );
}

#[test]
fn trailing_bytes_after_a_complete_request_are_ignored_as_kafka_does() {
    for (api, version, frame) in sample_request_frames() {
        let mut body = frame[4..].to_vec();
        let clean = decode_request(&body).unwrap();
        body.extend_from_slice(&[0, 1, 0]);
        assert_eq!(decode_request(&body).unwrap(), clean, "{api:?} v{version}");
    }
}

/// Regression: librdkafka 2.12's Metadata v12 for all topics, as captured from a live client.
/// Its null topic array takes four bytes (`00 00 00 00`); the first decodes as null and the
/// last three are left over. Refusing them closed every librdkafka connection that listed
/// topics.
#[test]
fn librdkafka_all_topics_metadata_v12_decodes() {
    let frame = [
        0x00, 0x03, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x03, 0x00, 0x07, b'r', b'd', b'k', b'a', b'f',
        b'k', b'a', 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    ];
    let (header, request) = decode_request(&frame).unwrap();
    assert_eq!((header.api_key, header.api_version), (ApiKey::Metadata, 12));
    let Request::Metadata(m) = request else {
        panic!("{request:?}")
    };
    assert_eq!(m.topics, None, "all topics");
}

#[test]
fn negative_and_huge_frame_sizes_are_refused_before_the_body() {
    for size in [-1i32, -2, i32::MIN] {
        assert_eq!(
            next_frame(&size.to_be_bytes(), DEFAULT_MAX_FRAME_BYTES),
            Err(DecodeError::NegativeLength(i64::from(size)))
        );
    }
    for size in [DEFAULT_MAX_FRAME_BYTES as i32 + 1, i32::MAX] {
        assert!(matches!(
            next_frame(&size.to_be_bytes(), DEFAULT_MAX_FRAME_BYTES),
            Err(DecodeError::FrameTooLarge { .. })
        ));
    }
    let at_max = (DEFAULT_MAX_FRAME_BYTES as i32).to_be_bytes();
    assert_eq!(
        next_frame(&at_max, DEFAULT_MAX_FRAME_BYTES),
        Ok(FrameStatus::Incomplete {
            needed: DEFAULT_MAX_FRAME_BYTES + 4
        })
    );
}

#[test]
fn a_classic_array_count_of_i32_max_is_refused_at_the_count() {
    // Metadata v1: topics is a classic nullable array.
    let mut body = i32::MAX.to_be_bytes().to_vec();
    body.extend_from_slice(&[0, 1, b'x']);
    let frame = request_frame(3, 1, false, &body);
    assert!(matches!(
        decode_request(&frame),
        Err(DecodeError::InvalidLength {
            length: 2_147_483_647,
            ..
        })
    ));
}

#[test]
fn a_compact_array_count_of_two_to_the_31_minus_one_is_refused_at_the_count() {
    // Produce v9: transactional id (null), acks, timeout, then the compact topic array.
    let mut w = Writer::new();
    w.unsigned_varint(0);
    w.i16(-1);
    w.i32(1000);
    w.unsigned_varint(i32::MAX as u32 + 1);
    w.raw(&[2, b'x']);
    let frame = request_frame(0, 9, true, w.as_slice());
    assert!(matches!(
        decode_request(&frame),
        Err(DecodeError::InvalidLength {
            length: 2_147_483_647,
            ..
        })
    ));
}

#[test]
fn a_nested_array_count_is_bounded_by_the_bytes_left_at_its_depth() {
    // Fetch v12: one topic whose partition array claims a million partitions.
    let mut w = Writer::new();
    w.i32(-1); // replica id
    w.i32(500); // max wait
    w.i32(1); // min bytes
    w.i32(1 << 20); // max bytes
    w.i8(0); // isolation
    w.i32(0); // session id
    w.i32(-1); // session epoch
    w.unsigned_varint(2); // one topic
    w.string(true, "t");
    w.unsigned_varint(1_000_001);
    w.raw(&[0; 64]);
    let frame = request_frame(1, 12, true, w.as_slice());
    assert!(matches!(
        decode_request(&frame),
        Err(DecodeError::InvalidLength {
            length: 1_000_000,
            ..
        })
    ));
}

#[test]
fn a_varint_with_too_many_continuation_bytes_is_refused() {
    // Metadata v12: the topic array count is a varint.
    let body = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
    let frame = request_frame(3, 12, true, &body);
    assert_eq!(decode_request(&frame), Err(DecodeError::InvalidVarint));
    // The same in the header's tagged-field section.
    let mut frame = request_frame(3, 12, false, &[]);
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert_eq!(decode_request(&frame), Err(DecodeError::InvalidVarint));
}

#[test]
fn invalid_utf8_in_a_client_id_or_topic_name_is_refused() {
    let mut w = Writer::new();
    w.i16(3);
    w.i16(1);
    w.i32(1);
    w.i16(2);
    w.raw(&[0xc3, 0x28]);
    w.i32(0);
    assert_eq!(decode_request(w.as_slice()), Err(DecodeError::InvalidUtf8));

    let mut body = 1i32.to_be_bytes().to_vec();
    body.extend_from_slice(&[0, 3, b'a', 0xff, b'b']);
    let frame = request_frame(3, 1, false, &body);
    assert_eq!(decode_request(&frame), Err(DecodeError::InvalidUtf8));
}

#[test]
fn unknown_api_keys_are_refused() {
    for key in [-1i16, 4, 7, 17, 43, 61, i16::MAX] {
        let frame = request_frame(key, 0, false, &[]);
        assert_eq!(decode_request(&frame), Err(DecodeError::UnknownApiKey(key)));
    }
}

#[test]
fn unsupported_versions_are_refused_except_for_api_versions() {
    for (api, version) in [
        (0i16, 2i16),
        (0, 10),
        (1, 3),
        (1, 13),
        (3, 13),
        (3, -1),
        (60, 2),
        (8, 9),
        (9, 9),
        (10, 5),
        (11, 10),
        (15, 6),
        (16, 5),
        (42, 3),
    ] {
        let frame = request_frame(api, version, false, &[]);
        assert!(
            matches!(
                decode_request(&frame),
                Err(DecodeError::UnsupportedVersion { .. })
            ),
            "api {api} v{version}"
        );
    }
    for version in [4i16, 5, i16::MAX] {
        let frame = request_frame(18, version, true, &[0xde, 0xad]);
        let (header, request) = decode_request(&frame).unwrap();
        assert_eq!(header.api_version, version);
        assert_eq!(request, Request::UnsupportedApiVersions);
    }
}

#[test]
fn a_null_in_a_field_not_nullable_at_that_version_is_refused() {
    // Metadata v0: topics may not be null (it may from v1).
    let frame = request_frame(3, 0, false, &(-1i32).to_be_bytes());
    assert_eq!(decode_request(&frame), Err(DecodeError::UnexpectedNull));
    let frame = request_frame(3, 1, false, &(-1i32).to_be_bytes());
    assert!(decode_request(&frame).is_ok());
}

#[test]
fn offset_fetch_topics_may_be_null_only_from_v2_and_per_group_from_v8() {
    // v1: group id, then a null topic array: refused (null means "all topics" only from v2).
    let mut w = Writer::new();
    w.string(false, "g");
    w.i32(-1);
    let frame = request_frame(9, 1, false, w.as_slice());
    assert_eq!(decode_request(&frame), Err(DecodeError::UnexpectedNull));
    let frame = request_frame(9, 2, false, w.as_slice());
    let Ok((_, Request::OffsetFetch(r))) = decode_request(&frame) else {
        panic!("v2 null topics refused")
    };
    assert_eq!((r.group_id.as_str(), r.topics), ("g", None));

    // v8: one group whose compact topic array is null, then require_stable.
    let mut w = Writer::new();
    w.unsigned_varint(2); // one group
    w.string(true, "g");
    w.unsigned_varint(0); // null topics
    w.tagged_fields(&[]);
    w.i8(1); // require_stable
    w.tagged_fields(&[]);
    let frame = request_frame(9, 8, true, w.as_slice());
    let Ok((_, Request::OffsetFetch(r))) = decode_request(&frame) else {
        panic!("v8 null group topics refused")
    };
    assert_eq!(r.groups.len(), 1);
    assert_eq!(
        (r.groups[0].group_id.as_str(), &r.groups[0].topics),
        ("g", &None)
    );
    assert!(r.require_stable);
}

#[test]
fn a_join_group_protocol_count_beyond_the_frame_is_refused_at_the_count() {
    // JoinGroup v5: group, session timeout, rebalance timeout, member id, instance id (null),
    // protocol type, then a protocol array claiming a million entries.
    let mut w = Writer::new();
    w.string(false, "g");
    w.i32(10_000);
    w.i32(60_000);
    w.string(false, "");
    w.nullable_string(false, None);
    w.string(false, "consumer");
    w.i32(1_000_000);
    w.raw(&[0; 64]);
    let frame = request_frame(11, 5, false, w.as_slice());
    assert!(matches!(
        decode_request(&frame),
        Err(DecodeError::InvalidLength {
            length: 1_000_000,
            ..
        })
    ));
}

fn produce_v8_with_records(records: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.nullable_string(false, None);
    w.i16(-1);
    w.i32(1000);
    w.i32(1);
    w.string(false, "t");
    w.i32(1);
    w.i32(0);
    w.bytes(false, records);
    request_frame(0, 8, false, w.as_slice())
}

fn records_of(frame: &[u8]) -> bytes::Bytes {
    let (_, request) = decode_request(frame).expect("the request itself is well formed");
    let Request::Produce(p) = request else {
        panic!("not a produce request")
    };
    p.topic_data[0].partition_data[0]
        .records
        .clone()
        .expect("records present")
}

#[test]
fn corrupt_record_batches_pass_the_codec_and_fail_validation() {
    let mut batch = vec![0u8; records::BATCH_HEADER_BYTES + 3];
    batch[8..12].copy_from_slice(&(records::BATCH_LENGTH_MIN + 3).to_be_bytes());
    batch[16] = 2;
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(records::validate(&records_of(&produce_v8_with_records(&batch))).is_ok());

    let mut bad_crc = batch.clone();
    bad_crc[records::BATCH_HEADER_BYTES] ^= 1;
    assert!(matches!(
        records::validate(&records_of(&produce_v8_with_records(&bad_crc))),
        Err(records::RecordsError::BadCrc { .. })
    ));

    let mut too_long = batch.clone();
    too_long[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(
        records::validate(&records_of(&produce_v8_with_records(&too_long))),
        Err(records::RecordsError::TruncatedBatch { .. })
    ));

    let mut too_short = batch;
    too_short[8..12].copy_from_slice(&3i32.to_be_bytes());
    assert_eq!(
        records::validate(&records_of(&produce_v8_with_records(&too_short))),
        Err(records::RecordsError::InvalidBatchLength(3))
    );
}

#[test]
fn a_records_length_beyond_the_frame_is_refused_by_the_codec() {
    let mut frame = produce_v8_with_records(&[1, 2, 3]);
    let len_at = frame.len() - 3 - 4;
    frame[len_at..len_at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(
        decode_request(&frame),
        Err(DecodeError::InvalidLength { .. })
    ));
}

/// A valid header for a random supported (api, version), so random bodies reach the decoders.
fn header_strategy() -> impl Strategy<Value = Vec<u8>> {
    let pairs: Vec<(i16, i16, bool)> = ApiKey::ALL
        .iter()
        .flat_map(|&api| {
            api.supported()
                .iter()
                .map(move |v| (api as i16, v, api.is_flexible(v)))
        })
        .collect();
    proptest::sample::select(pairs).prop_map(|(api, v, flex)| request_frame(api, v, flex, &[]))
}

/// Large declared counts in both encodings, to be spliced into random bodies.
fn huge_count() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (1i32 << 16..=i32::MAX).prop_map(|n| n.to_be_bytes().to_vec()),
        (1u32 << 16..=u32::MAX).prop_map(|n| {
            let mut w = Writer::new();
            w.unsigned_varint(n);
            w.into_inner()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_request(&bytes);
        let _ = next_frame(&bytes, 1024);
    }

    #[test]
    fn random_bodies_behind_valid_headers_never_panic(
        header in header_strategy(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut frame = header;
        frame.extend_from_slice(&body);
        if let Ok((h, request)) = decode_request(&frame) {
            // Whatever decodes must re-encode without panicking.
            let _ = encode_request(&h, &request);
        }
    }

    #[test]
    fn large_declared_counts_are_refused_not_allocated(
        header in header_strategy(),
        prefix in proptest::collection::vec(any::<u8>(), 0..24),
        count in huge_count(),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        // Whichever field the count lands in, 64 + 24 bytes cannot hold 65536 elements, so the
        // decoder must fail without ever reserving for them (a panic or abort fails the test).
        let mut frame = header;
        frame.extend_from_slice(&prefix);
        frame.extend_from_slice(&count);
        frame.extend_from_slice(&tail);
        let _ = decode_request(&frame);
    }

    #[test]
    fn bit_flips_in_valid_requests_never_panic(
        index in any::<proptest::sample::Index>(),
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..8), 1..4),
    ) {
        let frames = sample_request_frames_cached();
        let (_, _, frame) = &frames[index.index(frames.len())];
        let mut body = frame[4..].to_vec();
        for (at, bit) in flips {
            let i = at.index(body.len());
            body[i] ^= 1 << bit;
        }
        if let Ok((h, request)) = decode_request(&body) {
            let _ = encode_request(&h, &request);
        }
    }
}

fn sample_request_frames_cached() -> &'static [(ApiKey, i16, Vec<u8>)] {
    static FRAMES: std::sync::OnceLock<Vec<(ApiKey, i16, Vec<u8>)>> = std::sync::OnceLock::new();
    FRAMES.get_or_init(sample_request_frames)
}
