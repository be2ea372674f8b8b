//! exec against real processes. Child programs are small `sh -c` scripts; every wait
//! is on a condition with a deadline.

use serde_json::json;
use spool::exec::{
    error_type, run_attempt, run_judged, ActivityKind, ActivityOutcome, ActivitySpec,
    ActivityStatus, Attempt, AttemptObserver, CommandKind, Heartbeat, KindInput, TimeoutKind,
    Verdict,
};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A spec running `script` with `sh -c`; `args` become `$1`, `$2`, ...
fn sh(script: &str, args: &[&str]) -> ActivitySpec {
    let mut argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        script.to_string(),
        "sh".to_string(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    let mut spec = ActivitySpec::new(argv);
    spec.timeouts.start_to_close = Duration::from_secs(30);
    spec.timeouts.cancel_grace = Duration::from_secs(5);
    spec
}

fn attempt(dir: &tempfile::TempDir) -> Attempt {
    Attempt::in_dir(1, &dir.path().join("attempt-1"))
}

async fn run(spec: &ActivitySpec, dir: &tempfile::TempDir) -> ActivityOutcome {
    run_attempt(spec, &attempt(dir), &CancellationToken::new(), &mut ()).await
}

/// Records everything; optionally cancels a token, or announces on a channel, when a
/// given stdout line arrives.
#[derive(Default)]
struct Recorder {
    pid: Option<u32>,
    stdout: Vec<String>,
    stderr: Vec<String>,
    beats: Vec<Heartbeat>,
    cancel_on: Option<(String, CancellationToken)>,
    announce: Option<mpsc::UnboundedSender<String>>,
}

impl AttemptObserver for Recorder {
    fn started(&mut self, pid: u32) {
        self.pid = Some(pid);
    }
    fn heartbeat(&mut self, beat: &Heartbeat) {
        self.beats.push(beat.clone());
    }
    fn stdout_line(&mut self, line: &[u8]) {
        let line = String::from_utf8_lossy(line).into_owned();
        if let Some((want, token)) = &self.cancel_on {
            if *want == line {
                token.cancel();
            }
        }
        if let Some(tx) = &self.announce {
            let _ = tx.send(line.clone());
        }
        self.stdout.push(line);
    }
    fn stderr_line(&mut self, line: &[u8]) {
        self.stderr.push(String::from_utf8_lossy(line).into_owned());
    }
}

/// Polls `cond` every 10 ms until it holds; panics after `within`.
async fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < until,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// True once `pid` no longer runs. A zombie counts as gone: it has exited and only
/// awaits reaping by its parent (for a grandchild, whatever reaps orphans here).
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            matches!(state, Some('Z') | Some('X'))
        }
    }
}

/// True once `pid` is fully reaped: not even a zombie is left.
fn process_reaped(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

async fn read_pid(path: &Path) -> u32 {
    let mut pid = None;
    eventually(
        &format!("pid in {}", path.display()),
        Duration::from_secs(10),
        || {
            pid = std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            pid.is_some()
        },
    )
    .await;
    pid.expect("checked above")
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("temp paths are UTF-8").to_string()
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[tokio::test]
async fn exit_zero_succeeds_and_captures_both_streams() {
    let dir = temp();
    let out = run(&sh("echo out; echo err >&2", &[]), &dir).await;
    assert_eq!(out.status, ActivityStatus::Succeeded);
    assert_eq!(
        (out.stdout_tail.as_str(), out.stderr_tail.as_str()),
        ("out\n", "err\n")
    );
    assert_eq!((out.stdout_bytes, out.stderr_bytes), (4, 4));
    assert!(out.pid.is_some());
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_eq!(out.attempt, 1);
    assert!(out.ended_at >= out.started_at);
}

#[tokio::test]
async fn exit_three_fails_and_command_kind_says_so() {
    let dir = temp();
    let spec = sh("echo failing >&2; exit 3", &[]);
    let judged = run_judged(
        &CommandKind,
        &spec,
        &attempt(&dir),
        &CancellationToken::new(),
        &mut (),
    )
    .await;
    assert_eq!(
        judged.outcome.status,
        ActivityStatus::Failed { exit_code: 3 }
    );
    match judged.verdict {
        Verdict::Failed {
            error_type,
            message,
        } => {
            assert_eq!(error_type, error_type::EXIT_CODE);
            assert!(message.contains('3'), "{message}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn death_by_signal_is_reported_with_its_name() {
    let dir = temp();
    let out = run(&sh("kill -KILL $$", &[]), &dir).await;
    assert_eq!(
        out.status,
        ActivityStatus::Signaled {
            signal: 9,
            name: "SIGKILL".to_string()
        }
    );
}

#[tokio::test]
async fn tails_keep_only_the_last_bytes_of_large_output() {
    let dir = temp();
    let mut spec = sh("seq 1 100000; seq 1 50000 >&2", &[]);
    spec.capture_limit = 1000;
    let out = run(&spec, &dir).await;
    assert_eq!(out.status, ActivityStatus::Succeeded);
    let all_out: String = (1..=100_000).map(|i| format!("{i}\n")).collect();
    let all_err: String = (1..=50_000).map(|i| format!("{i}\n")).collect();
    assert_eq!(out.stdout_bytes, all_out.len() as u64);
    assert_eq!(out.stderr_bytes, all_err.len() as u64);
    assert_eq!(out.stdout_tail, all_out[all_out.len() - 1000..]);
    assert_eq!(out.stderr_tail, all_err[all_err.len() - 1000..]);
}

#[tokio::test]
async fn stdin_is_closed() {
    let dir = temp();
    // `cat` would wait forever on an open stdin; `read` reports EOF as status 1.
    let out = run(&sh("cat; read line; echo \"read=$?\"", &[]), &dir).await;
    assert_eq!(out.status, ActivityStatus::Succeeded);
    assert_eq!(out.stdout_tail, "read=1\n");
}

#[tokio::test]
async fn start_to_close_kills_child_and_grandchild() {
    let dir = temp();
    let pid_file = dir.path().join("grandchild.pid");
    let mut spec = sh(
        "sleep 1000 & echo $! > \"$1\"; sleep 1000",
        &[&path_str(&pid_file)],
    );
    spec.timeouts.start_to_close = Duration::from_millis(500);
    spec.timeouts.cancel_grace = Duration::from_secs(2);
    let out = run(&spec, &dir).await;
    assert_eq!(
        out.status,
        ActivityStatus::TimedOut {
            kind: TimeoutKind::StartToClose
        }
    );
    assert!(out.duration_ms >= 500, "{}", out.duration_ms);
    let grandchild = read_pid(&pid_file).await;
    eventually("grandchild to die", Duration::from_secs(5), || {
        process_gone(grandchild)
    })
    .await;
    let child = out.pid.expect("spawned");
    assert!(process_reaped(child), "child {child} was not reaped");
}

#[tokio::test]
async fn idle_timeout_kills_a_child_that_goes_quiet() {
    let dir = temp();
    let mut spec = sh("echo hello; sleep 1000", &[]);
    spec.timeouts.idle = Some(Duration::from_millis(300));
    let out = run(&spec, &dir).await;
    assert_eq!(
        out.status,
        ActivityStatus::TimedOut {
            kind: TimeoutKind::Idle
        }
    );
    assert_eq!(out.stdout_tail, "hello\n");
    assert!(out.duration_ms >= 300);
}

#[tokio::test]
async fn steady_output_keeps_idle_timeout_away() {
    let dir = temp();
    let mut spec = sh(
        "i=0; while [ $i -lt 10 ]; do echo tick $i; sleep 0.1; i=$((i+1)); done",
        &[],
    );
    spec.timeouts.idle = Some(Duration::from_millis(700));
    let mut rec = Recorder::default();
    let out = run_attempt(&spec, &attempt(&dir), &CancellationToken::new(), &mut rec).await;
    assert_eq!(out.status, ActivityStatus::Succeeded);
    assert!(
        out.duration_ms >= 900,
        "ran {} ms, longer than the idle timeout",
        out.duration_ms
    );
    let want: Vec<String> = (0..10).map(|i| format!("tick {i}")).collect();
    assert_eq!(rec.stdout, want);
}

#[tokio::test]
async fn heartbeats_are_observed_in_order() {
    let dir = temp();
    let spec = sh(
        "for i in 1 2 3 4 5; do echo \"  step $i  \" >> \"$SPOOL_HEARTBEAT_FILE\"; sleep 0.05; done",
        &[],
    );
    let mut rec = Recorder::default();
    let out = run_attempt(&spec, &attempt(&dir), &CancellationToken::new(), &mut rec).await;
    assert_eq!(out.status, ActivityStatus::Succeeded);
    let got: Vec<(u64, &str)> = rec
        .beats
        .iter()
        .map(|b| (b.seq, b.details.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (1, "step 1"),
            (2, "step 2"),
            (3, "step 3"),
            (4, "step 4"),
            (5, "step 5")
        ]
    );
    assert!(rec.beats.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));
    assert_eq!(
        (out.heartbeat_count, out.last_heartbeat.as_deref()),
        (5, Some("step 5"))
    );
}

#[tokio::test]
async fn heartbeat_channel_receives_heartbeats() {
    let dir = temp();
    let spec = sh(
        "echo one >> \"$SPOOL_HEARTBEAT_FILE\"; echo two >> \"$SPOOL_HEARTBEAT_FILE\"",
        &[],
    );
    let (mut tx, mut rx) = mpsc::unbounded_channel::<Heartbeat>();
    let out = run_attempt(&spec, &attempt(&dir), &CancellationToken::new(), &mut tx).await;
    assert_eq!(out.status, ActivityStatus::Succeeded);
    let mut got = Vec::new();
    while let Ok(b) = rx.try_recv() {
        got.push(b.details);
    }
    assert_eq!(got, ["one", "two"]);
}

#[tokio::test]
async fn heartbeat_timeout_fires_when_heartbeats_stop() {
    let dir = temp();
    let mut spec = sh(
        "for i in 1 2 3; do echo beat $i >> \"$SPOOL_HEARTBEAT_FILE\"; sleep 0.1; done; sleep 1000",
        &[],
    );
    spec.timeouts.heartbeat = Some(Duration::from_millis(600));
    let out = run(&spec, &dir).await;
    assert_eq!(
        out.status,
        ActivityStatus::TimedOut {
            kind: TimeoutKind::Heartbeat
        }
    );
    assert_eq!(
        (out.heartbeat_count, out.last_heartbeat.as_deref()),
        (3, Some("beat 3"))
    );
    assert!(
        out.duration_ms >= 800,
        "{} ms: the timeout counts from the last beat",
        out.duration_ms
    );
}

#[tokio::test]
async fn regular_heartbeats_outlive_the_heartbeat_timeout() {
    let dir = temp();
    let mut spec = sh(
        "i=0; while [ $i -lt 12 ]; do echo $i >> \"$SPOOL_HEARTBEAT_FILE\"; sleep 0.1; i=$((i+1)); done",
        &[],
    );
    spec.timeouts.heartbeat = Some(Duration::from_millis(700));
    let out = run(&spec, &dir).await;
    assert_eq!(out.status, ActivityStatus::Succeeded);
    assert!(out.duration_ms >= 1100, "{}", out.duration_ms);
    assert_eq!(out.heartbeat_count, 12);
}

#[tokio::test]
async fn output_counts_as_heartbeat_only_when_asked() {
    let script = "i=0; while [ $i -lt 12 ]; do echo $i; sleep 0.1; i=$((i+1)); done";
    let mut spec = sh(script, &[]);
    spec.timeouts.heartbeat = Some(Duration::from_millis(700));
    let dir = temp();
    let out = run(&spec, &dir).await;
    assert_eq!(
        out.status,
        ActivityStatus::TimedOut {
            kind: TimeoutKind::Heartbeat
        }
    );

    spec.output_is_heartbeat = true;
    let dir = temp();
    let out = run(&spec, &dir).await;
    assert_eq!(out.status, ActivityStatus::Succeeded);
    assert_eq!(
        out.heartbeat_count, 0,
        "output resets the deadline but is not a heartbeat line"
    );
}

#[tokio::test]
async fn cancel_sends_sigterm_first() {
    let dir = temp();
    let marker = dir.path().join("terminated");
    let spec = sh(
        "trap 'echo term > \"$1\"; exit 0' TERM; echo ready; while :; do sleep 0.05; done",
        &[&path_str(&marker)],
    );
    let token = CancellationToken::new();
    let mut rec = Recorder {
        cancel_on: Some(("ready".to_string(), token.clone())),
        ..Recorder::default()
    };
    let out = run_attempt(&spec, &attempt(&dir), &token, &mut rec).await;
    assert_eq!(out.status, ActivityStatus::Canceled);
    let written = std::fs::read_to_string(&marker).expect("the TERM trap ran");
    assert_eq!(written, "term\n");
    assert!(
        out.duration_ms < 4000,
        "{} ms: exited on TERM, not after the 5 s grace",
        out.duration_ms
    );
}

#[tokio::test]
async fn a_child_ignoring_sigterm_is_killed_after_the_grace() {
    let dir = temp();
    let mut spec = sh(
        "trap '' TERM; echo ready; while :; do sleep 0.05; done",
        &[],
    );
    spec.timeouts.cancel_grace = Duration::from_millis(400);
    let token = CancellationToken::new();
    let mut rec = Recorder {
        cancel_on: Some(("ready".to_string(), token.clone())),
        ..Recorder::default()
    };
    let out = run_attempt(&spec, &attempt(&dir), &token, &mut rec).await;
    assert_eq!(out.status, ActivityStatus::Canceled);
    assert!(
        out.duration_ms >= 400,
        "{} ms: survived TERM for the grace",
        out.duration_ms
    );
    assert!(process_reaped(out.pid.expect("spawned")));
}

#[tokio::test]
async fn a_kill_skips_the_grace_even_for_a_child_ignoring_sigterm() {
    let dir = temp();
    let mut spec = sh(
        "trap '' TERM; echo ready; while :; do sleep 0.05; done",
        &[],
    );
    spec.timeouts.cancel_grace = Duration::from_secs(30);
    let (cancel, kill) = (CancellationToken::new(), CancellationToken::new());
    let mut rec = Recorder {
        cancel_on: Some(("ready".to_string(), kill.clone())),
        ..Recorder::default()
    };
    let out =
        spool::exec::run_attempt_killable(&spec, &attempt(&dir), &cancel, &kill, &mut rec).await;
    assert_eq!(out.status, ActivityStatus::Canceled);
    assert!(
        out.duration_ms < 5000,
        "{} ms: killed at once, not after the 30 s grace",
        out.duration_ms
    );
    assert!(process_reaped(out.pid.expect("spawned")));
}

#[tokio::test]
async fn an_already_canceled_token_spawns_nothing() {
    let dir = temp();
    let token = CancellationToken::new();
    token.cancel();
    let marker = dir.path().join("ran");
    let spec = sh("touch \"$1\"", &[&path_str(&marker)]);
    let out = run_attempt(&spec, &attempt(&dir), &token, &mut ()).await;
    assert_eq!((out.status, out.pid), (ActivityStatus::Canceled, None));
    assert!(!marker.exists());
}

#[tokio::test]
async fn dropping_the_attempt_kills_the_group() {
    let dir = temp();
    let pid_file = dir.path().join("grandchild.pid");
    let spec = sh(
        "sleep 1000 & echo $! > \"$1\"; echo ready; wait",
        &[&path_str(&pid_file)],
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut rec = Recorder {
        announce: Some(tx),
        ..Recorder::default()
    };
    let token = CancellationToken::new();
    let att = attempt(&dir);
    {
        let fut = run_attempt(&spec, &att, &token, &mut rec);
        tokio::pin!(fut);
        let ready = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::select! {
                out = &mut fut => panic!("attempt ended early: {out:?}"),
                line = rx.recv() => line,
            }
        })
        .await
        .expect("child announced itself in time");
        assert_eq!(ready.as_deref(), Some("ready"));
        // `fut` is dropped here, mid-attempt.
    }
    let child = rec.pid.expect("started was observed");
    let grandchild = read_pid(&pid_file).await;
    eventually("grandchild to die", Duration::from_secs(5), || {
        process_gone(grandchild)
    })
    .await;
    eventually("child to be reaped", Duration::from_secs(5), || {
        process_reaped(child)
    })
    .await;
}

#[tokio::test]
async fn leftover_background_processes_die_when_the_leader_exits() {
    let dir = temp();
    let pid_file = dir.path().join("bg.pid");
    let spec = sh(
        "sleep 1000 & echo $! > \"$1\"; echo done",
        &[&path_str(&pid_file)],
    );
    let out = run(&spec, &dir).await;
    assert_eq!(out.status, ActivityStatus::Succeeded);
    assert_eq!(out.stdout_tail, "done\n");
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    let bg = read_pid(&pid_file).await;
    eventually("background process to die", Duration::from_secs(5), || {
        process_gone(bg)
    })
    .await;
}

#[tokio::test]
async fn a_descendant_that_left_the_group_cannot_hold_the_attempt_open() {
    let dir = temp();
    let pid_file = dir.path().join("escaped.pid");
    let spec = sh(
        "setsid sh -c 'echo $$ > \"$1\"; exec sleep 1000' sh \"$1\" & \
         while [ ! -s \"$1\" ]; do sleep 0.01; done; echo started",
        &[&path_str(&pid_file)],
    );
    let out = run(&spec, &dir).await;
    let escaped = read_pid(&pid_file).await;
    // The escaped process is ours to clean up: exec cannot reach it by design.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(escaped).expect("pid fits")),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert_eq!(out.status, ActivityStatus::Succeeded);
    assert!(out.duration_ms < 10_000);
    assert!(
        out.warnings.iter().any(|w| w.contains("pipes still open")),
        "{:?}",
        out.warnings
    );
}

#[tokio::test]
async fn result_file_json_is_parsed() {
    let dir = temp();
    let spec = sh(
        "printf '{\"ok\": true, \"n\": 3}' > \"$SPOOL_RESULT_FILE\"",
        &[],
    );
    let judged = run_judged(
        &CommandKind,
        &spec,
        &attempt(&dir),
        &CancellationToken::new(),
        &mut (),
    )
    .await;
    assert_eq!(
        judged.outcome.result_json,
        Some(json!({"ok": true, "n": 3}))
    );
    assert_eq!(judged.outcome.result_error, None);
    assert_eq!(
        judged.verdict,
        Verdict::Succeeded {
            result: Some(json!({"ok": true, "n": 3}))
        }
    );
}

#[tokio::test]
async fn invalid_result_json_is_reported_and_fails_the_command() {
    let dir = temp();
    let spec = sh("printf '{nope' > \"$SPOOL_RESULT_FILE\"", &[]);
    let judged = run_judged(
        &CommandKind,
        &spec,
        &attempt(&dir),
        &CancellationToken::new(),
        &mut (),
    )
    .await;
    assert_eq!(judged.outcome.status, ActivityStatus::Succeeded);
    assert_eq!(judged.outcome.result_json, None);
    let err = judged.outcome.result_error.clone().expect("error recorded");
    assert!(
        err.contains("not valid JSON") && err.contains("result.json"),
        "{err}"
    );
    assert!(matches!(
        judged.verdict,
        Verdict::Failed { ref error_type, .. } if error_type == error_type::INVALID_RESULT
    ));
}

#[tokio::test]
async fn a_stale_result_file_is_not_reported_as_this_attempts_result() {
    let dir = temp();
    let att = attempt(&dir);
    std::fs::create_dir_all(att.result_file.parent().expect("has parent")).expect("mkdir");
    std::fs::write(&att.result_file, b"{\"stale\": true}").expect("write");
    std::fs::write(&att.heartbeat_file, b"old beat\n").expect("write");
    let out = run_attempt(&sh("true", &[]), &att, &CancellationToken::new(), &mut ()).await;
    assert_eq!(out.status, ActivityStatus::Succeeded);
    assert_eq!((out.result_json, out.result_error), (None, None));
    assert_eq!((out.heartbeat_count, out.last_heartbeat), (0, None));
}

#[tokio::test]
async fn fifos_in_place_of_attempt_files_cannot_block_spool() {
    let dir = temp();
    let att = attempt(&dir);
    let spec = sh(
        "rm \"$SPOOL_HEARTBEAT_FILE\" && mkfifo \"$SPOOL_HEARTBEAT_FILE\" \
         && mkfifo \"$SPOOL_RESULT_FILE\" && sleep 0.5",
        &[],
    );
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        run_attempt(&spec, &att, &CancellationToken::new(), &mut ()),
    )
    .await
    .expect("attempt ends despite the FIFOs");
    assert_eq!(out.status, ActivityStatus::Succeeded, "{}", out.stderr_tail);
    let err = out.result_error.expect("a FIFO is no result");
    assert!(err.contains("not a regular file"), "{err}");
    assert!(
        out.warnings.iter().any(|w| w.contains("heartbeat file")),
        "{:?}",
        out.warnings
    );
    // The next attempt replaces the leftovers instead of blocking on them.
    let out = run_attempt(&sh("true", &[]), &att, &CancellationToken::new(), &mut ()).await;
    assert_eq!(out.status, ActivityStatus::Succeeded);
    assert_eq!((out.result_error, out.warnings.len()), (None, 0));
}

#[tokio::test]
async fn env_ids_additions_removals_and_cwd_reach_the_child() {
    let dir = temp();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("mkdir");
    let mut spec = sh(
        "echo \"$SPOOL_ATTEMPT|$SPOOL_RUN_ID|$SPOOL_STEP_ID|$EXTRA|${HOME-unset}\"; pwd; \
         test -f \"$SPOOL_HEARTBEAT_FILE\" && echo hb-exists; echo \"$SPOOL_RESULT_FILE\"",
        &[],
    )
    .with_ids("run-7", "build");
    spec.env.insert("EXTRA".to_string(), "x y".to_string());
    spec.env_remove.push("HOME".to_string());
    spec.cwd = Some(work.clone());
    let att = Attempt::in_dir(3, &dir.path().join("a3"));
    let mut rec = Recorder::default();
    let out = run_attempt(&spec, &att, &CancellationToken::new(), &mut rec).await;
    assert_eq!(out.status, ActivityStatus::Succeeded, "{}", out.stderr_tail);
    let cwd = std::fs::canonicalize(&work).expect("canonical");
    assert_eq!(
        rec.stdout,
        [
            "3|run-7|build|x y|unset".to_string(),
            path_str(&cwd),
            "hb-exists".to_string(),
            path_str(&att.result_file),
        ]
    );
}

#[tokio::test]
async fn missing_program_is_a_clean_spawn_failure() {
    let dir = temp();
    let out = run(
        &ActivitySpec::new(["spool-test-no-such-program", "x"]),
        &dir,
    )
    .await;
    match &out.status {
        ActivityStatus::SpawnFailed { error } => {
            assert!(
                error.contains("`spool-test-no-such-program` not found in PATH"),
                "{error}"
            )
        }
        other => panic!("expected SpawnFailed, got {other:?}"),
    }
    assert_eq!(out.pid, None);
}

#[tokio::test]
async fn missing_cwd_empty_argv_and_unexecutable_program_are_spawn_failures() {
    let dir = temp();
    let mut spec = sh("true", &[]);
    spec.cwd = Some(dir.path().join("no-such-dir"));
    let no_dir = run(&spec, &dir).await;
    let empty = run(&ActivitySpec::new(Vec::<String>::new()), &dir).await;
    let script = dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").expect("write");
    let not_exec = run(&ActivitySpec::new([path_str(&script)]), &dir).await;
    let cases = [
        (no_dir, "no-such-dir does not exist"),
        (empty, "argv is empty"),
        (not_exec, "permission denied starting"),
    ];
    for (out, needle) in cases {
        match &out.status {
            ActivityStatus::SpawnFailed { error } => assert!(error.contains(needle), "{error}"),
            other => panic!("expected SpawnFailed containing {needle:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn arguments_pass_verbatim_as_single_argv_elements() {
    let dir = temp();
    let tricky = [
        "a b",
        "'single'",
        "\"double\"",
        "$(touch pwned)",
        "`touch pwned`",
        "x; touch pwned",
        "",
        "*",
        "{not a placeholder here}",
        "new\nline",
    ];
    let mut argv = vec!["printf".to_string(), "%s\\0".to_string()];
    argv.extend(tricky.iter().map(|s| s.to_string()));
    let mut spec = ActivitySpec::new(argv);
    spec.cwd = Some(dir.path().to_path_buf());
    let out = run(&spec, &dir).await;
    assert_eq!(out.status, ActivityStatus::Succeeded);
    let got: Vec<&str> = out.stdout_tail.split_terminator('\0').collect();
    assert_eq!(got, tricky);
    assert!(!dir.path().join("pwned").exists());
}

#[tokio::test]
async fn command_kind_substitutes_placeholders_without_a_shell() {
    let dir = temp();
    let vars = json!({"issue": {"id": "bd-9", "title": "x; touch pwned $(id)"}});
    let mut base = ActivitySpec::new(Vec::<String>::new());
    base.cwd = Some(dir.path().to_path_buf());
    let params = json!({"argv": ["printf", "%s\\0", "{issue.id}", "title: {issue.title}"]});
    let spec = CommandKind
        .prepare(KindInput {
            params: &params,
            vars: &vars,
            base,
        })
        .expect("valid params");
    let judged = run_judged(
        &CommandKind,
        &spec,
        &attempt(&dir),
        &CancellationToken::new(),
        &mut (),
    )
    .await;
    assert_eq!(judged.verdict, Verdict::Succeeded { result: None });
    let got: Vec<&str> = judged.outcome.stdout_tail.split_terminator('\0').collect();
    assert_eq!(got, ["bd-9", "title: x; touch pwned $(id)"]);
    assert!(!dir.path().join("pwned").exists());
}

#[tokio::test]
async fn log_file_tags_each_line_with_its_stream() {
    let dir = temp();
    let log: PathBuf = dir.path().join("logs/attempt.log");
    let mut spec = sh("echo a1; echo b1 >&2; echo a2; printf tail", &[]);
    spec.log_file = Some(log.clone());
    let out = run(&spec, &dir).await;
    assert_eq!(out.status, ActivityStatus::Succeeded);
    let text = std::fs::read_to_string(&log).expect("log written");
    let lines: Vec<&str> = text.lines().collect();
    let outs: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("out "))
        .collect();
    let errs: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("err "))
        .collect();
    assert_eq!(outs, ["a1", "a2", "tail"]);
    assert_eq!(errs, ["b1"]);
    assert_eq!(lines.len(), 4, "{text}");
    assert!(text.ends_with('\n'));
}

#[tokio::test]
async fn outcome_round_trips_through_json() {
    let dir = temp();
    let mut spec = sh("echo hi; sleep 1000", &[]);
    spec.timeouts.idle = Some(Duration::from_millis(200));
    let out = run(&spec, &dir).await;
    let text = serde_json::to_string(&out).expect("serializes");
    let back: ActivityOutcome = serde_json::from_str(&text).expect("deserializes");
    assert_eq!(back, out);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["status"], json!({"type": "timed_out", "kind": "idle"}));
}

#[tokio::test]
async fn absurdly_long_timeouts_do_not_overflow() {
    let dir = temp();
    let mut spec = sh("echo ok", &[]);
    spec.timeouts.start_to_close = Duration::MAX;
    spec.timeouts.heartbeat = Some(Duration::MAX);
    spec.timeouts.idle = Some(Duration::MAX);
    spec.timeouts.cancel_grace = Duration::MAX;
    let out = run(&spec, &dir).await;
    assert_eq!(out.status, ActivityStatus::Succeeded);
}

/// Spawn overhead of a trivial command through `run_attempt` (attempt files, spawn,
/// wait, drain, result check). Run with
/// `cargo test --release --test exec -- --ignored --nocapture spawn_overhead`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run in release mode"]
async fn spawn_overhead() {
    let dir = temp();
    let spec = ActivitySpec::new(["true"]);
    let mut times = Vec::with_capacity(200);
    for _ in 0..200 {
        let t = std::time::Instant::now();
        let out = run(&spec, &dir).await;
        times.push(t.elapsed());
        assert_eq!(out.status, ActivityStatus::Succeeded);
    }
    times.sort();
    let median = times[times.len() / 2];
    let p90 = times[times.len() * 9 / 10];
    let mut bare = Vec::with_capacity(200);
    for _ in 0..200 {
        let t = std::time::Instant::now();
        let status = std::process::Command::new("true")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("spawn true");
        bare.push(t.elapsed());
        assert!(status.status.success());
    }
    bare.sort();
    println!(
        "run_attempt([\"true\"]) over 200 runs: median {median:?}, p90 {p90:?}, max {:?}; \
         std::process::Command output() median {:?}",
        times[199], bare[100]
    );
    assert!(median < Duration::from_millis(100), "median {median:?}");
}
