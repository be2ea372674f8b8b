//! Process groups an earlier life of spool left running.
//!
//! An attempt's process group outlives a `kill -9` of the spool process that started it
//! (nothing tells the child its parent died). Each attempt therefore records its group
//! in a pid file: the pid (= process group id) and the process's start time, so that a
//! later spool can stop the leftover before it runs the step again, and never signals
//! an unrelated process that happens to reuse the pid.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::path::Path;

/// The start time of `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 of a `/proc/<pid>/stat` line; the command name (field 2) may hold spaces
/// and parentheses, so fields are counted after its last `)`.
fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Records the group led by `pid` in `path` (`<pid> <start time>`). Best effort: without
/// the file, a leftover is only found by its own timeout.
pub(crate) fn record(path: &Path, pid: u32) {
    if let Some(start) = start_time(pid) {
        let _ = std::fs::write(path, format!("{pid} {start}\n"));
    }
}

/// SIGKILLs the process group recorded in `path` if its leader is still the process
/// that was recorded, then removes the file. Returns whether a group was killed.
pub fn kill_recorded(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let mut parts = text.split_whitespace();
    let recorded = (
        parts.next().and_then(|p| p.parse::<u32>().ok()),
        parts.next().and_then(|s| s.parse::<u64>().ok()),
    );
    let mut killed = false;
    if let (Some(pid), Some(start)) = recorded {
        if pid > 1 && start_time(pid) == Some(start) {
            if let Ok(raw) = i32::try_from(pid) {
                killed = killpg(Pid::from_raw(raw), Signal::SIGKILL).is_ok();
            }
        }
    }
    let _ = std::fs::remove_file(path);
    killed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn the_start_time_is_read_after_the_command_name() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("garbage"), None);
        assert!(start_time(std::process::id()).is_some());
    }

    #[test]
    fn a_recorded_group_is_killed_and_a_stale_record_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let file = dir.path().join("pid");
        record(&file, child.id());
        assert!(kill_recorded(&file));
        let status = child.wait().expect("wait");
        assert!(!status.success(), "killed: {status:?}");
        assert!(!file.exists());
        // A record whose process is gone (or whose pid was reused) is left alone.
        std::fs::write(&file, format!("{} 1\n", std::process::id())).expect("write");
        assert!(!kill_recorded(&file));
    }
}
