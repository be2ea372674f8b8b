//! Live events of a running attempt, for the engine (heartbeats) and for activity
//! kinds that read the child's output as it streams (agent CLIs print JSON lines).

use super::outcome::Heartbeat;
use tokio::sync::mpsc;

/// Called from the task running the attempt, in the order things happen. Methods
/// should return quickly: output is not read while they run.
pub trait AttemptObserver: Send {
    /// The process started with this pid (also its process group id).
    fn started(&mut self, _pid: u32) {}
    /// A line was appended to the heartbeat file.
    fn heartbeat(&mut self, _beat: &Heartbeat) {}
    /// One stdout line, without its `\n` (lines over 64 KiB arrive in pieces).
    fn stdout_line(&mut self, _line: &[u8]) {}
    /// One stderr line, without its `\n`.
    fn stderr_line(&mut self, _line: &[u8]) {}
}

/// Observes nothing.
impl AttemptObserver for () {}

/// Forwards heartbeats to a channel, for an engine that records them from another
/// task. A closed receiver is ignored: the attempt goes on.
impl AttemptObserver for mpsc::UnboundedSender<Heartbeat> {
    fn heartbeat(&mut self, beat: &Heartbeat) {
        let _ = self.send(beat.clone());
    }
}

/// Passes every event to two observers, `first` before `second`.
pub struct Tee<'a, A: ?Sized, B: ?Sized> {
    pub first: &'a mut A,
    pub second: &'a mut B,
}

impl<A, B> AttemptObserver for Tee<'_, A, B>
where
    A: AttemptObserver + ?Sized,
    B: AttemptObserver + ?Sized,
{
    fn started(&mut self, pid: u32) {
        self.first.started(pid);
        self.second.started(pid);
    }
    fn heartbeat(&mut self, beat: &Heartbeat) {
        self.first.heartbeat(beat);
        self.second.heartbeat(beat);
    }
    fn stdout_line(&mut self, line: &[u8]) {
        self.first.stdout_line(line);
        self.second.stdout_line(line);
    }
    fn stderr_line(&mut self, line: &[u8]) {
        self.first.stderr_line(line);
        self.second.stderr_line(line);
    }
}
