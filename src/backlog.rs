//! The backlog file on disk: reading it for queries, and the locked read-modify-write
//! cycle every edit goes through.
//!
//! Reads refuse a file with unreadable lines (naming each `path:line`), because answering
//! from a partial backlog would silently hide work. Writes take the lock, re-read the file
//! under it, apply the change to the freshly read bytes, and replace the file atomically;
//! a file with unreadable lines is never rewritten, so nothing a person could still repair
//! is dropped.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use spool_core::beads::{
    BeadsFile, CommentId, Diagnostic, DiagnosticKind, Edited, LineEditor, LineError, NewIssue,
    Severity,
};

use crate::atomic::{write_atomic_with, FileLock};
use crate::workspace::Workspace;

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
        Err(e) if path.is_dir() => Err(e).with_context(|| {
            format!(
                "{}: is a directory, expected the backlog file",
                path.display()
            )
        }),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn parse_threads() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// Parses bytes without judging them (for `doctor`).
pub fn parse(path: &Path, bytes: Vec<u8>) -> Backlog {
    let (file, diagnostics) = BeadsFile::parse_owned(bytes, parse_threads());
    Backlog {
        path: path.to_path_buf(),
        file,
        diagnostics,
    }
}

impl Backlog {
    /// Loads the workspace backlog for a read command: errors name every bad line,
    /// warnings (duplicate ids) go to stderr.
    pub fn load(ws: &Workspace) -> Result<Backlog> {
        let path = ws.issues_path();
        let bytes = read_bytes(&path)?;
        Backlog::from_bytes(&path, bytes, false)
    }

    /// [`Backlog::load`] of bytes already read from `path`; `lean` parses with
    /// [`BeadsFile::parse_lean`] (for queries that never read the free text).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>, lean: bool) -> Result<Backlog> {
        let backlog = if lean {
            let (file, diagnostics) = BeadsFile::parse_lean(bytes, parse_threads());
            Backlog {
                path: path.to_path_buf(),
                file,
                diagnostics,
            }
        } else {
            parse(path, bytes)
        };
        backlog.check()?;
        backlog.warn();
        Ok(backlog)
    }

    /// Fails when any line could not be read.
    pub fn check(&self) -> Result<()> {
        let errors: Vec<&Diagnostic> = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        if errors.is_empty() {
            return Ok(());
        }
        let mut msg = String::new();
        for d in errors.iter().take(MAX_LISTED) {
            msg.push_str(&format!(
                "{}:{}: {}\n",
                self.path.display(),
                d.line,
                d.message
            ));
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

    /// Prints warnings (duplicate ids) to stderr.
    pub fn warn(&self) {
        for d in self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
        {
            eprintln!("warning: {}:{}: {}", self.path.display(), d.line, d.message);
        }
    }
}

/// A write in progress: the freshly read file, and whether anything changed.
pub struct Tx {
    pub file: BeadsFile,
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

    /// Records a change made directly on [`Tx::file`].
    pub fn mark_changed(&mut self) {
        self.changed = true;
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
/// it changed without reading the file again. Its typed issues lack their free text
/// (see [`BeadsFile::parse_lean`]).
pub fn modify_file<R>(
    ws: &Workspace,
    change: impl FnOnce(&mut Tx) -> Result<R>,
) -> Result<(R, BeadsFile)> {
    let path = ws.issues_path();
    if path.is_dir() {
        bail!(
            "{}: is a directory, expected the backlog file",
            path.display()
        );
    }
    let _lock = FileLock::acquire(&ws.lock_path(), LOCK_TIMEOUT)?;
    let (file, diagnostics) = BeadsFile::parse_lean(read_bytes(&path)?, parse_threads());
    let backlog = Backlog {
        path: path.clone(),
        file,
        diagnostics,
    };
    backlog
        .check()
        .context("refusing to write: the backlog file is left exactly as it is")?;
    backlog.warn();
    let mut tx = Tx {
        file: backlog.file,
        changed: false,
    };
    let result = change(&mut tx)?;
    if tx.changed {
        write_atomic_with(&path, |w| tx.file.write_to(w))?;
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
pub struct CommentIds {
    next_int: Option<i64>,
}

impl CommentIds {
    pub fn of(file: &BeadsFile) -> CommentIds {
        let mut max = 0i64;
        let mut strings = false;
        for c in file.issues().flat_map(|i| i.comments.iter()) {
            match &c.id {
                Some(CommentId::Int(n)) => max = max.max(*n),
                Some(CommentId::Str(_)) => strings = true,
                None => {}
            }
        }
        CommentIds {
            next_int: if strings { None } else { Some(max + 1) },
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
