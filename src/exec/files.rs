//! Reading files the child controls without letting the child block spool.
//!
//! The heartbeat and result files live where the activity can replace them; a FIFO in
//! their place would make a plain `open` wait forever for a writer. Opening with
//! `O_NONBLOCK` and accepting only regular files keeps every read bounded.

use nix::fcntl::OFlag;
use std::io;
use std::path::Path;
use tokio::fs;

/// Opens `path` for reading if it is a regular file, returning it with its length.
/// `Ok(None)` if it does not exist; an error if it is anything but a regular file.
pub(crate) async fn open_regular(path: &Path) -> io::Result<Option<(fs::File, u64)>> {
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(path)
        .await;
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata().await?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(Some((file, meta.len())))
}

/// Removes `path` if it exists, whatever kind of file it is.
pub(crate) async fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
