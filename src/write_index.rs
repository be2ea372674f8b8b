//! The write index: every issue's id and line span in the backlog file, kept in the state
//! dir next to the ready cache, so that a write to one issue of an unchanged, fully
//! readable backlog parses a window of lines around its target instead of the whole file.
//!
//! Only a file without unreadable lines gets an index, so a write that uses one needs no
//! whole-file check; entries keep their line numbers, so the duplicate-id warnings a load
//! prints are printed again, and a duplicated id is left to the whole-file path. It is trusted only when the file's
//! `(dev, inode, size, mtime, ctime)` equal the recorded ones *and* the bytes read under
//! the write lock hash to the recorded xxh3: a writer reads every byte anyway to copy it
//! out, so it can afford the stronger check. Any doubt is a miss, and a miss is the
//! ordinary whole-file write.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use serde::{Deserialize, Serialize};
use spool_core::beads::node::{Node, Record, Skimmed};
use spool_core::beads::skim::Skim;
use spool_core::beads::{duplicate_warnings, BeadsFile, Diagnostic, LineShape, Severity};
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use crate::backlog::CommentIds;
use crate::cache::{enabled, FileKey};
use crate::state_file;
use crate::workspace::Workspace;

/// First bytes of an index file; the number changes whenever the layout does.
const MAGIC: &[u8; 8] = b"SPOOLWI3";

/// One issue line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    /// Byte offset of the line's first byte.
    pub start: u64,
    /// The line's length without its terminator.
    pub len: u64,
    /// 1-based line number.
    pub line: usize,
    /// Tombstones are not found by id resolution.
    pub tombstone: bool,
    /// The id is on several lines (an edit of it is refused with all of them named).
    pub duplicated: bool,
    /// Some line has a dependency on this id (when false, no issue depends on it: a
    /// write that needs the issues with edges to it need not look for them).
    pub mentioned: bool,
}

/// Every issue line of one version of the backlog file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteIndex {
    key: FileKey,
    /// xxh3 of the whole file.
    hash: u64,
    pub entries: Vec<Entry>,
    /// How the next comment is numbered; `None` when the file has a duplicated id (a
    /// window could not tell which line's comments count).
    pub comment_ids: Option<CommentIds>,
}

/// Feeds written bytes to a hasher.
struct HashWriter(Xxh3);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// xxh3 of the bytes `file` writes, as [`xxh3_64`] of them would be.
pub fn file_hash<N: Record>(file: &BeadsFile<N>) -> u64 {
    let mut h = HashWriter(Xxh3::new());
    file.write_to(&mut h)
        .expect("writing to a hasher cannot fail");
    h.0.digest()
}

/// The issue lines among `shapes`, with offsets counted from `base` and line numbers
/// from `first_line`; `duplicated` says which ids are on several lines of the whole file.
pub fn entries_of<'a>(
    shapes: impl Iterator<Item = LineShape<'a>>,
    base: u64,
    first_line: usize,
    duplicated: &dyn Fn(&str) -> bool,
    mentioned: &dyn Fn(&str) -> bool,
) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut offset = base;
    for (n, line) in shapes.enumerate() {
        let len = line.len as u64;
        if let Some(id) = line.id {
            entries.push(Entry {
                id: id.to_string(),
                start: offset,
                len,
                line: first_line + n,
                tombstone: line.tombstone,
                duplicated: duplicated(id),
                mentioned: mentioned(id),
            });
        }
        offset += len + line.ending.as_bytes().len() as u64;
    }
    entries
}

impl WriteIndex {
    /// The index of `file`, whose bytes on disk have `key`. `None` when a line is
    /// unreadable: only a file every line of which is known to be readable may be
    /// rewritten without a whole-file parse.
    pub fn build(
        key: FileKey,
        file: &BeadsFile<Skimmed>,
        diagnostics: &[Diagnostic],
    ) -> Option<Self> {
        let targets = file
            .issues()
            .flat_map(|i| (0..i.dep_count()).map(move |d| i.dep(d).target));
        let comments = (file.duplicates().next().is_none()).then(|| CommentIds::of(file));
        WriteIndex::of_lines(
            key,
            diagnostics,
            || file_hash(file),
            file.shapes(),
            file.duplicates().map(|(id, _)| id),
            targets,
        )
        .map(|index| WriteIndex {
            comment_ids: comments,
            ..index
        })
    }

    /// [`WriteIndex::build`] of a skimmed file.
    pub fn build_skim(key: FileKey, skim: &Skim, diagnostics: &[Diagnostic]) -> Option<Self> {
        let targets = skim
            .issues()
            .flat_map(|i| (0..i.dep_count()).map(move |d| i.dep(d).target));
        let comments = (skim.duplicates().next().is_none()).then(|| CommentIds::of_skim(skim));
        WriteIndex::of_lines(
            key,
            diagnostics,
            || crate::mapped::hash_released(&**skim.source()),
            skim.shapes(),
            skim.duplicates().map(|(id, _)| id),
            targets,
        )
        .map(|index| WriteIndex {
            comment_ids: comments,
            ..index
        })
    }

    fn of_lines<'a>(
        key: FileKey,
        diagnostics: &[Diagnostic],
        hash: impl FnOnce() -> u64,
        shapes: impl Iterator<Item = LineShape<'a>>,
        duplicated: impl Iterator<Item = &'a str>,
        targets: impl Iterator<Item = &'a str>,
    ) -> Option<Self> {
        if diagnostics.iter().any(|d| d.severity != Severity::Warning) {
            return None;
        }
        let dups: HashSet<&str> = duplicated.collect();
        let targets: HashSet<&str> = targets.collect();
        Some(WriteIndex {
            key,
            hash: hash(),
            entries: entries_of(shapes, 0, 1, &|id| dups.contains(id), &|id| {
                targets.contains(id)
            }),
            comment_ids: None,
        })
    }

    /// An index of the same shape for another version of the file.
    pub fn rewritten(
        key: FileKey,
        hash: u64,
        entries: Vec<Entry>,
        comment_ids: Option<CommentIds>,
    ) -> Self {
        WriteIndex {
            key,
            hash,
            entries,
            comment_ids,
        }
    }

    /// The duplicate-id warnings a parse of the file reports, in line order.
    pub fn warnings(&self) -> Vec<Diagnostic> {
        let mut lines: HashMap<&str, Vec<usize>> = HashMap::new();
        for e in self.entries.iter().filter(|e| e.duplicated) {
            lines.entry(e.id.as_str()).or_default().push(e.line);
        }
        let mut out: Vec<Diagnostic> = lines
            .iter()
            .flat_map(|(id, lines)| duplicate_warnings(id, lines))
            .collect();
        out.sort_by_key(|d| d.line);
        out
    }

    /// The key of the file version indexed.
    pub fn key(&self) -> FileKey {
        self.key
    }

    /// xxh3 of all bytes of the file version indexed.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Whether this index describes `bytes`, read from a file whose stat was `key` both
    /// before and after the read.
    pub fn describes(&self, key: FileKey, bytes: &[u8]) -> bool {
        self.key == key && bytes.len() as u64 == key.size && xxh3_64(bytes) == self.hash
    }

    /// The position in [`WriteIndex::entries`] of the issue `query` names — a full id, a
    /// unique hash prefix or suffix, a unique substring — as id resolution over the file
    /// finds it (tombstones skipped). `None` when it names none or several (the
    /// whole-file path then says so) or a duplicated id.
    pub fn resolve(&self, query: &str) -> Option<usize> {
        let q = query.trim();
        let live = || self.entries.iter().filter(|e| !e.tombstone);
        // A full id, the usual case, needs no candidate list.
        let id = if live().any(|e| e.id == q) {
            q
        } else {
            spool_core::beads::ids::resolve_id_among(live().map(|e| e.id.as_str()), q).ok()?
        };
        self.entries
            .iter()
            .position(|e| e.id == id && !e.tombstone && !e.duplicated)
    }

    fn encode(&self) -> Option<Vec<u8>> {
        state_file::encode(MAGIC, self)
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        state_file::decode(MAGIC, bytes)
    }
}

/// Where the write index of `ws` lives.
pub fn path(ws: &Workspace) -> std::path::PathBuf {
    ws.state_dir().join("write-index.bin")
}

/// Writes the index atomically; failures are ignored (it is never required).
pub fn save(ws: &Workspace, index: &WriteIndex) {
    if !enabled() {
        return;
    }
    if let Some(bytes) = index.encode() {
        state_file::save(&path(ws), &bytes);
    }
}

/// The stored index, unvalidated (see [`WriteIndex::describes`]).
pub fn load(ws: &Workspace) -> Option<WriteIndex> {
    if !enabled() {
        return None;
    }
    WriteIndex::decode(&std::fs::read(path(ws)).ok()?)
}

/// Removes a stored index that a write is about to make stale, so that a crash between
/// the write and the index refresh cannot leave a trusted-looking one (it would fail
/// [`WriteIndex::describes`] anyway; this keeps the state dir honest).
pub fn forget(ws: &Workspace) {
    let _ = std::fs::remove_file(path(ws));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_only_the_bytes_it_was_built_from() {
        let text = b"{\"id\":\"a-1\",\"title\":\"t\",\"status\":\"open\",\"priority\":2,\"issue_type\":\"task\",\"created_at\":\"2025-01-01T00:00:00Z\",\"updated_at\":\"2025-01-01T00:00:00Z\"}\n".to_vec();
        let (file, diags) = BeadsFile::parse_skim(text.clone());
        let key = FileKey {
            dev: 1,
            ino: 2,
            size: text.len() as u64,
            mtime: 3,
            ctime: 4,
        };
        let index = WriteIndex::build(key, &file, &diags).expect("clean file");
        assert_eq!(index.entries.len(), 1);
        assert_eq!(index.entries[0].len as usize, text.len() - 1);
        assert!(index.describes(key, &text));
        let mut other = text.clone();
        other[8] = b'2';
        assert!(!index.describes(key, &other));
        assert!(!index.describes(FileKey { ino: 9, ..key }, &text));
        let bytes = index.encode().expect("encodes");
        assert_eq!(WriteIndex::decode(&bytes), Some(index));
        assert_eq!(WriteIndex::decode(&bytes[..bytes.len() - 1]), None);
    }
}
