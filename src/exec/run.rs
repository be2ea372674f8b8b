//! Running one attempt: spawn, watch, stop, reap, report.
//!
//! One task drives everything with a single `select!` loop: reading both pipes,
//! polling the heartbeat file, waiting for the exit, the cancellation token and the
//! nearest deadline. There are no helper tasks to leak; dropping the future drops the
//! [`GroupGuard`], which SIGKILLs the whole process group, and tokio reaps the child.

use super::buffers::{LineSplitter, TailBuffer};
use super::files::{open_regular, remove_if_exists};
use super::group::{signal_name, GroupGuard};
use super::heartbeat::HeartbeatFile;
use super::observer::AttemptObserver;
use super::outcome::{ActivityOutcome, ActivityStatus, TimeoutKind};
use super::spec::{ActivitySpec, Attempt, ENV_ATTEMPT, ENV_HEARTBEAT_FILE, ENV_RESULT_FILE};
use chrono::Utc;
use nix::sys::signal::Signal;
use serde_json::Value;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::fs;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::time::{sleep_until, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// How often the heartbeat file is checked; heartbeats are seen at most this late.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
const READ_CHUNK: usize = 64 * 1024;
/// Longest line handed to observers and the log in one piece.
const MAX_LINE: usize = 64 * 1024;
/// After SIGKILL, how long to wait for the kernel to report the exit before giving up
/// on a process stuck in an uninterruptible sleep.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// After the leader exited and the group was killed, how long to keep reading output
/// still buffered in the pipes.
const DRAIN_WAIT: Duration = Duration::from_secs(2);
/// A result file larger than this is reported as an error rather than loaded.
const RESULT_FILE_LIMIT: u64 = 16 * 1024 * 1024;

/// Runs one attempt of `spec` to its end and reports how it went. Never panics on bad
/// input and never waits without a deadline: the attempt ends by exit, by a timeout
/// of `spec.timeouts`, or by `cancel`; in the last two cases the process group gets
/// SIGTERM, then SIGKILL after `cancel_grace`. When the leader exits, whatever is left
/// of its group is killed too.
pub async fn run_attempt(
    spec: &ActivitySpec,
    attempt: &Attempt,
    cancel: &CancellationToken,
    observer: &mut dyn AttemptObserver,
) -> ActivityOutcome {
    run_attempt_killable(spec, attempt, cancel, &CancellationToken::new(), observer).await
}

/// [`run_attempt`] with a second token for an immediate stop: when `kill` fires the
/// process group gets SIGKILL at once, without the grace period (a terminated run).
pub async fn run_attempt_killable(
    spec: &ActivitySpec,
    attempt: &Attempt,
    cancel: &CancellationToken,
    kill: &CancellationToken,
    observer: &mut dyn AttemptObserver,
) -> ActivityOutcome {
    let started_at = Utc::now();
    let t0 = Instant::now();
    let mut out = Output::new(spec.capture_limit);
    let mut hb = HeartbeatFile::new(absolute(&attempt.heartbeat_file));
    let (status, pid) = if cancel.is_cancelled() || kill.is_cancelled() {
        (ActivityStatus::Canceled, None)
    } else {
        match start(spec, attempt).await {
            Err(error) => (ActivityStatus::SpawnFailed { error }, None),
            Ok((child, log)) => {
                out.log = log;
                let pid = child.id();
                let stops = Stops { cancel, kill };
                let status = supervise(child, spec, stops, observer, &mut out, &mut hb, t0).await;
                // The group is gone (supervise kills what is left of it).
                if let Some(path) = &spec.pid_file {
                    let _ = std::fs::remove_file(path);
                }
                (status, pid)
            }
        }
    };
    out.finish(observer).await;
    if pid.is_some() {
        match hb.finish(t0.elapsed()).await {
            Ok(beats) => beats.iter().for_each(|b| observer.heartbeat(b)),
            Err(e) => out.warn(format!("reading heartbeat file: {e}")),
        }
    }
    let (result_json, result_error) = if pid.is_some() {
        read_result(&absolute(&attempt.result_file)).await
    } else {
        (None, None)
    };
    ActivityOutcome {
        status,
        attempt: attempt.number,
        pid,
        started_at,
        ended_at: Utc::now(),
        duration_ms: u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX),
        stdout_tail: out.stdout_tail.to_string_lossy(),
        stderr_tail: out.stderr_tail.to_string_lossy(),
        stdout_bytes: out.stdout_tail.total(),
        stderr_bytes: out.stderr_tail.total(),
        result_json,
        result_error,
        last_heartbeat: hb.last().map(str::to_string),
        heartbeat_count: hb.count(),
        warnings: out.warnings,
    }
}

/// Why spool is stopping the group.
#[derive(Debug, Clone, Copy)]
enum StopReason {
    Timeout(TimeoutKind),
    Cancel,
}

#[derive(Debug)]
struct Stopping {
    reason: StopReason,
    kill_at: Instant,
    killed_at: Option<Instant>,
}

/// The two ways a caller stops an attempt: gracefully, or at once.
#[derive(Clone, Copy)]
struct Stops<'a> {
    cancel: &'a CancellationToken,
    kill: &'a CancellationToken,
}

/// Watches the running child until it has exited (or refuses to die), then kills the
/// rest of its group and drains the pipes.
async fn supervise(
    mut child: Child,
    spec: &ActivitySpec,
    stops: Stops<'_>,
    observer: &mut dyn AttemptObserver,
    out: &mut Output,
    hb: &mut HeartbeatFile,
    t0: Instant,
) -> ActivityStatus {
    let Some(pid) = child.id() else {
        // Only possible if the child was already reaped, which nothing here did.
        return ActivityStatus::Lost {
            error: "the spawned process has no pid".to_string(),
        };
    };
    let mut group = GroupGuard::new(pid);
    if let Some(path) = &spec.pid_file {
        super::leftover::record(path, pid);
    }
    observer.started(pid);
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (mut out_buf, mut err_buf) = (vec![0u8; READ_CHUNK], vec![0u8; READ_CHUNK]);
    let timeouts = spec.timeouts;
    let close_at = after(t0, timeouts.start_to_close);
    let (mut last_beat, mut last_output) = (t0, t0);
    let mut stop: Option<Stopping> = None;
    let mut hb_error_reported = false;
    let mut tick = tokio::time::interval_at(t0 + POLL_INTERVAL, POLL_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let exit: Result<ExitStatus, String> = loop {
        let beat_at = timeouts.heartbeat.map(|d| after(last_beat, d));
        let idle_at = timeouts.idle.map(|d| after(last_output, d));
        let deadline = match &stop {
            None => [Some(close_at), beat_at, idle_at]
                .into_iter()
                .flatten()
                .min(),
            Some(s) => Some(s.killed_at.map_or(s.kill_at, |k| after(k, KILL_WAIT))),
        };
        tokio::select! {
            status = child.wait() => {
                break status.map_err(|e| format!("waiting for process {pid} failed: {e}"));
            }
            r = read_some(&mut stdout, &mut out_buf) => {
                if let Some(n) = out.on_read(Stream::Stdout, r, &out_buf, &mut stdout, observer).await {
                    last_output = Instant::now();
                    if spec.output_is_heartbeat && n > 0 { last_beat = last_output; }
                }
            }
            r = read_some(&mut stderr, &mut err_buf) => {
                if let Some(n) = out.on_read(Stream::Stderr, r, &err_buf, &mut stderr, observer).await {
                    last_output = Instant::now();
                    if spec.output_is_heartbeat && n > 0 { last_beat = last_output; }
                }
            }
            _ = tick.tick() => {
                if poll_heartbeats(hb, t0, observer, out, &mut hb_error_reported).await {
                    last_beat = Instant::now();
                }
            }
            _ = stops.cancel.cancelled(), if stop.is_none() => {
                stop = Some(begin_stop(&group, StopReason::Cancel, timeouts.cancel_grace));
            }
            _ = stops.kill.cancelled(), if stop.as_ref().is_none_or(|s| s.killed_at.is_none()) => {
                group.signal(Signal::SIGKILL);
                let now = Instant::now();
                match &mut stop {
                    Some(s) => s.killed_at = Some(now),
                    None => stop = Some(Stopping { reason: StopReason::Cancel, kill_at: now, killed_at: Some(now) }),
                }
            }
            _ = sleep_until_opt(deadline) => {
                let now = Instant::now();
                match &mut stop {
                    None => {
                        let expired = |at: Option<Instant>| at.is_some_and(|at| now >= at);
                        let kind = if now >= close_at {
                            Some(TimeoutKind::StartToClose)
                        } else if expired(beat_at) {
                            // A heartbeat may have landed since the last poll.
                            if poll_heartbeats(hb, t0, observer, out, &mut hb_error_reported).await {
                                last_beat = Instant::now();
                                None
                            } else {
                                Some(TimeoutKind::Heartbeat)
                            }
                        } else if expired(idle_at) {
                            Some(TimeoutKind::Idle)
                        } else {
                            None
                        };
                        if let Some(kind) = kind {
                            stop = Some(begin_stop(&group, StopReason::Timeout(kind), timeouts.cancel_grace));
                        }
                    }
                    Some(s) if s.killed_at.is_none() => {
                        group.signal(Signal::SIGKILL);
                        s.killed_at = Some(now);
                    }
                    Some(_) => {
                        break Err(format!(
                            "process {pid} did not exit within {}s of SIGKILL; left to the runtime to reap",
                            KILL_WAIT.as_secs()
                        ));
                    }
                }
            }
        }
    };

    group.kill_and_disarm();
    match &exit {
        Ok(_) => drain(&mut stdout, &mut stderr, out, observer).await,
        Err(e) => out.warn(e.clone()),
    }
    if let Some(s) = stop {
        return match s.reason {
            StopReason::Timeout(kind) => ActivityStatus::TimedOut { kind },
            StopReason::Cancel => ActivityStatus::Canceled,
        };
    }
    match exit {
        Ok(status) => exit_status(status),
        Err(error) => ActivityStatus::Lost { error },
    }
}

fn begin_stop(group: &GroupGuard, reason: StopReason, grace: Duration) -> Stopping {
    group.signal(Signal::SIGTERM);
    Stopping {
        reason,
        kill_at: after(Instant::now(), grace),
        killed_at: None,
    }
}

/// Reports new heartbeats; true if there were any.
async fn poll_heartbeats(
    hb: &mut HeartbeatFile,
    t0: Instant,
    observer: &mut dyn AttemptObserver,
    out: &mut Output,
    error_reported: &mut bool,
) -> bool {
    match hb.poll(t0.elapsed()).await {
        Ok(beats) => {
            beats.iter().for_each(|b| observer.heartbeat(b));
            !beats.is_empty()
        }
        Err(e) => {
            if !std::mem::replace(error_reported, true) {
                out.warn(format!("reading heartbeat file: {e}"));
            }
            false
        }
    }
}

/// Reads what the killed group left in the pipes, for at most `DRAIN_WAIT`.
async fn drain<O, E>(
    stdout: &mut Option<O>,
    stderr: &mut Option<E>,
    out: &mut Output,
    observer: &mut dyn AttemptObserver,
) where
    O: AsyncRead + Unpin,
    E: AsyncRead + Unpin,
{
    let until = Instant::now() + DRAIN_WAIT;
    let (mut out_buf, mut err_buf) = (vec![0u8; READ_CHUNK], vec![0u8; READ_CHUNK]);
    while stdout.is_some() || stderr.is_some() {
        tokio::select! {
            r = read_some(stdout, &mut out_buf) => {
                out.on_read(Stream::Stdout, r, &out_buf, stdout, observer).await;
            }
            r = read_some(stderr, &mut err_buf) => {
                out.on_read(Stream::Stderr, r, &err_buf, stderr, observer).await;
            }
            _ = sleep_until(until) => {
                out.warn(format!(
                    "output pipes still open {}s after the process group was killed \
                     (a descendant left the group); stopped reading",
                    DRAIN_WAIT.as_secs()
                ));
                break;
            }
        }
    }
}

fn exit_status(status: ExitStatus) -> ActivityStatus {
    match (status.code(), status.signal()) {
        (Some(0), _) => ActivityStatus::Succeeded,
        (Some(exit_code), _) => ActivityStatus::Failed { exit_code },
        (None, Some(signal)) => ActivityStatus::Signaled {
            signal,
            name: signal_name(signal),
        },
        (None, None) => ActivityStatus::Lost {
            error: format!("exit status {status} has neither a code nor a signal"),
        },
    }
}

/// Reads from the stream if it is still open; never completes otherwise, so a closed
/// stream simply drops out of the `select!`.
async fn read_some<R: AsyncRead + Unpin>(r: &mut Option<R>, buf: &mut [u8]) -> io::Result<usize> {
    match r {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

/// `t + d`, saturating at a far future instead of overflowing: durations come from
/// configuration and may be absurdly large.
fn after(t: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    t.checked_add(d.min(FAR))
        .expect("an instant a century ahead is representable")
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Prepares the attempt files and spawns the child. The error is the message for
/// `SpawnFailed`.
async fn start(
    spec: &ActivitySpec,
    attempt: &Attempt,
) -> Result<(Child, Option<fs::File>), String> {
    let Some((program, args)) = spec.argv.split_first() else {
        return Err("argv is empty: there is no program to run".to_string());
    };
    if let Some(cwd) = &spec.cwd {
        match fs::metadata(cwd).await {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "working directory {} is not a directory",
                    cwd.display()
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(format!(
                    "working directory {} does not exist",
                    cwd.display()
                ));
            }
            Err(e) => return Err(format!("working directory {}: {e}", cwd.display())),
        }
    }
    let heartbeat_file = absolute(&attempt.heartbeat_file);
    let result_file = absolute(&attempt.result_file);
    // Replace rather than truncate: a previous attempt may have left anything there.
    create_parent(&heartbeat_file).await?;
    remove_if_exists(&heartbeat_file).await.map_err(|e| {
        format!(
            "cannot remove old heartbeat file {}: {e}",
            heartbeat_file.display()
        )
    })?;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&heartbeat_file)
        .await
        .map_err(|e| {
            format!(
                "cannot create heartbeat file {}: {e}",
                heartbeat_file.display()
            )
        })?;
    create_parent(&result_file).await?;
    remove_if_exists(&result_file).await.map_err(|e| {
        format!(
            "cannot remove stale result file {}: {e}",
            result_file.display()
        )
    })?;
    let log = match &spec.log_file {
        None => None,
        Some(path) => {
            create_parent(path).await?;
            let file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
            Some(file)
        }
    };

    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    for name in &spec.env_remove {
        cmd.env_remove(name);
    }
    cmd.envs(&spec.env)
        .env(ENV_HEARTBEAT_FILE, &heartbeat_file)
        .env(ENV_RESULT_FILE, &result_file)
        .env(ENV_ATTEMPT, attempt.number.to_string());
    let child = cmd
        .spawn()
        .map_err(|e| spawn_error(program, spec.cwd.as_deref(), &e))?;
    Ok((child, log))
}

fn spawn_error(program: &str, cwd: Option<&Path>, e: &io::Error) -> String {
    let place = cwd.map_or(String::new(), |c| format!(" in {}", c.display()));
    match e.kind() {
        io::ErrorKind::NotFound if program.contains('/') => {
            format!("program `{program}` does not exist{place}")
        }
        io::ErrorKind::NotFound => format!("program `{program}` not found in PATH"),
        io::ErrorKind::PermissionDenied => {
            format!("permission denied starting `{program}`{place}: {e}")
        }
        _ => format!("cannot start `{program}`{place}: {e}"),
    }
}

async fn create_parent(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("cannot create directory {}: {e}", dir.display())),
        _ => Ok(()),
    }
}

/// The child runs in another directory, so paths it is given must not be relative.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The result file's JSON, or why it could not be used. A missing file is neither.
async fn read_result(path: &Path) -> (Option<Value>, Option<String>) {
    let shown = path.display();
    let (file, len) = match open_regular(path).await {
        Ok(None) => return (None, None),
        Ok(Some(opened)) => opened,
        Err(e) => return (None, Some(format!("result file {shown}: {e}"))),
    };
    if len > RESULT_FILE_LIMIT {
        return (
            None,
            Some(format!(
                "result file {shown} is {len} bytes, over the {RESULT_FILE_LIMIT}-byte limit"
            )),
        );
    }
    let mut bytes = Vec::new();
    if let Err(e) = file.take(RESULT_FILE_LIMIT).read_to_end(&mut bytes).await {
        return (None, Some(format!("result file {shown}: {e}")));
    }
    match serde_json::from_slice(&bytes) {
        Ok(v) => (Some(v), None),
        Err(e) => (
            None,
            Some(format!("result file {shown} is not valid JSON: {e}")),
        ),
    }
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Everything done with the child's output: tails, lines for observers, the log.
struct Output {
    stdout_tail: TailBuffer,
    stderr_tail: TailBuffer,
    stdout_lines: LineSplitter,
    stderr_lines: LineSplitter,
    log: Option<fs::File>,
    log_buf: Vec<u8>,
    warnings: Vec<String>,
}

impl Output {
    fn new(capture_limit: usize) -> Self {
        Output {
            stdout_tail: TailBuffer::new(capture_limit),
            stderr_tail: TailBuffer::new(capture_limit),
            stdout_lines: LineSplitter::new(MAX_LINE),
            stderr_lines: LineSplitter::new(MAX_LINE),
            log: None,
            log_buf: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, w: String) {
        self.warnings.push(w);
    }

    /// Handles one read result; closes the stream on EOF or error. Returns the byte
    /// count of a successful read (0 at EOF).
    async fn on_read<R>(
        &mut self,
        stream: Stream,
        r: io::Result<usize>,
        buf: &[u8],
        pipe: &mut Option<R>,
        observer: &mut dyn AttemptObserver,
    ) -> Option<usize> {
        match r {
            Ok(0) => {
                *pipe = None;
                Some(0)
            }
            Ok(n) => {
                self.on_output(stream, &buf[..n], observer).await;
                Some(n)
            }
            Err(e) => {
                *pipe = None;
                self.warn(format!("reading {stream:?}: {e}"));
                None
            }
        }
    }

    async fn on_output(
        &mut self,
        stream: Stream,
        chunk: &[u8],
        observer: &mut dyn AttemptObserver,
    ) {
        let logging = self.log.is_some();
        let log_buf = &mut self.log_buf;
        match stream {
            Stream::Stdout => {
                self.stdout_tail.push(chunk);
                self.stdout_lines.push(chunk, |line| {
                    observer.stdout_line(line);
                    record(log_buf, logging, b"out ", line);
                });
            }
            Stream::Stderr => {
                self.stderr_tail.push(chunk);
                self.stderr_lines.push(chunk, |line| {
                    observer.stderr_line(line);
                    record(log_buf, logging, b"err ", line);
                });
            }
        }
        self.write_log().await;
    }

    /// Flushes unterminated last lines and the log.
    async fn finish(&mut self, observer: &mut dyn AttemptObserver) {
        let logging = self.log.is_some();
        let log_buf = &mut self.log_buf;
        self.stdout_lines.finish(|line| {
            observer.stdout_line(line);
            record(log_buf, logging, b"out ", line);
        });
        self.stderr_lines.finish(|line| {
            observer.stderr_line(line);
            record(log_buf, logging, b"err ", line);
        });
        self.write_log().await;
        if let Some(log) = &mut self.log {
            if let Err(e) = log.flush().await {
                self.log = None;
                self.warn(format!("writing log file: {e}"));
            }
        }
    }

    /// Writes pending log records (one write per chunk of output, flushed so that
    /// `spool logs -f` sees lines as they come); on failure stops logging and says so once.
    async fn write_log(&mut self) {
        if self.log_buf.is_empty() {
            return;
        }
        if let Some(log) = &mut self.log {
            let written = match log.write_all(&self.log_buf).await {
                Ok(()) => log.flush().await,
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                self.log = None;
                self.warn(format!("writing log file: {e}; logging stopped"));
            }
        }
        self.log_buf.clear();
    }
}

fn record(buf: &mut Vec<u8>, logging: bool, tag: &[u8], line: &[u8]) {
    if logging {
        buf.extend_from_slice(tag);
        buf.extend_from_slice(line);
        buf.push(b'\n');
    }
}
