//! The ready cache: the [`ReadyTable`] of the backlog, kept in the state dir between runs
//! so that `ready` on an unchanged file reads a few megabytes instead of parsing the
//! whole backlog.
//!
//! A cache is only ever an optimisation: every doubt is a miss, and a miss means the
//! caller parses the file as if there were no cache. It is trusted when the file's
//! `(dev, inode, size, mtime, ctime)` equal the ones recorded when the cache was built
//! and the file was already older than [`RACY_SLACK`] at that moment. A file modified
//! within that window of the build (git's "racy" case: a later same-size edit inside the
//! filesystem's timestamp granularity would leave the stat unchanged) is verified by
//! content hash instead, and the cache is re-stamped once the file is old enough. The
//! ctime cannot be set from user space, so restoring an mtime after an edit does not
//! hide it. The cache file carries a checksum of its own body, so a torn or corrupt file
//! is a miss too. Cache writes are atomic (temp file + rename); a failure to write one is
//! ignored.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use spool_core::beads::ready::ReadyTable;
use spool_core::beads::{Diagnostic, LineShape, Severity, Source};
use xxhash_rust::xxh3::xxh3_64;

use crate::state_file;
use crate::workspace::Workspace;

/// First bytes of a cache file; the number changes whenever the layout does.
const MAGIC: &[u8; 8] = b"SPOOLRC3";

/// How close to the cache's build time a file change must be to make the stat key
/// untrustworthy: above every common filesystem's timestamp granularity (FAT's is 2 s)
/// and the coarse kernel clock's lag.
pub const RACY_SLACK: Duration = Duration::from_secs(3);

/// Set to a non-empty value to neither read nor write the cache.
pub const DISABLE_ENV: &str = "SPOOL_NO_CACHE";

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Unix nanoseconds.
    pub mtime: i128,
    pub ctime: i128,
}

impl FileKey {
    pub fn of(meta: &std::fs::Metadata) -> FileKey {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }

    pub fn stat(path: &Path) -> Option<FileKey> {
        std::fs::metadata(path).ok().map(|m| FileKey::of(&m))
    }

    /// Whether a change at the file's latest timestamp could hide from a stat taken at
    /// `at` (unix nanoseconds).
    pub(crate) fn racy_at(&self, at: i128) -> bool {
        self.mtime.max(self.ctime) + RACY_SLACK.as_nanos() as i128 > at
    }
}

/// The time now in unix nanoseconds.
pub(crate) fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// The backlog bytes as read, with what identifies them, for building a cache.
pub struct Observed {
    pub(crate) key: FileKey,
    /// The content hash, when the key alone cannot be trusted (see [`RACY_SLACK`]).
    hash: Option<u64>,
    /// When the file was stat'ed, before it was read.
    pub(crate) stat_at: i128,
}

/// Reads the file at `path` and, when it is a regular file that did not change while
/// being read, how to recognise exactly these bytes later.
pub fn read_observed(path: &Path) -> anyhow::Result<(Arc<dyn Source>, Option<Observed>)> {
    let stat_at = now_nanos();
    let before = FileKey::stat(path);
    let source = crate::backlog::read_source(path)?;
    let observed = match (before, FileKey::stat(path)) {
        (Some(a), Some(b)) if a == b && a.size == source.bytes().len() as u64 && enabled() => {
            Some(Observed {
                key: a,
                // Only a racy key is ever verified by content.
                hash: a
                    .racy_at(stat_at)
                    .then(|| crate::mapped::hash_released(&*source)),
                stat_at,
            })
        }
        _ => None,
    };
    Ok((source, observed))
}

pub(crate) fn enabled() -> bool {
    std::env::var_os(DISABLE_ENV).is_none_or(|v| v.is_empty())
}

/// A line's place in the backlog file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: u64,
    pub len: u64,
}

/// A warning the load printed, to print again when answering from the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

/// The cached answer material for `ready`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadyCache {
    key: FileKey,
    /// Set when the key was racy when taken.
    hash: Option<u64>,
    /// When the key was taken (unix nanoseconds): decides whether the key is racy.
    stamped_at: i128,
    pub warnings: Vec<Warning>,
    pub table: ReadyTable,
    /// The line of each row of `table`, for rendering the issues printed.
    pub spans: Vec<Span>,
}

impl ReadyCache {
    /// Builds the cache content from a parsed file and its table. `None` when the file
    /// was not observed (changed while read, or caching is off).
    /// `spans` are the lines of the issues the table's graph was built from (see
    /// [`issue_spans`]).
    pub fn new(
        observed: Option<&Observed>,
        spans: &[Span],
        diagnostics: &[Diagnostic],
        table: ReadyTable,
    ) -> Option<ReadyCache> {
        let observed = observed?;
        let spans = table
            .rows
            .iter()
            .map(|r| spans.get(r.ix as usize).copied())
            .collect::<Option<Vec<Span>>>()?;
        Some(ReadyCache {
            key: observed.key,
            hash: observed.hash,
            stamped_at: observed.stat_at,
            warnings: diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Warning)
                .map(|d| Warning {
                    line: d.line,
                    message: d.message.clone(),
                })
                .collect(),
            table,
            spans,
        })
    }

    /// The cache file's bytes: magic, checksum of the body, body.
    fn encode(&self) -> Option<Vec<u8>> {
        state_file::encode(MAGIC, self)
    }

    fn decode(bytes: &[u8]) -> Option<ReadyCache> {
        state_file::decode::<ReadyCache>(MAGIC, bytes)
            .filter(|c| c.spans.len() == c.table.rows.len())
    }
}

/// The byte span of each issue in effect, in the order of
/// [`BeadsFile::issues`](spool_core::beads::BeadsFile::issues) (the graph's order), from
/// the file's line shapes and its duplicated ids (with 1-based line numbers).
pub fn issue_spans<'a>(
    shapes: impl Iterator<Item = LineShape<'a>>,
    duplicates: impl Iterator<Item = (&'a str, Vec<usize>)>,
) -> Vec<Span> {
    // Earlier lines of a duplicated id are not in effect.
    let superseded: std::collections::HashSet<usize> = duplicates
        .flat_map(|(_, mut lines)| {
            lines.sort_unstable();
            lines.pop();
            lines
        })
        .collect();
    let mut spans = Vec::new();
    let mut offset = 0u64;
    for (i, line) in shapes.enumerate() {
        if line.id.is_some() && !superseded.contains(&(i + 1)) {
            spans.push(Span {
                start: offset,
                len: line.len as u64,
            });
        }
        offset += (line.len + line.ending.as_bytes().len()) as u64;
    }
    spans
}

/// Where the ready cache of `ws` lives.
pub fn path(ws: &Workspace) -> PathBuf {
    ws.state_dir().join("ready-cache.bin")
}

/// Writes the cache; failures (read-only filesystem, no permission) are ignored because
/// the cache is never required.
pub fn save(ws: &Workspace, cache: &ReadyCache) {
    if !enabled() {
        return;
    }
    if let Some(bytes) = cache.encode() {
        state_file::save(&path(ws), &bytes);
    }
}

/// The cache of `ws` if it certainly describes the backlog file as it is now, with the
/// file open: lines read through this handle come from the very file that was checked,
/// even if it is replaced meanwhile.
pub fn load(ws: &Workspace) -> Option<(ReadyCache, File)> {
    if !enabled() {
        return None;
    }
    let bytes = std::fs::read(path(ws)).ok()?;
    let mut cache = ReadyCache::decode(&bytes)?;
    let now = now_nanos();
    let file = File::open(ws.issues_path()).ok()?;
    let key = FileKey::of(&file.metadata().ok()?);
    if key != cache.key {
        return None;
    }
    if key.racy_at(cache.stamped_at) {
        let mut content = Vec::with_capacity(key.size as usize);
        (&file).read_to_end(&mut content).ok()?;
        let after = FileKey::of(&file.metadata().ok()?);
        if after != key || content.len() as u64 != key.size || cache.hash != Some(xxh3_64(&content))
        {
            return None;
        }
        // Verified by content; once the file is old enough, a fresh stamp lets later
        // runs trust the stat alone.
        if !key.racy_at(now) {
            cache.stamped_at = now;
            save(ws, &cache);
        }
    }
    Some((cache, file))
}

/// Reads the lines at `spans` from the backlog file.
pub fn read_lines(file: &File, spans: &[Span]) -> Option<Vec<Vec<u8>>> {
    spans
        .iter()
        .map(|s| {
            let mut buf = vec![0u8; usize::try_from(s.len).ok()?];
            file.read_exact_at(&mut buf, s.start).ok()?;
            Some(buf)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_or_foreign_bytes_do_not_decode() {
        let cache = ReadyCache {
            key: FileKey {
                dev: 1,
                ino: 2,
                size: 3,
                mtime: 4,
                ctime: 5,
            },
            hash: Some(6),
            stamped_at: 7,
            warnings: vec![Warning {
                line: 1,
                message: "m".into(),
            }],
            table: ReadyTable::default(),
            spans: Vec::new(),
        };
        let bytes = cache.encode().expect("encodes");
        assert_eq!(ReadyCache::decode(&bytes), Some(cache));
        for cut in [0, 7, 16, bytes.len() - 1] {
            assert_eq!(ReadyCache::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(ReadyCache::decode(&flipped), None);
        let mut other = bytes;
        other[..8].copy_from_slice(b"SPOOLRC0");
        assert_eq!(ReadyCache::decode(&other), None);
    }

    #[test]
    fn recent_change_is_racy() {
        let key = FileKey {
            dev: 0,
            ino: 0,
            size: 0,
            mtime: 10_000_000_000,
            ctime: 10_000_000_000,
        };
        assert!(key.racy_at(10_000_000_000));
        assert!(key.racy_at(12_000_000_000));
        assert!(!key.racy_at(10_000_000_000 + RACY_SLACK.as_nanos() as i128 + 1));
    }
}
