//! What one attempt came to. Serializable, because the engine records it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// How the attempt ended, as far as the process is concerned. Whether that counts as
/// success for the step is the activity kind's judgement (see `kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ActivityStatus {
    /// Exit code 0.
    Succeeded,
    /// Non-zero exit code.
    Failed { exit_code: i32 },
    /// Killed by a signal spool did not send.
    Signaled { signal: i32, name: String },
    /// A deadline passed; spool stopped the process group.
    TimedOut { kind: TimeoutKind },
    /// The cancellation token fired; spool stopped the process group.
    Canceled,
    /// The process never started (bad argv, missing program or directory, attempt
    /// files not writable).
    SpawnFailed { error: String },
    /// The process started but its end could not be observed (waiting on it failed).
    Lost { error: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutKind {
    StartToClose,
    Heartbeat,
    Idle,
}

/// One heartbeat line read from the attempt's heartbeat file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// 1 for the first heartbeat of the attempt.
    pub seq: u64,
    /// The line, trimmed, lossily decoded, capped at `HEARTBEAT_DETAILS_LIMIT` bytes.
    pub details: String,
    /// When spool read it, counted from spawn.
    pub elapsed: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityOutcome {
    pub status: ActivityStatus,
    pub attempt: u32,
    /// Process id (also the process group id); `None` if the spawn failed.
    pub pid: Option<u32>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// The last `capture_limit` bytes of stdout, lossily decoded.
    pub stdout_tail: String,
    pub stderr_tail: String,
    /// Total bytes read, so a reader knows whether the tails are the whole output.
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// The result file's content, when it existed and held valid JSON.
    pub result_json: Option<Value>,
    /// Why the result file could not be used, when it existed but was not valid.
    pub result_error: Option<String>,
    /// Details of the last heartbeat, if any.
    pub last_heartbeat: Option<String>,
    pub heartbeat_count: u64,
    /// Problems that did not change the status (log file write failure, processes
    /// that held the output pipes open after the group was killed, ...).
    pub warnings: Vec<String>,
}

impl ActivityOutcome {
    pub fn timed_out(&self) -> Option<TimeoutKind> {
        match self.status {
            ActivityStatus::TimedOut { kind } => Some(kind),
            _ => None,
        }
    }
}
