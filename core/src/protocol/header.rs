//! Request and response headers, and the rules for which header version goes with which
//! (API, version).
//!
//! Owns: request header v1 (classic) and v2 (flexible: tagged fields after the client id), and
//! response header v0 and v1 (flexible: tagged fields). Does not own the v0 request header (only
//! ControlledShutdown v0 used it, which Sluice does not implement), and does not decide what to do
//! with an unsupported version beyond the ApiVersions rule below.
//!
//! Two quirks from the schemas: the client id stays a classic nullable string (i16 length) even
//! in header v2 (`"flexibleVersions": "none"` on that field), and ApiVersions responses always use
//! header v0, because a client reads the header before it knows which ApiVersions version the
//! broker answered with.

use super::api::ApiKey;
use super::error::DecodeError;
use super::wire::{Reader, Writer};

/// A decoded request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

/// A response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    pub correlation_id: i32,
}

/// The request header version for `api` at `version`: 2 when that version is flexible, else 1.
///
/// Defined for versions Sluice does not implement too (by the schema's flexible range), because
/// an ApiVersions request at an unknown version must still have its header read.
pub fn request_header_version(api: ApiKey, version: i16) -> i16 {
    if api.is_flexible(version) {
        2
    } else {
        1
    }
}

/// The response header version for `api` at `version`: 1 when flexible, except ApiVersions.
pub fn response_header_version(api: ApiKey, version: i16) -> i16 {
    if api.is_flexible(version) && api != ApiKey::ApiVersions {
        1
    } else {
        0
    }
}

impl RequestHeader {
    /// Decodes a header. An unknown API key, or a version outside the supported range of any API
    /// but ApiVersions, is an error (its body could not be read). An ApiVersions request at any
    /// version decodes, so that the broker can answer it with the v0 fallback.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key = r.i16()?;
        let api_key = ApiKey::from_i16(key).ok_or(DecodeError::UnknownApiKey(key))?;
        let api_version = r.i16()?;
        if api_key != ApiKey::ApiVersions {
            api_key.version(api_version)?;
        }
        let correlation_id = r.i32()?;
        let client_id = r.nullable_string(false)?;
        if request_header_version(api_key, api_version) >= 2 {
            // Header v2 defines no tagged fields of its own; all are skipped.
            r.tagged_fields(|_, _| Ok(false))?;
        }
        Ok(RequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id,
        })
    }

    pub fn encode(&self, w: &mut Writer) {
        w.i16(self.api_key as i16);
        w.i16(self.api_version);
        w.i32(self.correlation_id);
        w.nullable_string(false, self.client_id.as_deref());
        if request_header_version(self.api_key, self.api_version) >= 2 {
            w.tagged_fields(&[]);
        }
    }
}

impl ResponseHeader {
    pub fn decode(r: &mut Reader<'_>, header_version: i16) -> Result<Self, DecodeError> {
        let correlation_id = r.i32()?;
        if header_version >= 1 {
            r.tagged_fields(|_, _| Ok(false))?;
        }
        Ok(ResponseHeader { correlation_id })
    }

    pub fn encode(&self, w: &mut Writer, header_version: i16) {
        w.i32(self.correlation_id);
        if header_version >= 1 {
            w.tagged_fields(&[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flexible_requests_use_header_v2_and_others_header_v1() {
        assert_eq!(request_header_version(ApiKey::Metadata, 8), 1);
        assert_eq!(request_header_version(ApiKey::Metadata, 9), 2);
        assert_eq!(request_header_version(ApiKey::DescribeCluster, 0), 2);
        assert_eq!(request_header_version(ApiKey::ApiVersions, 4), 2);
    }

    #[test]
    fn api_versions_responses_always_use_header_v0() {
        assert_eq!(response_header_version(ApiKey::ApiVersions, 3), 0);
        assert_eq!(response_header_version(ApiKey::Metadata, 9), 1);
        assert_eq!(response_header_version(ApiKey::Metadata, 8), 0);
    }

    #[test]
    fn the_client_id_is_a_classic_string_even_in_header_v2() {
        let header = RequestHeader {
            api_key: ApiKey::Metadata,
            api_version: 12,
            correlation_id: 7,
            client_id: Some("abc".into()),
        };
        let mut w = Writer::new();
        header.encode(&mut w);
        // key, version, correlation id, i16 length 3, "abc", empty tagged fields.
        assert_eq!(
            w.as_slice(),
            &[0, 3, 0, 12, 0, 0, 0, 7, 0, 3, b'a', b'b', b'c', 0]
        );
        assert_eq!(
            RequestHeader::decode(&mut Reader::new(w.as_slice())),
            Ok(header)
        );
    }

    #[test]
    fn an_api_versions_header_at_an_unknown_version_still_decodes() {
        let header = RequestHeader {
            api_key: ApiKey::ApiVersions,
            api_version: 4,
            correlation_id: 1,
            client_id: None,
        };
        let mut w = Writer::new();
        header.encode(&mut w);
        assert_eq!(
            RequestHeader::decode(&mut Reader::new(w.as_slice())),
            Ok(header)
        );
    }

    #[test]
    fn a_header_for_an_unsupported_version_of_another_api_is_refused() {
        let bytes = [0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff];
        assert_eq!(
            RequestHeader::decode(&mut Reader::new(&bytes)),
            Err(DecodeError::UnsupportedVersion {
                api: ApiKey::Produce,
                version: 2
            })
        );
    }
}
