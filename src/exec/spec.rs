//! What to run (`ActivitySpec`) and which attempt of it this is (`Attempt`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Env var naming the file the activity appends heartbeat lines to.
pub const ENV_HEARTBEAT_FILE: &str = "SPOOL_HEARTBEAT_FILE";
/// Env var naming the file the activity may write its JSON result to.
pub const ENV_RESULT_FILE: &str = "SPOOL_RESULT_FILE";
/// Env var holding the attempt number (1 for the first try).
pub const ENV_ATTEMPT: &str = "SPOOL_ATTEMPT";
/// Env var holding the run id, when the caller passes one via [`ActivitySpec::with_ids`].
pub const ENV_RUN_ID: &str = "SPOOL_RUN_ID";
/// Env var holding the step id, when the caller passes one via [`ActivitySpec::with_ids`].
pub const ENV_STEP_ID: &str = "SPOOL_STEP_ID";

/// Default bytes kept from the end of stdout and of stderr.
pub const DEFAULT_CAPTURE_LIMIT: usize = 64 * 1024;
/// Default wall-clock cap of one attempt. There is always one: every wait has a deadline.
pub const DEFAULT_START_TO_CLOSE: Duration = Duration::from_secs(60 * 60);
/// Default time between SIGTERM and SIGKILL when an attempt is stopped.
pub const DEFAULT_CANCEL_GRACE: Duration = Duration::from_secs(10);

/// One process to run. `argv[0]` is the program, looked up in `PATH`; the arguments
/// are passed as they are, never through a shell. stdin is always `/dev/null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivitySpec {
    pub argv: Vec<String>,
    /// Working directory; `None` inherits spool's own.
    pub cwd: Option<PathBuf>,
    /// Variables set in the child, on top of spool's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables removed from the inherited environment (before `env` is applied).
    #[serde(default)]
    pub env_remove: Vec<String>,
    /// Bytes kept from the end of each of stdout and stderr in the outcome.
    pub capture_limit: usize,
    /// Optional full transcript. Both streams are appended to this one file, one
    /// record per line: `out ` or `err ` followed by the line's bytes and `\n`, in the
    /// order spool read them. Lines longer than 64 KiB are split into several records.
    pub log_file: Option<PathBuf>,
    /// Where the process group is recorded while it runs (see `exec::leftover`), so a
    /// later spool can stop it if this one dies first.
    pub pid_file: Option<PathBuf>,
    pub timeouts: Timeouts,
    /// Whether stdout/stderr output also resets the heartbeat deadline. Output always
    /// resets the idle deadline; only heartbeat-file lines carry details.
    pub output_is_heartbeat: bool,
}

/// The deadlines of one attempt. When one passes, the process group gets SIGTERM,
/// then SIGKILL after `cancel_grace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Wall clock from spawn to exit.
    pub start_to_close: Duration,
    /// Maximum gap between heartbeats, counted from spawn for the first one.
    pub heartbeat: Option<Duration>,
    /// Maximum time without any stdout/stderr output, counted from spawn.
    pub idle: Option<Duration>,
    /// Time between SIGTERM and SIGKILL on cancel or timeout.
    pub cancel_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            start_to_close: DEFAULT_START_TO_CLOSE,
            heartbeat: None,
            idle: None,
            cancel_grace: DEFAULT_CANCEL_GRACE,
        }
    }
}

impl ActivitySpec {
    /// A spec with the given argv and every other field at its default.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ActivitySpec {
            argv: argv.into_iter().map(Into::into).collect(),
            cwd: None,
            env: BTreeMap::new(),
            env_remove: Vec::new(),
            capture_limit: DEFAULT_CAPTURE_LIMIT,
            log_file: None,
            pid_file: None,
            timeouts: Timeouts::default(),
            output_is_heartbeat: false,
        }
    }

    /// Exports the run and step ids as `SPOOL_RUN_ID` and `SPOOL_STEP_ID`.
    pub fn with_ids(mut self, run_id: &str, step_id: &str) -> Self {
        self.env.insert(ENV_RUN_ID.to_string(), run_id.to_string());
        self.env
            .insert(ENV_STEP_ID.to_string(), step_id.to_string());
        self
    }
}

/// One try of a spec. The engine owns the files (one pair per attempt); exec
/// truncates the heartbeat file and removes a stale result file before spawning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first try.
    pub number: u32,
    pub heartbeat_file: PathBuf,
    pub result_file: PathBuf,
}

impl Attempt {
    /// The conventional file names inside a per-attempt directory.
    pub fn in_dir(number: u32, dir: &Path) -> Self {
        Attempt {
            number,
            heartbeat_file: dir.join("heartbeat"),
            result_file: dir.join("result.json"),
        }
    }
}
