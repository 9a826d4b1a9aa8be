//! The Kafka wire protocol: frames, headers, and the request and response bodies of every API
//! Sluice implements, plus RecordBatch v2 header handling.
//!
//! Owns bytes <-> typed messages, sans-IO: the driver finds frames with [`frame::next_frame`],
//! calls [`decode_request`], hands the request to the broker, and writes what
//! [`encode_response`] returns. It does not handle requests, choose versions for a client, or
//! parse individual records (record data stays opaque `Bytes`).
//!
//! Hostile input is the normal case: decoding never panics, returns a typed [`DecodeError`] for
//! every malformed input, and allocates in proportion to the bytes actually present (see
//! `wire.rs` for the bound). Encoding cannot fail; encoding at a version Sluice does not
//! implement is a caller bug and panics.
//!
//! Layout: `wire.rs` (primitives), `macros.rs` (schema-to-code), `messages/` (one module per
//! API), `api.rs` (the API/version table and the `Request`/`Response` enums), `header.rs`,
//! `frame.rs`, `records.rs`.

pub mod api;
pub mod codes;
pub mod error;
pub mod frame;
pub mod header;
pub(crate) mod macros;
pub mod messages;
pub mod record;
pub mod records;
pub mod wire;

#[cfg(test)]
mod tests;

pub use api::{ApiKey, Message, Request, Response, VersionRange};
pub use error::DecodeError;
pub use frame::{next_frame, FrameStatus, DEFAULT_MAX_FRAME_BYTES};
pub use header::{RequestHeader, ResponseHeader};
pub use wire::{Reader, Version, Writer};

use messages::api_versions::{ApiVersion, ApiVersionsResponse};

/// Decodes one request frame (without its size prefix): header, then body; trailing bytes
/// after a complete body are ignored, as Kafka does.
///
/// An ApiVersions request at a version Sluice does not implement is not an error: it decodes to
/// [`Request::UnsupportedApiVersions`], to be answered with [`api_versions_fallback_response`].
pub fn decode_request(frame: &[u8]) -> Result<(RequestHeader, Request), DecodeError> {
    let mut r = Reader::new(frame);
    let header = RequestHeader::decode(&mut r)?;
    if header.api_key == ApiKey::ApiVersions
        && !ApiKey::ApiVersions.supported().contains(header.api_version)
    {
        // Kafka does the same: the body of an unknown version is not parsed at all.
        return Ok((header, Request::UnsupportedApiVersions));
    }
    let body = Request::decode_body(header.api_key, &mut r, header.api_version)?;
    // Bytes after a complete body are ignored, as Kafka's broker does: librdkafka 2.x writes
    // the all-topics Metadata request's null topic array as four bytes in flexible versions
    // (see `librdkafka_all_topics_metadata_v12_decodes`), and Kafka accepts it.
    Ok((header, body))
}

/// Encodes a request frame, size prefix included (for clients and tests).
///
/// # Panics
///
/// If the body's API differs from the header's, or the version is not supported.
pub fn encode_request(header: &RequestHeader, request: &Request) -> Vec<u8> {
    assert_eq!(
        header.api_key,
        request.api_key(),
        "header and body disagree"
    );
    let mut w = Writer::new();
    w.i32(0);
    header.encode(&mut w);
    request.encode_body(&mut w, header.api_version);
    finish_frame(w)
}

/// Encodes a response frame, size prefix included, with the header version the API and version
/// call for (always v0 for ApiVersions).
///
/// # Panics
///
/// If `api_version` is not supported for the response's API: Sluice answers only requests it
/// decoded, so this is a broker bug.
pub fn encode_response(correlation_id: i32, api_version: i16, response: &Response) -> Vec<u8> {
    let header_version = header::response_header_version(response.api_key(), api_version);
    let mut w = Writer::new();
    w.i32(0);
    ResponseHeader { correlation_id }.encode(&mut w, header_version);
    response.encode_body(&mut w, api_version);
    finish_frame(w)
}

/// Decodes a response frame (without its size prefix) to a request sent as `api` at
/// `api_version` (for clients and tests).
pub fn decode_response(
    api: ApiKey,
    api_version: i16,
    frame: &[u8],
) -> Result<(ResponseHeader, Response), DecodeError> {
    api.version(api_version)?;
    let mut r = Reader::new(frame);
    let header = ResponseHeader::decode(&mut r, header::response_header_version(api, api_version))?;
    let body = Response::decode_body(api, &mut r, api_version)?;
    r.finish()?;
    Ok((header, body))
}

fn finish_frame(mut w: Writer) -> Vec<u8> {
    let size = w.len() - frame::SIZE_PREFIX_BYTES;
    w.patch_i32(
        0,
        i32::try_from(size).expect("a frame Sluice builds fits in i32"),
    );
    w.into_inner()
}

/// Every API Sluice implements with its supported version range, in key order: the list an
/// ApiVersions response carries.
pub fn supported_api_versions() -> Vec<ApiVersion> {
    ApiKey::ALL
        .iter()
        .map(|&api| ApiVersion {
            api_key: api as i16,
            min_version: api.supported().min,
            max_version: api.supported().max,
        })
        .collect()
}

/// The answer to an ApiVersions request at a version Sluice does not implement: a v0 response
/// (header v0) with UNSUPPORTED_VERSION and the supported list, from which the client picks a
/// version it shares and retries (KIP-511). Size prefix included.
pub fn api_versions_fallback_response(correlation_id: i32) -> Vec<u8> {
    let body = ApiVersionsResponse {
        error_code: codes::UNSUPPORTED_VERSION,
        api_keys: supported_api_versions(),
        ..ApiVersionsResponse::default()
    };
    encode_response(correlation_id, 0, &Response::ApiVersions(body))
}
