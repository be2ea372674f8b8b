//! One daemon per repository: an exclusive `flock` on `<state dir>/daemon.lock`, with
//! the holder's pid written inside so a second `spool up` can name it. The kernel drops
//! the lock when its process dies, so a lock file left by a killed daemon is simply
//! taken over.

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Held while the daemon runs.
pub struct InstanceLock {
    _lock: Flock<File>,
    pub path: PathBuf,
}

/// The lock file of the daemon of a state directory.
pub fn lock_path(state_dir: &Path) -> PathBuf {
    state_dir.join("daemon.lock")
}

/// How long a contended lock is retried: [`running`] holds it for a moment to look.
const CONTENDED: Duration = Duration::from_millis(200);

/// Takes the lock or fails naming the running daemon's pid.
pub fn acquire(state_dir: &Path) -> Result<InstanceLock> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let path = lock_path(state_dir);
    let deadline = Instant::now() + CONTENDED;
    let mut lock = loop {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => break l,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                bail!(
                    "another spool daemon (pid {}) is running on this repository ({})",
                    pid.trim(),
                    path.display()
                );
            }
            Err((_, errno)) => bail!("cannot lock {}: {errno}", path.display()),
        }
    };
    lock.set_len(0)
        .and_then(|_| lock.rewind())
        .and_then(|_| writeln!(lock, "{}", std::process::id()))
        .and_then(|_| lock.flush())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(InstanceLock { _lock: lock, path })
}

/// The pid of the daemon holding the lock, or `None` when no daemon runs. Looks by
/// taking a shared lock for an instant, which only a live holder prevents.
pub fn running(state_dir: &Path) -> Result<Option<u32>> {
    let path = lock_path(state_dir);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_free) => Ok(None),
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut text = String::new();
            file.read_to_string(&mut text)
                .with_context(|| format!("reading {}", path.display()))?;
            // The holder writes its pid right after locking; an empty file is a daemon
            // that is just starting.
            Ok(Some(text.trim().parse().unwrap_or(0)))
        }
        Err((_, errno)) => bail!("cannot check {}: {errno}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_names_its_holder_and_is_free_once_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(running(dir.path()).expect("look"), None);
        let held = acquire(dir.path()).expect("first");
        assert_eq!(running(dir.path()).expect("look"), Some(std::process::id()));
        let second = acquire(dir.path()).err().expect("second is refused");
        assert!(
            second.to_string().contains(&std::process::id().to_string()),
            "{second}"
        );
        drop(held);
        assert_eq!(running(dir.path()).expect("look"), None);
        acquire(dir.path()).expect("free again");
    }
}
