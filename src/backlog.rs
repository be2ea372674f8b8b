//! The backlog file on disk: reading it for queries, and the locked read-modify-write
//! cycle every edit goes through.
//!
//! Reads refuse a file with unreadable lines (naming each `path:line`), because answering
//! from a partial backlog would silently hide work. Writes take the lock, re-read the file
//! under it, apply the change to the freshly read bytes, and replace the file atomically;
//! a file with unreadable lines is never rewritten, so nothing a person could still repair
//! is dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use spool_core::beads::node::{Node, Skimmed};
use spool_core::beads::skim::Skim;
use spool_core::beads::{
    BeadsFile, CommentId, Dependency, Diagnostic, DiagnosticKind, Edited, Issue, LineEditor,
    LineError, NewIssue, NewLine, Severity, Source,
};

use crate::atomic::{write_atomic_with, FileLock};
use crate::cache::FileKey;
use crate::workspace::Workspace;
use crate::write_index::WriteIndex;
use std::fs::File;
use std::os::unix::fs::FileExt;
use xxhash_rust::xxh3::Xxh3;

/// How long a writer waits for another writer before giving up.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// At most this many problems are listed in an error; `spool doctor` lists them all.
const MAX_LISTED: usize = 20;

/// A parsed backlog and where it came from.
pub struct Backlog {
    pub path: PathBuf,
    pub file: BeadsFile,
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads the raw bytes; a missing file is an empty backlog (a fresh `init`).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) if path.is_dir() => Err(e).with_context(|| is_a_directory(path)),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The file's contents for a whole-file read: large files memory-mapped, releasing their
/// pages as they are parsed (see [`crate::mapped`]); a missing file is an empty backlog.
pub fn read_source(path: &Path) -> Result<Arc<dyn Source>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Arc::new(Vec::new())),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    if meta.is_dir() {
        bail!(is_a_directory(path));
    }
    crate::mapped::source_of(&file, path, meta.len())
}

fn is_a_directory(path: &Path) -> String {
    format!(
        "{}: is a directory, expected the backlog file",
        path.display()
    )
}

pub fn parse_threads() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

impl Backlog {
    /// Loads the workspace backlog for a read command: errors name every bad line,
    /// warnings (duplicate ids) go to stderr.
    pub fn load(ws: &Workspace) -> Result<Backlog> {
        let path = ws.issues_path();
        let (file, diagnostics) = BeadsFile::parse_owned(read_bytes(&path)?, parse_threads());
        Backlog {
            path,
            file,
            diagnostics,
        }
        .checked()
    }

    /// The backlog for a read command: refused if a line is unreadable, its warnings
    /// printed.
    fn checked(self) -> Result<Backlog> {
        self.check()?;
        self.warn();
        Ok(self)
    }

    /// Fails when any line could not be read.
    pub fn check(&self) -> Result<()> {
        check(&self.path, &self.diagnostics)
    }

    /// Prints warnings (duplicate ids) to stderr.
    pub fn warn(&self) {
        warn(&self.path, &self.diagnostics)
    }
}

/// The workspace backlog with its issues skimmed (see [`BeadsFile::parse_skim_source`]),
/// refused like [`Backlog::load`] if a line is unreadable, its warnings printed: for a
/// read that needs every issue's graph facts and a few lines in full.
pub fn load_skimmed(ws: &Workspace) -> Result<BeadsFile<Skimmed>> {
    skimmed_at(&ws.issues_path())
}

/// [`load_skimmed`] of the file at `path`.
fn skimmed_at(path: &Path) -> Result<BeadsFile<Skimmed>> {
    let (file, diagnostics) = BeadsFile::parse_skim_source(read_source(path)?, parse_threads());
    check(path, &diagnostics)?;
    warn(path, &diagnostics);
    Ok(file)
}

/// The backlog at `path` skimmed for a read command that needs only its graph (see
/// [`Skim`]): refused like [`Backlog::load`] if a line is unreadable, its warnings
/// printed. With `titled`, the skim keeps the titles (see [`Skim::parse_titled`]).
pub fn skim_checked(
    path: &Path,
    source: Arc<dyn Source>,
    titled: bool,
) -> Result<(Skim, Vec<Diagnostic>)> {
    let (skim, diagnostics) = if titled {
        Skim::parse_titled(source, parse_threads())
    } else {
        Skim::parse(source, parse_threads())
    };
    check(path, &diagnostics)?;
    warn(path, &diagnostics);
    Ok((skim, diagnostics))
}

/// Fails when any line of the file at `path` could not be read, naming each.
fn check(path: &Path, diagnostics: &[Diagnostic]) -> Result<()> {
    {
        let errors: Vec<&Diagnostic> = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        if errors.is_empty() {
            return Ok(());
        }
        let mut msg = String::new();
        for d in errors.iter().take(MAX_LISTED) {
            msg.push_str(&format!("{}:{}: {}\n", path.display(), d.line, d.message));
        }
        if errors.len() > MAX_LISTED {
            msg.push_str(&format!(
                "… and {} more (run `spool doctor`)\n",
                errors.len() - MAX_LISTED
            ));
        }
        if errors
            .iter()
            .any(|d| d.kind == DiagnosticKind::ConflictMarker)
        {
            msg.push_str(
                "the backlog has unresolved git conflict markers: keep the lines of both sides \
                 (for an issue on both sides, keep the one you want), delete the marker lines, \
                 then run `spool doctor`\n",
            );
        }
        bail!(
            "{} unreadable line(s) in the backlog:\n{}",
            errors.len(),
            msg.trim_end()
        )
    }
}

/// Prints the warnings (duplicate ids) about the file at `path` to stderr.
fn warn(path: &Path, diagnostics: &[Diagnostic]) {
    for d in diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
    {
        eprintln!("warning: {}:{}: {}", path.display(), d.line, d.message);
    }
}

/// A write in progress: the freshly read file, and whether anything changed.
pub struct Tx {
    pub file: BeadsFile<Skimmed>,
    changed: bool,
}

impl Tx {
    /// Edits one issue line (see [`BeadsFile::edit`]).
    pub fn edit<F>(&mut self, id: &str, f: F) -> Result<Edited>
    where
        F: FnOnce(&mut LineEditor) -> Result<(), LineError>,
    {
        let edited = self.file.edit(id, f)?;
        self.changed |= edited.changed;
        Ok(edited)
    }

    /// Inserts new issue lines in one pass (see [`BeadsFile::insert_lines`]).
    pub fn insert_lines(&mut self, lines: Vec<NewLine>) -> Result<()> {
        if !lines.is_empty() {
            self.file.insert_lines(lines)?;
            self.changed = true;
        }
        Ok(())
    }

    /// Inserts a new issue line (see [`BeadsFile::insert`]); returns its line number.
    pub fn insert(&mut self, new: &NewIssue) -> Result<usize> {
        let line = self.file.insert(new)?;
        self.changed = true;
        Ok(line)
    }
}

/// Runs `change` on the current backlog under the write lock and writes the result if any
/// line changed. `change` sees the file as it is on disk now, not as an earlier read saw
/// it; if it fails, nothing is written.
pub fn modify<R>(ws: &Workspace, change: impl FnOnce(&mut Tx) -> Result<R>) -> Result<R> {
    let (result, file) = modify_file(ws, change)?;
    drop_later(file);
    Ok(result)
}

/// [`modify`], also returning the file as written, so a command can render the issues
/// it changed without reading the file again. It holds skimmed records: a view of an
/// issue parses its line in full ([`BeadsFile::get_full`], [`BeadsFile::typed_lines`]).
pub fn modify_file<R>(
    ws: &Workspace,
    change: impl FnOnce(&mut Tx) -> Result<R>,
) -> Result<(R, BeadsFile<Skimmed>)> {
    let path = ws.issues_path();
    if path.is_dir() {
        bail!(
            "{}: is a directory, expected the backlog file",
            path.display()
        );
    }
    let _lock = FileLock::acquire(&ws.lock_path(), LOCK_TIMEOUT)?;
    // Mapped when large (see `crate::mapped`): writers replace the file by rename, so the
    // mapping keeps the bytes read under the lock while the new file is written.
    // Skimmed: the change reads every issue's graph facts but the full record only of
    // the lines it edits (see `BeadsFile::get_full`).
    let file = skimmed_at(&path)
        .context("refusing to write: the backlog file is left exactly as it is")?;
    let mut tx = Tx {
        file,
        changed: false,
    };
    let result = change(&mut tx)?;
    if tx.changed {
        crate::write_index::forget(ws);
        write_atomic_with(&path, |w| tx.file.write_to(w))?;
        // The next write can then skip the whole-file parse (see `modify_windowed`); the
        // file has no unreadable line, or `skimmed_at` would have refused it.
        if crate::cache::enabled() {
            if let Some(index) =
                FileKey::stat(&path).and_then(|key| WriteIndex::build(key, &tx.file, &[]))
            {
                crate::write_index::save(ws, &index);
            }
        }
    }
    Ok((result, tx.file))
}

/// Frees a parsed backlog on another thread: for a large file that is hundreds of
/// thousands of deallocations, a noticeable part of a short command's time. A command
/// that exits first simply returns the memory with the process.
pub fn drop_later<T: Send + 'static>(big: T) {
    let _ = std::thread::Builder::new()
        .name("spool-drop".into())
        .spawn(move || drop(big));
}

/// How new comment ids are made: classic files number comments (the next integer after
/// the largest in the file); bd v1 files use UUIDs (v7, time-ordered). Shared by every
/// writer of comments so they number them alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommentIds {
    next_int: Option<i64>,
}

impl CommentIds {
    pub fn of(file: &BeadsFile<Skimmed>) -> CommentIds {
        CommentIds::of_comments(
            file.issues()
                .map(|i| (i.max_int_comment_id(), i.has_string_comment_id())),
        )
    }

    /// [`CommentIds::of`] a skimmed file.
    pub fn of_skim(skim: &Skim) -> CommentIds {
        CommentIds::of_comments(
            skim.issues()
                .map(|i| (i.max_int_comment_id(), i.has_string_comment_id())),
        )
    }

    /// From (integer id or 0, whether a string id) of every comment (or issue).
    fn of_comments(ids: impl Iterator<Item = (i64, bool)>) -> CommentIds {
        let (mut max, mut strings) = (0i64, false);
        for (n, s) in ids {
            max = max.max(n);
            strings |= s;
        }
        CommentIds {
            next_int: if strings { None } else { Some(max + 1) },
        }
    }

    /// The numbering after a write that left `window` (its lines as written) in the
    /// file: comments are only ever added.
    pub fn after(self, window: &BeadsFile<Skimmed>) -> CommentIds {
        let w = CommentIds::of(window);
        CommentIds {
            next_int: match (self.next_int, w.next_int) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            },
        }
    }

    /// The id of the `n`th (from 0) comment added in one write made at `now`.
    pub fn nth(&self, n: i64, now: DateTime<Utc>) -> CommentId {
        match self.next_int {
            Some(first) => CommentId::Int(first + n),
            None => CommentId::Str(new_uuid(now, n)),
        }
    }
}

fn new_uuid(now: DateTime<Utc>, n: i64) -> String {
    let secs = now.timestamp().max(0) as u64;
    let nanos = now.timestamp_subsec_nanos();
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, secs, nanos.saturating_add(n as u32));
    uuid::Uuid::new_v7(ts).to_string()
}

/// Where a windowed write (see [`modify_windowed`]) works.
pub struct Plan {
    /// The entry of the write index the window is centred on.
    pub anchor: usize,
    /// Ids whose lines the change edits: their dialect must be decidable in the window.
    pub edits: Vec<String>,
    /// Whether the window must reach the end of the file (an insert after the last issue).
    pub to_end: bool,
}

/// What a windowed write's `change` may read besides its window: the write index, and
/// lines anywhere in the file (which the lock keeps as indexed until the write).
pub struct Peek<'a> {
    pub index: &'a WriteIndex,
    file: &'a File,
    size: usize,
}

impl Peek<'_> {
    /// The lines of the issues `ids` (those that exist and are not tombstones) and of
    /// every issue whose line mentions one of `mentioned` (as a JSON string: its edges to
    /// them), parsed in full into one file in file order. `None` when that set cannot be
    /// trusted to be exact: an id spelled with characters a writer might escape, or a
    /// duplicated id among the lines.
    pub fn lines(&self, ids: &[&str], mentioned: &[&str]) -> Option<BeadsFile> {
        self.lines_with(ids, mentioned, None)
    }

    /// [`Peek::lines`] with the line of the issue `replaced.0` taken as `replaced.1`
    /// instead of the file's (a window's edited or inserted line).
    pub fn lines_with(
        &self,
        ids: &[&str],
        mentioned: &[&str],
        replaced: Option<(&str, &[u8])>,
    ) -> Option<BeadsFile> {
        let entries = &self.index.entries;
        // Only ids some line depends on can be mentioned by other lines.
        let mentioned: Vec<&str> = mentioned
            .iter()
            .copied()
            .filter(|m| entries.iter().any(|e| e.id == *m && e.mentioned))
            .collect();
        let wanted: HashSet<&str> = ids.iter().copied().collect();
        let mut picked: Vec<usize> = (0..entries.len())
            .filter(|&k| !entries[k].tombstone && wanted.contains(entries[k].id.as_str()))
            .collect();
        if mentioned.iter().any(|m| !plain_id(m)) {
            return None;
        }
        let patterns: Vec<Vec<u8>> = mentioned
            .iter()
            .map(|m| format!("\"{m}\"").into_bytes())
            .collect();
        let finders: Vec<memchr::memmem::Finder<'_>> =
            patterns.iter().map(memchr::memmem::Finder::new).collect();
        let overlap = patterns.iter().map(Vec::len).max().unwrap_or(0);
        let mut buf = vec![0u8; COPY_CHUNK + overlap];
        let mut at = 0;
        while at < self.size {
            let n = (self.size - at).min(COPY_CHUNK + overlap);
            self.file.read_exact_at(&mut buf[..n], at as u64).ok()?;
            for f in &finders {
                for off in f.find_iter(&buf[..n]) {
                    let pos = (at + off) as u64;
                    let k = entries.partition_point(|e| e.start <= pos).checked_sub(1)?;
                    if pos < entries[k].start + entries[k].len {
                        picked.push(k);
                    }
                }
            }
            at += COPY_CHUNK;
        }
        self.file_of(picked, replaced)
    }

    /// The lines of `starts` and of every issue reachable from them along the edges
    /// `follow` picks (live issues only, one line read and parsed per step), parsed in
    /// full into one file in file order. `None` as for [`Peek::lines`], and when more
    /// than `max` lines are reachable (reading them one by one would cost more than the
    /// whole-file path).
    pub fn reach(
        &self,
        starts: &[&str],
        follow: impl Fn(&Dependency) -> bool,
        max: usize,
    ) -> Option<BeadsFile> {
        let entries = &self.index.entries;
        let by_id: HashMap<&str, usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.tombstone)
            .map(|(k, e)| (e.id.as_str(), k))
            .collect();
        let mut seen: HashSet<String> = HashSet::new();
        let mut queue: VecDeque<String> = starts.iter().map(|s| s.to_string()).collect();
        let mut picked = Vec::new();
        while let Some(id) = queue.pop_front() {
            let Some(&k) = by_id.get(id.as_str()) else {
                continue;
            };
            if !seen.insert(id) {
                continue;
            }
            if picked.len() == max {
                return None;
            }
            picked.push(k);
            let line = self.read_entry(k)?;
            let issue: Issue = serde_json::from_slice(&line).ok()?;
            queue.extend(
                issue
                    .dependencies
                    .iter()
                    .filter(|d| follow(d))
                    .map(|d| d.depends_on_id.clone()),
            );
        }
        self.file_of(picked, None)
    }

    /// Entry `k`'s line as it is in the file.
    fn read_entry(&self, k: usize) -> Option<Vec<u8>> {
        let e = self.index.entries.get(k)?;
        let mut line = vec![0u8; usize::try_from(e.len).ok()?];
        self.file.read_exact_at(&mut line, e.start).ok()?;
        Some(line)
    }

    /// The lines of the entries `picked` (and `replaced`, see [`Peek::lines_with`]) as
    /// one parsed file in file order; `None` when one of them is a duplicated id's.
    fn file_of(
        &self,
        mut picked: Vec<usize>,
        replaced: Option<(&str, &[u8])>,
    ) -> Option<BeadsFile> {
        let entries = &self.index.entries;
        picked.sort_unstable();
        picked.dedup();
        let mut bytes = Vec::new();
        // A line not in the index yet (an insert) goes first: nothing depends on it.
        let mut lines = picked.len();
        if let Some((id, new)) = replaced {
            if !picked.iter().any(|&k| entries[k].id == id) {
                bytes.extend_from_slice(new);
                bytes.push(b'\n');
                lines += 1;
            }
        }
        for &k in &picked {
            let e = &entries[k];
            if e.duplicated {
                return None;
            }
            match replaced {
                Some((id, new)) if id == e.id => bytes.extend_from_slice(new),
                _ => bytes.extend_from_slice(&self.read_entry(k)?),
            }
            bytes.push(b'\n');
        }
        let (file, diagnostics) = BeadsFile::parse_owned(bytes, NonZeroUsize::MIN);
        (diagnostics.is_empty() && file.lines().len() == lines).then_some(file)
    }
}

/// Whether every writer spells `id` the same inside a JSON string (no character that
/// some encoder escapes).
fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b':'))
}

/// Issue lines on each side of the anchor a window holds, tried in turn.
const WINDOW_RADII: [usize; 2] = [64, 4096];

/// [`modify_file`] without parsing the whole file, when the write index (see
/// [`crate::write_index`]) describes the file exactly as it is under the lock: `plan`
/// picks a place from the index, `change` runs on a parsed window of lines around it, and
/// the file is written as the bytes before the window, the window, the bytes after it —
/// the very bytes the whole-file path writes. `Ok(None)` means "use [`modify_file`]": no
/// valid index, no plan, the window was too small to be exact, or `change` failed (the
/// whole-file path then reports the error with the file's own line numbers).
pub fn modify_windowed<R>(
    ws: &Workspace,
    plan: impl FnOnce(&WriteIndex) -> Option<Plan>,
    change: impl Fn(&mut Tx, &Peek) -> Result<R>,
) -> Result<Option<R>> {
    let Some(index) = crate::write_index::load(ws) else {
        return Ok(None);
    };
    let path = ws.issues_path();
    let _lock = FileLock::acquire(&ws.lock_path(), LOCK_TIMEOUT)?;
    let Ok(file) = File::open(&path) else {
        return Ok(None);
    };
    let Ok(key) = file.metadata().map(|m| FileKey::of(&m)) else {
        return Ok(None);
    };
    if key != index.key() {
        return Ok(None);
    }
    let Ok(size) = usize::try_from(key.size) else {
        return Ok(None);
    };
    let Some(plan) = plan(&index) else {
        return Ok(None);
    };
    let Some(file_ending) = first_ending(&file, size) else {
        return Ok(None);
    };
    for radius in WINDOW_RADII {
        let Some((a, b, first_line)) = window_bounds(&index, &plan, radius, size) else {
            return Ok(None);
        };
        let mut old_window = vec![0u8; b - a];
        if file.read_exact_at(&mut old_window, a as u64).is_err() {
            return Ok(None);
        }
        if a > 0 && ending_of(&old_window) != Some(file_ending) {
            return Ok(None);
        }
        let (window, diagnostics) = BeadsFile::parse_skim(old_window.clone());
        if diagnostics.iter().any(|d| d.severity != Severity::Warning) {
            return Ok(None);
        }
        let lines_before = window.lines().len();
        // An edit reads neighbouring lines for escaping evidence; the window is exact if
        // it holds every line the whole file's edit would read, or if the edit wrote
        // nothing whose bytes depend on the escaping (checked after `change`).
        let holds_reach = plan.edits.iter().all(|id| {
            let (Some(i), Some(d)) = (window.line_of(id), window.style_reach(id)) else {
                return false;
            };
            let (i, n) = (i - 1, window.lines().len());
            (d <= i || a == 0) && (d < n - i || b == size)
        });
        let mut tx = Tx {
            file: window,
            changed: false,
        };
        let peek = Peek {
            index: &index,
            file: &file,
            size,
        };
        let Ok(result) = change(&mut tx, &peek) else {
            return Ok(None);
        };
        if !holds_reach && tx.file.edits_used_escaping() {
            continue;
        }
        let warn = || {
            for w in index.warnings() {
                eprintln!("warning: {}:{}: {}", path.display(), w.line, w.message);
            }
        };
        let unchanged = |hash: u64| hash == index.hash() && FileKey::stat(&path) == Some(key);
        if !tx.changed {
            // The answer came from the window: it holds only if the file is the indexed one.
            let mut old = Xxh3::new();
            let mut sink = std::io::sink();
            if copy_range(&file, 0, size, &mut sink, &mut old, &mut Xxh3::new()).is_err()
                || !unchanged(old.digest())
            {
                return Ok(None);
            }
            warn();
            return Ok(Some(result));
        }
        let middle = tx.file.to_bytes();
        let added = tx.file.lines().len() - lines_before;
        crate::write_index::forget(ws);
        // The untouched ranges are copied file to file, hashed on the way: the new file is
        // put in place only if the old one was exactly the indexed one.
        let mut verdict = None;
        let written = write_atomic_with(&path, |w| {
            let (mut old, mut new) = (Xxh3::new(), Xxh3::new());
            copy_range(&file, 0, a, w, &mut old, &mut new)?;
            old.update(&old_window);
            new.update(&middle);
            w.write_all(&middle)?;
            copy_range(&file, b, size, w, &mut old, &mut new)?;
            if !unchanged(old.digest()) {
                return Err(std::io::Error::other("the backlog changed under the lock"));
            }
            verdict = Some(new.digest());
            Ok(())
        });
        let Some(new_hash) = verdict else {
            return Ok(None);
        };
        written?;
        warn();
        let window = Window {
            a,
            b,
            first_line,
            added,
        };
        refresh_index(ws, &path, index, new_hash, window, &tx.file, middle.len());
        return Ok(Some(result));
    }
    Ok(None)
}

/// Copies bytes `[from, to)` of `file` to `w`, feeding them to both hashers.
fn copy_range(
    file: &File,
    from: usize,
    to: usize,
    w: &mut dyn std::io::Write,
    old: &mut Xxh3,
    new: &mut Xxh3,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut at = from;
    while at < to {
        let n = (to - at).min(COPY_CHUNK);
        file.read_exact_at(&mut buf[..n], at as u64)?;
        old.update(&buf[..n]);
        new.update(&buf[..n]);
        w.write_all(&buf[..n])?;
        at += n;
    }
    Ok(())
}

/// Bytes copied at a time by a windowed write.
const COPY_CHUNK: usize = 1 << 20;

/// Whether the first terminator in `bytes` is CRLF (`None`: no newline at all).
fn ending_of(bytes: &[u8]) -> Option<bool> {
    let p = bytes.iter().position(|&c| c == b'\n')?;
    Some(p > 0 && bytes[p - 1] == b'\r')
}

/// The file's first terminator (see [`ending_of`]), looked for in its first megabyte: new
/// lines get it, and a window must decide it the same way.
fn first_ending(file: &File, size: usize) -> Option<bool> {
    let mut head = vec![0u8; size.min(COPY_CHUNK)];
    file.read_exact_at(&mut head, 0).ok()?;
    ending_of(&head)
}

/// The byte range `[a, b)` of whole lines around the plan's anchor, `radius` issue lines
/// to each side (to the file's ends when fewer are left), and the number of its first line.
fn window_bounds(
    index: &WriteIndex,
    plan: &Plan,
    radius: usize,
    len: usize,
) -> Option<(usize, usize, usize)> {
    let entries = &index.entries;
    entries.get(plan.anchor)?;
    let (a, first_line) = match plan.anchor.checked_sub(radius) {
        Some(i) if i > 0 => (entries[i].start, entries[i].line),
        _ => (0, 1),
    };
    let b = match entries.get(plan.anchor + radius + 1) {
        Some(e) if !plan.to_end => e.start,
        _ => len as u64,
    };
    Some((
        usize::try_from(a).ok()?,
        usize::try_from(b).ok()?,
        first_line,
    ))
}

/// Where a windowed write changed the file: bytes `[a, b)` of the old file, starting at
/// line `first_line`, now hold `added` more lines.
struct Window {
    a: usize,
    b: usize,
    first_line: usize,
    added: usize,
}

/// Stores the index of the file just written: the entries outside the window shifted by
/// how much the window grew, the window's own, and the new file's key and hash.
fn refresh_index(
    ws: &Workspace,
    path: &Path,
    old: WriteIndex,
    hash: u64,
    w: Window,
    window: &BeadsFile<Skimmed>,
    window_len: usize,
) {
    let Some(key) = FileKey::stat(path) else {
        return;
    };
    let delta = window_len as i64 - (w.b - w.a) as i64;
    let (a, b) = (w.a as u64, w.b as u64);
    let dups: std::collections::HashSet<&str> = old
        .entries
        .iter()
        .filter(|e| e.duplicated)
        .map(|e| e.id.as_str())
        .collect();
    let duplicated = |id: &str| dups.contains(id);
    // Edges can change only on the window's lines: an id keeps its flag (a removed edge
    // leaves it set, which only costs a scan), and the window's edges set their targets'.
    let was_mentioned: HashSet<&str> = old
        .entries
        .iter()
        .filter(|e| e.mentioned && e.start >= a && e.start < b)
        .map(|e| e.id.as_str())
        .collect();
    let window_targets: HashSet<&str> = window
        .issues()
        .flat_map(|i| (0..i.dep_count()).map(move |d| i.dep(d).target))
        .collect();
    let mentioned = |id: &str| was_mentioned.contains(id) || window_targets.contains(id);
    let inside = || {
        crate::write_index::entries_of(window.shapes(), a, w.first_line, &duplicated, &mentioned)
    };
    let mut entries = Vec::with_capacity(old.entries.len() + 1);
    let mut placed = false;
    for e in &old.entries {
        if e.start < a {
            let mut e = e.clone();
            e.mentioned |= window_targets.contains(e.id.as_str());
            entries.push(e);
            continue;
        }
        if !placed {
            entries.extend(inside());
            placed = true;
        }
        if e.start >= b {
            let mut e = e.clone();
            e.start = e.start.wrapping_add_signed(delta);
            e.line += w.added;
            e.mentioned |= window_targets.contains(e.id.as_str());
            entries.push(e);
        }
    }
    if !placed {
        entries.extend(inside());
    }
    let comment_ids = old.comment_ids.map(|c| c.after(window));
    crate::write_index::save(ws, &WriteIndex::rewritten(key, hash, entries, comment_ids));
}
