//! Decoders for Kafka's four compression codecs, given to the core where it needs the records
//! inside a compressed batch (exact ListOffsets by timestamp) and used by `sluice consume`.
//!
//! Formats, as Kafka clients write them: gzip (RFC 1952 stream), snappy (either Kafka's
//! xerial framing — magic, versions, then length-prefixed blocks — or one raw block), lz4 (the
//! LZ4 frame format), zstd (a zstd frame). Output is capped so a hostile batch cannot make the
//! broker allocate without bound.

use sluice_core::protocol::record::Decompressor;
use sluice_core::protocol::records::Compression;
use std::io::Read;

/// Largest decompressed records section accepted (Kafka's default max.message.bytes is about
/// 1 MiB; compression ratios above 64x are not plausible for real batches).
const MAX_DECOMPRESSED: u64 = 64 << 20;
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

#[derive(Debug, Default, Clone, Copy)]
pub struct Codecs;

fn read_capped(mut r: impl Read, what: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{what}: {e}"))?;
    if n as u64 > MAX_DECOMPRESSED {
        return Err(format!(
            "{what}: decompresses to more than {MAX_DECOMPRESSED} bytes"
        ));
    }
    Ok(out)
}

fn snappy_block(data: &[u8]) -> Result<Vec<u8>, String> {
    let len = snap::raw::decompress_len(data).map_err(|e| format!("snappy: {e}"))?;
    if len as u64 > MAX_DECOMPRESSED {
        return Err(format!("snappy: block claims {len} bytes"));
    }
    snap::raw::Decoder::new()
        .decompress_vec(data)
        .map_err(|e| format!("snappy: {e}"))
}

fn snappy(data: &[u8]) -> Result<Vec<u8>, String> {
    let Some(rest) = data.strip_prefix(XERIAL_MAGIC) else {
        return snappy_block(data);
    };
    // Two big-endian i32 versions, then (i32 length, block) pairs.
    let mut rest = rest.get(8..).ok_or("snappy: truncated xerial header")?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = rest
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or("snappy: truncated xerial block length")?;
        let block = rest
            .get(4..4 + len)
            .ok_or("snappy: truncated xerial block")?;
        out.extend_from_slice(&snappy_block(block)?);
        if out.len() as u64 > MAX_DECOMPRESSED {
            return Err("snappy: decompresses to too many bytes".into());
        }
        rest = &rest[4 + len..];
    }
    Ok(out)
}

impl Decompressor for Codecs {
    fn decompress(&self, codec: Compression, data: &[u8]) -> Result<Vec<u8>, String> {
        match codec {
            Compression::None => Ok(data.to_vec()),
            Compression::Gzip => read_capped(flate2::read::GzDecoder::new(data), "gzip"),
            Compression::Snappy => snappy(data),
            Compression::Lz4 => read_capped(lz4_flex::frame::FrameDecoder::new(data), "lz4"),
            Compression::Zstd => {
                let d = ruzstd::decoding::StreamingDecoder::new(data)
                    .map_err(|e| format!("zstd: {e}"))?;
                read_capped(d, "zstd")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn every_codec_round_trips_and_garbage_is_an_error() {
        let plain: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(Codecs.decompress(Compression::Gzip, &gz).unwrap(), plain);
        let raw = snap::raw::Encoder::new().compress_vec(&plain).unwrap();
        assert_eq!(Codecs.decompress(Compression::Snappy, &raw).unwrap(), plain);
        let mut xerial = XERIAL_MAGIC.to_vec();
        xerial.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        for chunk in plain.chunks(7000) {
            let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
            xerial.extend_from_slice(&(block.len() as u32).to_be_bytes());
            xerial.extend_from_slice(&block);
        }
        assert_eq!(
            Codecs.decompress(Compression::Snappy, &xerial).unwrap(),
            plain
        );
        let mut lz = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz.write_all(&plain).unwrap();
        let lz = lz.finish().unwrap();
        assert_eq!(Codecs.decompress(Compression::Lz4, &lz).unwrap(), plain);
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert!(
                Codecs.decompress(codec, b"\x00\x01garbage").is_err(),
                "{codec:?}"
            );
        }
    }
}
