//! Derived state files under the state dir (the ready cache, the write index): a magic
//! tag naming the format and its version, an xxh3 checksum of the body, and the body in
//! postcard. Anything that does not check out reads as absent, so a stale, torn or
//! foreign file can only cost a rebuild, never a wrong answer.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use crate::atomic::write_atomic;

/// `magic`, checksum, body.
pub fn encode<T: Serialize>(magic: &[u8; 8], value: &T) -> Option<Vec<u8>> {
    let body = postcard::to_allocvec(value).ok()?;
    let mut out = Vec::with_capacity(body.len() + 16);
    out.extend_from_slice(magic);
    out.extend_from_slice(&xxh3_64(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Some(out)
}

/// The value, if `bytes` carry `magic` and an intact body.
pub fn decode<T: DeserializeOwned>(magic: &[u8; 8], bytes: &[u8]) -> Option<T> {
    let (tag, rest) = bytes.split_at_checked(magic.len())?;
    let (sum, body) = rest.split_at_checked(8)?;
    if tag != magic || xxh3_64(body).to_le_bytes() != sum {
        return None;
    }
    postcard::from_bytes(body).ok()
}

/// Writes `bytes` to `path` atomically, creating the directory. Failures (read-only
/// filesystem, no permission) are ignored: derived state is never required.
pub fn save(path: &Path, bytes: &[u8]) {
    if let Some(dir) = path.parent() {
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
    }
    let _ = write_atomic(path, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage_and_foreign_tags() {
        let bytes = encode(b"TESTFMT1", &vec![1u32, 2, 3]).expect("encode");
        assert_eq!(decode::<Vec<u32>>(b"TESTFMT1", &bytes), Some(vec![1, 2, 3]));
        assert_eq!(decode::<Vec<u32>>(b"OTHERFMT", &bytes), None);
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(decode::<Vec<u32>>(b"TESTFMT1", &flipped), None);
        assert_eq!(decode::<Vec<u32>>(b"TESTFMT1", &bytes[..10]), None);
    }
}
