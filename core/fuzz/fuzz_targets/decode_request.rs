//! Fuzz target: any bytes as a request frame (size prefix already stripped). Decoding must never
//! panic; whatever decodes must re-encode, and the re-encoding must decode to the same header
//! and request (decoding is lenient only where values are unchanged: non-minimal varints,
//! non-zero booleans, unknown tagged fields).
//!
//! Owns nothing else; the deterministic hostile-frame suite lives in `core/src/protocol/tests`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::protocol::{decode_request, encode_request};

fuzz_target!(|data: &[u8]| {
    if let Ok((header, request)) = decode_request(data) {
        let frame = encode_request(&header, &request);
        let (header_again, request_again) =
            decode_request(&frame[4..]).expect("a re-encoded request decodes");
        assert_eq!(header_again, header);
        assert_eq!(request_again, request);
    }
});
