//! The backlog file memory-mapped for whole-file reads (and the whole-file write path's
//! read under the lock), handing its pages back as the parse moves on.
//!
//! A cold read of a large backlog used to hold the whole file in a buffer (112 MB at
//! 100,000 issues) next to the parsed issues. Mapped instead, each block's pages are
//! released once it is parsed ([`Source::done_with`]): the page cache keeps them, and the
//! few lines a command prints later are read again with `pread` ([`Source::copy_range`]),
//! so the process's resident set holds only the block being parsed.
//!
//! Every writer of the backlog (spool, bd, git checkouts) replaces the file by rename, so
//! a mapped file's contents do not change under a reader. A process that truncated the
//! file in place while it was being read would make the reader fault (SIGBUS); small
//! files are therefore simply read, and only large ones, whose buffer is worth saving,
//! are mapped.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use memmap2::{Advice, Mmap, UncheckedAdvice};
use spool_core::beads::Source;
use xxhash_rust::xxh3::Xxh3;

/// Files smaller than this are read into memory rather than mapped.
const MAP_MIN: u64 = 8 << 20;

/// The granularity of a release: the largest page-cache folio a fault may map.
const RELEASE_ALIGN: usize = 2 << 20;

/// Bytes hashed between two releases by [`hash_released`].
const HASH_STEP: usize = 8 << 20;

/// A read-only map of a whole file.
pub struct Mapped {
    map: Mmap,
    /// The mapped file, for reads that should not map pages back in.
    file: File,
}

impl Mapped {
    /// Gives the pages of `range` back to the kernel; reading them again faults them
    /// back in from the page cache (or the disk), with the same contents.
    fn release(&self, range: std::ops::Range<usize>) {
        if range.is_empty() {
            return;
        }
        // Whole 2 MB regions: the kernel may have mapped a large page-cache folio around
        // the bytes read, and dropping more than was asked only costs a later fault.
        let start = range.start & !(RELEASE_ALIGN - 1);
        let end = range
            .end
            .div_ceil(RELEASE_ALIGN)
            .saturating_mul(RELEASE_ALIGN)
            .min(self.map.len());
        let range = start..end;
        // SAFETY: the map is a read-only shared map of a file, never written through:
        // MADV_DONTNEED only drops this process's page table entries, and the next
        // access reads the same file pages again. No reference into the map observes a
        // change.
        #[allow(unsafe_code)]
        let _ = unsafe {
            self.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, range.start, range.len())
        };
    }
}

impl Source for Mapped {
    fn bytes(&self) -> &[u8] {
        &self.map
    }

    fn done_with(&self, range: std::ops::Range<usize>) {
        self.release(range);
    }

    /// Read with `pread`: the page cache serves it without mapping the pages into this
    /// process (so they do not count against its memory, and nothing must be released).
    fn copy_range(&self, range: std::ops::Range<usize>) -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        if range.end > self.map.len() || range.start > range.end {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let mut buf = vec![0; range.len()];
        self.file.read_exact_at(&mut buf, range.start as u64)?;
        Ok(buf)
    }
}

/// The contents of the open `file` of `size` bytes (its size when opened): mapped when
/// large, read when small.
pub fn source_of(mut file: &File, path: &Path, size: u64) -> Result<Arc<dyn Source>> {
    if size >= MAP_MIN {
        // SAFETY: see the module documentation: writers replace the file by rename, so
        // the mapped contents stay those of the inode opened here.
        #[allow(unsafe_code)]
        let map =
            unsafe { Mmap::map(file) }.with_context(|| format!("mapping {}", path.display()))?;
        if map.len() as u64 == size {
            // The page cache may hold the file in 2 MB folios, which a fault would map
            // whole: printing 100 lines spread over the file then made 100+ MB resident
            // again. Small pages keep a fault to the lines read.
            let _ = map.advise(Advice::NoHugePage);
            let file = file
                .try_clone()
                .with_context(|| format!("reading {}", path.display()))?;
            return Ok(Arc::new(Mapped { map, file }));
        }
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(Arc::new(bytes))
}

/// xxh3 of all of `source`'s bytes, as [`xxhash_rust::xxh3::xxh3_64`] of them would be,
/// telling the source each step is done so a map does not stay resident.
pub fn hash_released(source: &dyn Source) -> u64 {
    let bytes = source.bytes();
    let mut h = Xxh3::new();
    let mut at = 0;
    while at < bytes.len() {
        let end = (at + HASH_STEP).min(bytes.len());
        h.update(&bytes[at..end]);
        source.done_with(at..end);
        at = end;
    }
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_file_reads_the_same_after_its_pages_are_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.jsonl");
        let line = b"{\"id\":\"x-1\",\"title\":\"a line of a large file\"}\n";
        let content: Vec<u8> = line
            .iter()
            .copied()
            .cycle()
            .take(line.len() * ((MAP_MIN as usize) / line.len() + 10))
            .collect();
        std::fs::write(&path, &content).expect("write");
        let file = File::open(&path).expect("open");
        let source = source_of(&file, &path, content.len() as u64).expect("source");
        assert_eq!(
            hash_released(&*source),
            xxhash_rust::xxh3::xxh3_64(&content)
        );
        // Released pages read back the file's bytes.
        assert!(source.bytes() == content.as_slice());
        let at = content.len() - line.len() - 3;
        assert_eq!(
            source.copy_range(at..at + line.len()).expect("reads"),
            content[at..at + line.len()]
        );
        assert!(source.copy_range(at..content.len() + 1).is_err());
    }

    #[test]
    fn a_small_file_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("small.jsonl");
        std::fs::write(&path, b"{}\n").expect("write");
        let file = File::open(&path).expect("open");
        let source = source_of(&file, &path, 3).expect("source");
        assert_eq!(source.bytes(), b"{}\n");
        assert_eq!(hash_released(&*source), xxhash_rust::xxh3::xxh3_64(b"{}\n"));
    }
}
