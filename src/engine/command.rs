//! The `command` activity type: runs the task's argv through `exec` (the only module that
//! spawns processes) and turns its outcome into an [`AttemptResult`].

use super::runner::{ActivityRunner, AttemptControl, AttemptResult, BoxFuture};
use crate::exec::{
    run_attempt_killable, status_verdict, ActivityOutcome, ActivitySpec, ActivityStatus, Attempt,
    AttemptObserver, Heartbeat, TimeoutKind, Timeouts, Verdict, DEFAULT_CANCEL_GRACE,
    DEFAULT_START_TO_CLOSE,
};
use serde_json::json;
use spool_core::workflow::decide::ActivityTask;
use spool_core::workflow::event::{ActivityOutput, Failure, TimeoutType};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs `command` activities. Each attempt gets its own directory for the heartbeat and
/// result files: `<attempts_dir>/<run>/<scheduled event>/<attempt>/`.
#[derive(Debug, Clone)]
pub struct CommandRunner {
    pub attempts_dir: PathBuf,
    /// Time between SIGTERM and SIGKILL when an attempt is cancelled.
    pub cancel_grace: Duration,
}

impl CommandRunner {
    pub fn new(attempts_dir: PathBuf) -> CommandRunner {
        CommandRunner {
            attempts_dir,
            cancel_grace: DEFAULT_CANCEL_GRACE,
        }
    }

    fn spec(&self, task: &ActivityTask) -> ActivitySpec {
        let mut spec =
            ActivitySpec::new(task.input.argv.clone()).with_ids(&task.run_id, &task.activity_id);
        spec.cwd = task.input.cwd.as_ref().map(PathBuf::from);
        spec.env.extend(task.input.env.clone());
        if let Some(details) = task
            .heartbeat_details
            .as_ref()
            .and_then(|d| d.get("details"))
            .and_then(|d| d.as_str())
        {
            spec.env
                .insert(ENV_LAST_HEARTBEAT.to_string(), details.to_string());
        }
        spec.capture_limit = usize::try_from(task.input.capture_bytes).unwrap_or(usize::MAX);
        spec.timeouts = Timeouts {
            start_to_close: task.start_to_close.unwrap_or(DEFAULT_START_TO_CLOSE),
            heartbeat: task.heartbeat,
            idle: None,
            cancel_grace: self.cancel_grace,
        };
        spec
    }
}

/// Forwards heartbeat lines to the engine, at most one per `min_gap`: each one is a
/// durable transition, and the engine only needs to know the attempt is alive.
struct Forward {
    control: AttemptControl,
    min_gap: Duration,
    last: Option<Instant>,
}

impl AttemptObserver for Forward {
    fn heartbeat(&mut self, beat: &Heartbeat) {
        if self.last.is_some_and(|t| t.elapsed() < self.min_gap) {
            return;
        }
        self.last = Some(Instant::now());
        self.control
            .heartbeat(json!({"seq": beat.seq, "details": beat.details}));
    }
}

/// The transcript of an attempt's stdout and stderr, in its attempt directory.
pub const OUTPUT_LOG: &str = "output.log";

/// Where the files of one attempt live: `<attempts_dir>/<run>/<scheduled event>/<attempt>/`.
pub fn attempt_dir(attempts_dir: &Path, run_id: &str, scheduled: u64, attempt: u32) -> PathBuf {
    attempts_dir
        .join(run_id)
        .join(scheduled.to_string())
        .join(attempt.to_string())
}

/// The process group record of an attempt (see `exec::leftover`).
pub const PID_FILE: &str = "pid";
/// The same for the agent CLI an agent step starts in its own process group.
pub const AGENT_PID_FILE: &str = "agent.pid";

/// Kills the recorded process groups of every attempt directory under `step_dir`.
async fn kill_leftovers(step_dir: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(step_dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        for name in [PID_FILE, AGENT_PID_FILE] {
            let path = entry.path().join(name);
            if path.exists() && crate::exec::leftover::kill_recorded(&path) {
                eprintln!(
                    "spool: killed the leftover process group of {}",
                    path.display()
                );
            }
        }
    }
}

/// Environment variable holding the last heartbeat details of the previous attempt, so a
/// retry can resume (e.g. an agent session id or a page cursor).
pub const ENV_LAST_HEARTBEAT: &str = "SPOOL_LAST_HEARTBEAT";

impl ActivityRunner for CommandRunner {
    fn run(&self, task: ActivityTask, control: AttemptControl) -> BoxFuture<AttemptResult> {
        let mut spec = self.spec(&task);
        let dir = attempt_dir(
            &self.attempts_dir,
            &task.run_id,
            task.scheduled_event_id,
            task.attempt,
        );
        // The full transcript, for `spool logs`; the engine keeps only the tails.
        spec.log_file = Some(dir.join(OUTPUT_LOG));
        spec.pid_file = Some(dir.join(PID_FILE));
        let step_dir = dir.parent().map(Path::to_path_buf);
        Box::pin(async move {
            if let Err(e) = tokio::fs::create_dir_all(&dir).await {
                return AttemptResult::Failed(Failure::new(
                    "SpawnFailed",
                    format!("cannot create {}: {e}", dir.display()),
                ));
            }
            // Earlier attempts of this step whose spool died (kill -9, power loss) may
            // still run: stop them before starting again.
            if let Some(step_dir) = step_dir {
                kill_leftovers(&step_dir).await;
            }
            let attempt = Attempt::in_dir(task.attempt, &dir);
            // A graceful cancel: SIGTERM, then SIGKILL after the grace; a kill: SIGKILL now.
            let (cancel, kill) = (control.cancel.clone(), control.kill.clone());
            // A third of the heartbeat timeout keeps the engine's deadline comfortably fed.
            let min_gap = task
                .heartbeat
                .map(|h| (h / 3).min(Duration::from_secs(1)))
                .unwrap_or(Duration::from_secs(1));
            let mut forward = Forward {
                control,
                min_gap,
                last: None,
            };
            let outcome = run_attempt_killable(&spec, &attempt, &cancel, &kill, &mut forward).await;
            judge(&outcome)
        })
    }
}

/// Maps exec's outcome to the engine's terms.
pub fn judge(outcome: &ActivityOutcome) -> AttemptResult {
    let exit_code = match outcome.status {
        ActivityStatus::Succeeded => Some(0),
        ActivityStatus::Failed { exit_code } => Some(exit_code),
        _ => None,
    };
    let output = |result| ActivityOutput {
        exit_code,
        stdout: outcome.stdout_tail.clone(),
        stderr: outcome.stderr_tail.clone(),
        result,
    };
    match status_verdict(outcome) {
        Verdict::Succeeded { result } => AttemptResult::Completed(output(result)),
        // A failed attempt's result file is kept too: it may say what the attempt cost.
        Verdict::Failed {
            error_type,
            message,
        } => AttemptResult::Failed(Failure {
            details: Some(output(outcome.result_json.clone())),
            ..Failure::new(&error_type, message)
        }),
        Verdict::TimedOut { kind } => {
            let failure = match kind {
                TimeoutKind::StartToClose => Failure::timeout(TimeoutType::StartToClose),
                TimeoutKind::Heartbeat => Failure::timeout(TimeoutType::Heartbeat),
                TimeoutKind::Idle => {
                    Failure::new("TimeoutIdle", "no output within the idle timeout")
                }
            };
            AttemptResult::Failed(Failure {
                details: Some(output(None)),
                ..failure
            })
        }
        Verdict::Canceled => AttemptResult::Canceled,
    }
}
