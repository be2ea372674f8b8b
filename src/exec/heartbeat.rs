//! Reading heartbeats from the attempt's heartbeat file by polling its size.
//!
//! Polling is used rather than file notifications because it behaves the same on
//! every file system and costs one `stat` per interval. Each complete line appended
//! to the file is one heartbeat; its trimmed text is the heartbeat's details.

use super::buffers::LineSplitter;
use super::files::open_regular;
use super::outcome::Heartbeat;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Heartbeat details are capped so a runaway line cannot bloat what the engine stores.
pub const HEARTBEAT_DETAILS_LIMIT: usize = 1024;
/// Bytes read per poll at most; the rest is read on the following polls.
const READ_PER_POLL: u64 = 1024 * 1024;
/// Lines longer than this are cut; only the first `HEARTBEAT_DETAILS_LIMIT` bytes of a
/// line are kept anyway.
const MAX_LINE: usize = 64 * 1024;
/// Reads of `READ_PER_POLL` bytes at most when collecting the last heartbeats.
const FINAL_POLLS: usize = 16;

#[derive(Debug)]
pub(crate) struct HeartbeatFile {
    path: PathBuf,
    offset: u64,
    lines: LineSplitter,
    seq: u64,
    last: Option<String>,
}

impl HeartbeatFile {
    pub(crate) fn new(path: PathBuf) -> Self {
        HeartbeatFile {
            path,
            offset: 0,
            lines: LineSplitter::new(MAX_LINE),
            seq: 0,
            last: None,
        }
    }

    /// Reads what was appended since the last poll and returns the new heartbeats in
    /// file order. A file that shrank was rewritten: reading restarts at its start.
    pub(crate) async fn poll(&mut self, elapsed: Duration) -> std::io::Result<Vec<Heartbeat>> {
        let Some((mut file, len)) = open_regular(&self.path).await? else {
            return Ok(Vec::new());
        };
        if len < self.offset {
            self.offset = 0;
            self.lines.reset();
        }
        if len == self.offset {
            return Ok(Vec::new());
        }
        file.seek(SeekFrom::Start(self.offset)).await?;
        let mut bytes = Vec::new();
        file.take((len - self.offset).min(READ_PER_POLL))
            .read_to_end(&mut bytes)
            .await?;
        self.offset += bytes.len() as u64;
        let mut beats = Vec::new();
        let mut raw = Vec::new();
        self.lines.push(&bytes, |l| raw.push(details_of(l)));
        for details in raw {
            beats.push(self.beat(details, elapsed));
        }
        Ok(beats)
    }

    /// Reads the rest of the file (at most `FINAL_POLLS` reads, in case an escaped
    /// process keeps writing) and counts an unterminated final line as a heartbeat
    /// too: the writer has exited, so the line is complete.
    pub(crate) async fn finish(&mut self, elapsed: Duration) -> std::io::Result<Vec<Heartbeat>> {
        let mut beats = Vec::new();
        for _ in 0..FINAL_POLLS {
            let before = self.offset;
            beats.extend(self.poll(elapsed).await?);
            if self.offset == before {
                break;
            }
        }
        let mut raw = None;
        self.lines.finish(|l| raw = Some(details_of(l)));
        if let Some(details) = raw {
            beats.push(self.beat(details, elapsed));
        }
        Ok(beats)
    }

    pub(crate) fn count(&self) -> u64 {
        self.seq
    }

    pub(crate) fn last(&self) -> Option<&str> {
        self.last.as_deref()
    }

    fn beat(&mut self, details: String, elapsed: Duration) -> Heartbeat {
        self.seq += 1;
        self.last = Some(details.clone());
        Heartbeat {
            seq: self.seq,
            details,
            elapsed,
        }
    }
}

/// The trimmed, lossily decoded line, cut to at most `HEARTBEAT_DETAILS_LIMIT` bytes
/// on a character boundary.
pub(crate) fn details_of(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let trimmed = text.trim();
    let mut end = trimmed.len().min(HEARTBEAT_DETAILS_LIMIT);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    trimmed[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn details_are_trimmed_and_capped_on_char_boundary() {
        assert_eq!(details_of(b"  step 3/10 \r"), "step 3/10");
        let long = "é".repeat(HEARTBEAT_DETAILS_LIMIT);
        let d = details_of(long.as_bytes());
        assert!(d.len() <= HEARTBEAT_DETAILS_LIMIT && d.len() >= HEARTBEAT_DETAILS_LIMIT - 1);
        assert!(d.chars().all(|c| c == 'é'));
    }

    #[tokio::test]
    async fn appended_lines_become_heartbeats_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hb");
        let mut hb = HeartbeatFile::new(path.clone());
        assert!(hb
            .poll(Duration::ZERO)
            .await
            .expect("missing is fine")
            .is_empty());

        let mut f = std::fs::File::create(&path).expect("create");
        f.write_all(b"one\ntw").expect("write");
        let got = hb.poll(Duration::from_millis(1)).await.expect("poll");
        assert_eq!(
            got.iter().map(|b| b.details.as_str()).collect::<Vec<_>>(),
            ["one"]
        );
        f.write_all(b"o\nthree\n").expect("write");
        let got = hb.poll(Duration::from_millis(2)).await.expect("poll");
        let seqs: Vec<_> = got.iter().map(|b| (b.seq, b.details.as_str())).collect();
        assert_eq!(seqs, [(2, "two"), (3, "three")]);
        f.write_all(b"tail").expect("write");
        let got = hb.finish(Duration::from_millis(3)).await.expect("finish");
        assert_eq!(got.len(), 1);
        assert_eq!((hb.count(), hb.last()), (4, Some("tail")));
    }

    #[tokio::test]
    async fn truncated_file_is_read_from_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hb");
        std::fs::write(&path, b"first line\nsecond\n").expect("write");
        let mut hb = HeartbeatFile::new(path.clone());
        assert_eq!(hb.poll(Duration::ZERO).await.expect("poll").len(), 2);
        std::fs::write(&path, b"new\n").expect("rewrite");
        let got = hb.poll(Duration::ZERO).await.expect("poll");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].details, "new");
    }
}
