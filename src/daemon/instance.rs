//! One daemon per repository: an exclusive `flock` on `<state dir>/daemon.lock`, with
//! the holder's pid written inside so a second `spool up` can name it. The kernel drops
//! the lock when its process dies, so a lock file left by a killed daemon is simply
//! taken over.

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Held while the daemon runs.
pub struct InstanceLock {
    _lock: Flock<File>,
    pub path: PathBuf,
}

/// Takes the lock or fails naming the running daemon's pid.
pub fn acquire(state_dir: &Path) -> Result<InstanceLock> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let path = state_dir.join("daemon.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
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
    };
    lock.set_len(0)
        .and_then(|_| lock.rewind())
        .and_then(|_| writeln!(lock, "{}", std::process::id()))
        .and_then(|_| lock.flush())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(InstanceLock { _lock: lock, path })
}
