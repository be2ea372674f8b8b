//! Crash-safe file replacement and the cross-process write lock.
//!
//! A reader must only ever see the old file or the new one, never a mix: write a temp file
//! in the same directory, fsync it, rename it over the target, fsync the directory.
//! Writers serialize on an advisory lock file so a read-modify-write never loses another
//! process's update.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Replaces `path` with `bytes` atomically, keeping the file's permissions.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] of whatever `fill` writes, so large content need not be assembled in
/// memory first.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".spool-write-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, Writeback::new(tmp.as_file()));
        fill(&mut w).and_then(|_| w.flush())
    }
    .and_then(|_| tmp.as_file().sync_all())
    .with_context(|| format!("writing {}", tmp.path().display()))?;
    // Keep the mode of the file being replaced; a new file gets the usual 0644 rather than
    // the temp file's private 0600 (the backlog is shared through git).
    let permissions = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions(),
        Err(_) => std::os::unix::fs::PermissionsExt::from_mode(0o644),
    };
    std::fs::set_permissions(tmp.path(), permissions)
        .with_context(|| format!("setting permissions of {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("replacing {}", path.display()))?;
    // The rename is durable only once the directory entry is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))?;
    Ok(())
}

/// Bytes written between two write-back starts (see [`Writeback`]).
const WRITEBACK_STEP: u64 = 8 << 20;

/// A file writer that asks the kernel to start writing each [`WRITEBACK_STEP`] to disk as
/// soon as it is written, so the disk works while the rest is still being produced and
/// the final fsync waits only for the tail: at 100 MB this halves copy + fsync.
struct Writeback<'f> {
    file: &'f File,
    written: u64,
    started: u64,
}

impl<'f> Writeback<'f> {
    fn new(file: &'f File) -> Self {
        Writeback {
            file,
            written: 0,
            started: 0,
        }
    }
}

impl Write for Writeback<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = (&mut &*self.file).write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WRITEBACK_STEP {
            start_writeback(self.file, self.started, self.written - self.started);
            self.started = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        (&mut &*self.file).flush()
    }
}

/// Starts (does not wait for) writing bytes `[offset, offset + len)` of `file` to disk.
/// Only a hint: durability still comes from the fsync, so a failure is ignored.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: plain integer arguments and a file descriptor that `file` keeps open for
    // the duration of the call; no memory is passed to the kernel.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// An exclusive advisory lock held until dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Waits up to `timeout` for the lock at `path` (created if missing).
    pub fn acquire(path: &Path, timeout: Duration) -> Result<FileLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("opening lock file {}", path.display()))?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(FileLock {
                        file,
                        path: path.to_path_buf(),
                    });
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        bail!(
                            "timed out after {:?} waiting for the lock {} (another spool process is writing)",
                            timeout,
                            path.display()
                        );
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("locking {}", path.display()));
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock as well; unlocking first makes the
        // hand-over immediate for waiters polling with try_lock.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_keeps_mode() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().expect("tempdir");
        let p = t.path().join("f.jsonl");
        std::fs::write(&p, b"old\n").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        write_atomic(&p, b"new\n").expect("atomic write");
        assert_eq!(std::fs::read(&p).expect("read"), b"new\n");
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let leftovers: Vec<_> = std::fs::read_dir(t.path())
            .expect("readdir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".spool-write-"))
            .collect();
        assert!(leftovers.is_empty(), "temp files left behind");
        let fresh = t.path().join("new.jsonl");
        write_atomic(&fresh, b"x").expect("new file");
        let mode = std::fs::metadata(&fresh)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn lock_times_out_while_held_and_is_free_after_drop() {
        let t = tempfile::tempdir().expect("tempdir");
        let p = t.path().join("x.lock");
        let held = FileLock::acquire(&p, Duration::from_secs(1)).expect("first lock");
        let err = FileLock::acquire(&p, Duration::from_millis(30)).expect_err("second must wait");
        assert!(err.to_string().contains("timed out"), "{err}");
        drop(held);
        FileLock::acquire(&p, Duration::from_millis(30)).expect("free after drop");
    }
}
