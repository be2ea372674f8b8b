//! The child's process group, killed as a whole.
//!
//! Each activity runs as the leader of its own process group, so signalling the group
//! reaches everything it started (shells, build tools, an agent's tool processes)
//! unless a descendant deliberately left the group with `setsid`.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Sends SIGKILL to the group when dropped, unless disarmed. This is what makes
/// dropping an attempt's future kill everything the attempt started.
#[derive(Debug)]
pub(crate) struct GroupGuard {
    pgid: Option<Pid>,
}

impl GroupGuard {
    /// Guards the group led by `pid` (the child was spawned with `process_group(0)`,
    /// so its group id equals its pid).
    pub(crate) fn new(pid: u32) -> Self {
        let raw = i32::try_from(pid).expect("process ids fit in pid_t");
        GroupGuard {
            pgid: Some(Pid::from_raw(raw)),
        }
    }

    /// Signals every process of the group. A group that no longer exists is not an
    /// error: there is nothing left to stop.
    pub(crate) fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.pgid {
            // ESRCH (group gone) is the expected race with a process that just exited.
            let _ = killpg(pgid, signal);
        }
    }

    /// Kills whatever is left of the group and stops guarding it. Called once the
    /// leader has been reaped: the attempt is over, so its descendants are too.
    pub(crate) fn kill_and_disarm(&mut self) {
        self.signal(Signal::SIGKILL);
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

/// The conventional name of a signal number (`SIGTERM`), or `SIG<n>` if unknown.
pub(crate) fn signal_name(signal: i32) -> String {
    Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("SIG{signal}"))
}
