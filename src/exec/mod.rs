//! Running activities as child processes: the only place spool spawns processes.
//!
//! Agents hang, die and exit 0 after failing, so every attempt here has deadlines and
//! every child dies with its attempt:
//! - argv only, never a shell string; stdin is `/dev/null`;
//! - each child leads its own process group, and the group is what gets signalled:
//!   SIGTERM on cancel or timeout, SIGKILL after the grace period, SIGKILL for whatever
//!   is left when the leader exits, and SIGKILL when the attempt's future is dropped;
//! - deadlines: start-to-close (wall clock), heartbeat (gap between lines appended to
//!   `$SPOOL_HEARTBEAT_FILE`), idle (gap between stdout/stderr output);
//! - the outcome carries the output tails, the JSON the activity wrote to
//!   `$SPOOL_RESULT_FILE`, and the last heartbeat; an activity kind then judges it.
//!
//! Entry points: [`run_attempt`] for a ready [`ActivitySpec`], [`run_judged`] to run
//! and judge with an [`ActivityKind`] such as [`CommandKind`].

pub mod agents;
mod buffers;
mod files;
mod group;
mod heartbeat;
mod kind;
pub mod leftover;
pub mod measure;
mod observer;
mod outcome;
mod run;
mod spec;

pub use heartbeat::HEARTBEAT_DETAILS_LIMIT;
pub use kind::{
    error_type, run_judged, status_verdict, ActivityKind, CommandKind, Judge, Judged, KindError,
    KindInput, Verdict,
};
pub use observer::{AttemptObserver, Tee};
pub use outcome::{ActivityOutcome, ActivityStatus, Heartbeat, TimeoutKind};
pub use run::{run_attempt, run_attempt_killable};
pub use spec::{
    ActivitySpec, Attempt, Timeouts, DEFAULT_CANCEL_GRACE, DEFAULT_CAPTURE_LIMIT,
    DEFAULT_START_TO_CLOSE, ENV_ATTEMPT, ENV_HEARTBEAT_FILE, ENV_RESULT_FILE, ENV_RUN_ID,
    ENV_STEP_ID,
};
