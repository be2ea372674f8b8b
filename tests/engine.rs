//! The engine end to end on a temporary database, with an in-process activity runner.

use serde_json::{json, Value};
use spool::engine::{
    ActivityRunner, AttemptControl, AttemptResult, BoxFuture, Engine, EngineConfig, EngineError,
    Templates,
};
use spool::store::{Durability, Store};
use spool_core::workflow::decide::{ActivityTask, Input, Verdict};
use spool_core::workflow::event::{ActivityOutput, EventAttributes, Failure};
use spool_core::workflow::state::RunStatus;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Runs `command` activities by their first argument: `ok`, `fail`, `flaky` (fails on
/// attempt 1), `block` (until cancelled), `slow` (heartbeats, then succeeds). Logs
/// `activity_id:attempt` for every attempt it starts.
#[derive(Clone, Default)]
struct Fake {
    log: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }
}

impl ActivityRunner for Fake {
    fn run(&self, task: ActivityTask, control: AttemptControl) -> BoxFuture<AttemptResult> {
        let log = self.log.clone();
        Box::pin(async move {
            log.lock()
                .expect("log")
                .push(format!("{}:{}", task.activity_id, task.attempt));
            let first = task.input.argv.first().cloned().unwrap_or_default();
            let fail = || AttemptResult::Failed(Failure::new("ExitCode", "exit code 1"));
            match first.as_str() {
                "ok" => AttemptResult::Completed(ActivityOutput {
                    exit_code: Some(0),
                    stdout: task.input.argv[1..].join(" "),
                    ..Default::default()
                }),
                "fail" => fail(),
                "flaky" if task.attempt < 2 => fail(),
                "flaky" => AttemptResult::Completed(ActivityOutput::default()),
                "block" => {
                    tokio::select! {
                        _ = control.cancel.cancelled() => AttemptResult::Canceled,
                        _ = control.kill.cancelled() => AttemptResult::Canceled,
                    }
                }
                "slow" => {
                    for i in 0..3 {
                        control.heartbeat(json!({ "step": i }));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    AttemptResult::Completed(ActivityOutput::default())
                }
                other => AttemptResult::Failed(Failure::new("Unknown", other).non_retryable()),
            }
        })
    }
}

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(format!("{name}.toml")), body).expect("write template");
}

fn config(dir: &Path, fake: &Fake) -> EngineConfig {
    let mut c = EngineConfig::new(dir.join("db").join("spool.db"));
    c.templates = Templates::new(vec![dir.to_path_buf()]);
    c.poll_interval = Duration::from_millis(20);
    c.runner("command", Arc::new(fake.clone()))
}

async fn history_names(engine: &Engine, run: &str) -> Vec<String> {
    let run = run.to_string();
    engine
        .read(move |s| s.history(&run).expect("history"))
        .await
        .expect("read")
        .iter()
        .map(|e| e.attributes.name().to_string())
        .collect()
}

fn db(dir: &Path) -> PathBuf {
    dir.join("db").join("spool.db")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noop_template_runs_to_completion_with_a_dense_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::start(config(dir.path(), &Fake::default()))
        .await
        .expect("start");
    let run = engine
        .start_run("noop", Some("bench-1"), Value::Null)
        .await
        .expect("run");
    assert_eq!(
        engine.wait_closed(&run, WAIT).await.expect("closed"),
        RunStatus::Completed
    );
    let names = history_names(&engine, &run).await;
    assert_eq!(
        names
            .iter()
            .filter(|n| *n == "ActivityTaskCompleted")
            .count(),
        10
    );
    assert_eq!(
        names.first().map(String::as_str),
        Some("WorkflowExecutionStarted")
    );
    assert_eq!(
        names.last().map(String::as_str),
        Some("WorkflowExecutionCompleted")
    );
    let r = run.clone();
    let (events, rows) = engine
        .read(move |s| {
            (
                s.history(&r).expect("history"),
                s.activities_before(u64::MAX).expect("rows"),
            )
        })
        .await
        .expect("read");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.event_id, i as u64 + 1);
    }
    assert!(rows.is_empty(), "no attempt rows remain after completion");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_engine_on_the_same_database_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::start(config(dir.path(), &Fake::default()))
        .await
        .expect("start");
    let second = Engine::start(config(dir.path(), &Fake::default())).await;
    assert!(
        matches!(second, Err(EngineError::Busy(_))),
        "{:?}",
        second.err()
    );
    engine.shutdown().await;
    let again = Engine::start(config(dir.path(), &Fake::default()))
        .await
        .expect("free after shutdown");
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_open_run_per_workflow_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "gate",
        "[[step]]\nid = \"g\"\nkind = \"gate\"\nsignals = [\"go\"]\n",
    );
    let engine = Engine::start(config(dir.path(), &Fake::default()))
        .await
        .expect("start");
    let first = engine
        .start_run("gate", Some("wf"), Value::Null)
        .await
        .expect("run");
    let second = engine.start_run("gate", Some("wf"), Value::Null).await;
    assert!(
        matches!(second, Err(EngineError::AlreadyOpen { ref run_id, .. }) if *run_id == first),
        "{second:?}"
    );
    assert_eq!(
        engine
            .signal("wf", "go", Value::Null, "req-1")
            .await
            .expect("signal"),
        Verdict::Applied
    );
    assert_eq!(
        engine.wait_closed(&first, WAIT).await.expect("closed"),
        RunStatus::Completed
    );
    // Closed: the id is free again.
    engine
        .start_run("gate", Some("wf"), Value::Null)
        .await
        .expect("new run");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_signals_and_heartbeats_through_the_runner() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "flow",
        r#"
[[step]]
id = "build"
kind = "activity"
command = ["flaky"]
retry = { initial_interval = "50ms", max_attempts = 3 }
[[step]]
id = "watch"
kind = "activity"
command = ["slow"]
timeouts = { heartbeat = "5s" }
[[step]]
id = "review"
kind = "gate"
signals = ["approve"]
[[step]]
id = "say"
kind = "activity"
command = ["ok", "{issue.id}", "{steps.review.payload.by}"]
"#,
    );
    let fake = Fake::default();
    let engine = Engine::start(config(dir.path(), &fake))
        .await
        .expect("start");
    let run = engine
        .start_run("flow", None, json!({"issue": {"id": "bd-42"}}))
        .await
        .expect("run");
    // A signal may arrive before the gate: it is kept, and delivered once.
    assert_eq!(
        engine
            .signal(&run, "approve", json!({"by": "ann"}), "r1")
            .await
            .expect("signal"),
        Verdict::Applied
    );
    assert_eq!(
        engine
            .signal(&run, "approve", json!({"by": "bob"}), "r1")
            .await
            .expect("signal"),
        Verdict::Duplicate
    );
    assert_eq!(
        engine.wait_closed(&run, WAIT).await.expect("closed"),
        RunStatus::Completed
    );
    assert_eq!(fake.log(), ["build:1", "build:2", "watch:1", "say:1"]);
    let r = run.clone();
    let events = engine
        .read(move |s| s.history(&r).expect("history"))
        .await
        .expect("read");
    let say = events
        .iter()
        .rev()
        .filter_map(|e| match &e.attributes {
            EventAttributes::ActivityTaskCompleted { result, .. } => Some(result.stdout.clone()),
            _ => None,
        })
        .next()
        .expect("say output");
    assert_eq!(say, "bd-42 ann");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.attributes.name() == "WorkflowExecutionSignaled")
            .count(),
        1
    );
    // The stored history folds to the stored state.
    let (_, program) = Templates::new(vec![dir.path().to_path_buf()])
        .load("flow")
        .expect("template");
    let r = run.clone();
    let (_, stored) = engine
        .read(move |s| s.load_state(&r).expect("load"))
        .await
        .expect("read")
        .expect("state");
    assert_eq!(
        spool_core::workflow::fold(&program, &events).expect("fold"),
        stored.history_view()
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_attempt_and_runs_compensations_terminate_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "saga",
        r#"
[[step]]
id = "prepare"
kind = "activity"
command = ["ok"]
compensate = [["ok", "undo"]]
[[step]]
id = "work"
kind = "activity"
command = ["block"]
"#,
    );
    let fake = Fake::default();
    let engine = Engine::start(config(dir.path(), &fake))
        .await
        .expect("start");
    let run = engine
        .start_run("saga", None, Value::Null)
        .await
        .expect("run");
    wait_for("work started", || {
        fake.log().contains(&"work:1".to_string())
    })
    .await;
    engine.cancel(&run, "user asked").await.expect("cancel");
    assert_eq!(
        engine.wait_closed(&run, WAIT).await.expect("closed"),
        RunStatus::Canceled
    );
    assert_eq!(
        fake.log(),
        ["prepare:1", "work:1", "compensate:prepare:0:1"]
    );

    let run2 = engine
        .start_run("saga", None, Value::Null)
        .await
        .expect("run");
    wait_for("second work started", || {
        fake.log().iter().filter(|l| *l == "work:1").count() == 2
    })
    .await;
    engine
        .terminate(&run2, "stop now")
        .await
        .expect("terminate");
    assert_eq!(
        engine.wait_closed(&run2, WAIT).await.expect("closed"),
        RunStatus::Terminated
    );
    assert_eq!(
        fake.log().len(),
        5,
        "no compensation after terminate: {:?}",
        fake.log()
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_redispatches_interrupted_attempts_at_once_and_never_reruns_completed_steps() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "two",
        "[[step]]\nid = \"first\"\nkind = \"activity\"\ncommand = [\"ok\"]\n[[step]]\nid = \"second\"\nkind = \"activity\"\ncommand = [\"block\"]\ntimeouts = { start_to_close = \"1h\" }\n",
    );
    let fake = Fake::default();
    let engine = Engine::start(config(dir.path(), &fake))
        .await
        .expect("start");
    assert_eq!(engine.epoch(), 1);
    let run = engine
        .start_run("two", None, Value::Null)
        .await
        .expect("run");
    wait_for("second step started", || {
        fake.log().contains(&"second:1".to_string())
    })
    .await;
    // Let the lease commit, then stop without finishing the attempt.
    let r = run.clone();
    wait_for_async("lease of epoch 1", &engine, move |s| {
        s.activities_before(u64::MAX)
            .expect("rows")
            .iter()
            .any(|a| a.run_id == r && a.lease_epoch == 1)
    })
    .await;
    engine.shutdown().await;

    let started = std::time::Instant::now();
    let fake2 = Fake::default();
    let engine = Engine::start(config(dir.path(), &fake2))
        .await
        .expect("restart");
    assert_eq!(engine.epoch(), 2);
    wait_for("second step re-dispatched", || {
        fake2.log().contains(&"second:1".to_string())
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "re-dispatched without waiting for a timeout"
    );
    assert!(
        !fake2.log().contains(&"first:1".to_string()),
        "a completed step never runs again"
    );
    let r = run.clone();
    wait_for_async("lease of epoch 2", &engine, move |s| {
        s.activities_before(u64::MAX)
            .expect("rows")
            .iter()
            .any(|a| a.run_id == r && a.lease_epoch == 2)
    })
    .await;
    // A result from the dead epoch is rejected.
    let stale = engine
        .apply(
            &run,
            Input::ActivityCompleted {
                scheduled_event_id: 5,
                attempt: 1,
                epoch: 1,
                output: ActivityOutput::default(),
            },
        )
        .await
        .expect("apply");
    assert!(matches!(stale, Verdict::Rejected(_)), "{stale:?}");
    engine.terminate(&run, "done").await.expect("terminate");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_survive_a_restart_and_never_fire_early() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "nap",
        "[[step]]\nid = \"nap\"\nkind = \"sleep\"\nduration = \"700ms\"\n",
    );
    let engine = Engine::start(config(dir.path(), &Fake::default()))
        .await
        .expect("start");
    let run = engine
        .start_run("nap", None, Value::Null)
        .await
        .expect("run");
    engine.shutdown().await;
    let engine = Engine::start(config(dir.path(), &Fake::default()))
        .await
        .expect("restart");
    assert_eq!(
        engine.wait_closed(&run, WAIT).await.expect("closed"),
        RunStatus::Completed
    );
    let r = run.clone();
    let events = engine
        .read(move |s| s.history(&r).expect("history"))
        .await
        .expect("read");
    let fire_time = events
        .iter()
        .find_map(|e| match &e.attributes {
            EventAttributes::TimerStarted { fire_time, .. } => Some(*fire_time),
            _ => None,
        })
        .expect("timer started");
    let fired = events
        .iter()
        .find(|e| e.attributes.name() == "TimerFired")
        .expect("timer fired");
    assert!(
        fired.event_time >= fire_time,
        "fired at {} before {}",
        fired.event_time,
        fire_time
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.attributes.name() == "TimerFired")
            .count(),
        1
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_written_by_another_process_reach_the_worker() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "gate",
        "[[step]]\nid = \"g\"\nkind = \"gate\"\nsignals = [\"go\"]\n",
    );
    let engine = Engine::start(config(dir.path(), &Fake::default()))
        .await
        .expect("start");
    let run = engine
        .start_run("gate", Some("ext"), Value::Null)
        .await
        .expect("run");
    // A second connection (as the CLI would open) queues the signal twice.
    let mut other = Store::open(&db(dir.path()), Durability::Full).expect("open");
    let input = Input::Signal {
        name: "go".into(),
        payload: Value::Null,
        request_id: "cli-1".into(),
    };
    assert!(other
        .push_inbox(&run, Some("cli-1"), &input, chrono::Utc::now())
        .expect("push"));
    assert!(!other
        .push_inbox(&run, Some("cli-1"), &input, chrono::Utc::now())
        .expect("push"));
    assert_eq!(
        engine.wait_closed(&run, WAIT).await.expect("closed"),
        RunStatus::Completed
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_workflows_run_and_report_to_their_parent() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "parent",
        "[[step]]\nid = \"sub\"\nkind = \"child\"\ntemplate = \"noop\"\n[[step]]\nid = \"bad\"\nkind = \"child\"\ntemplate = \"missing\"\n",
    );
    let engine = Engine::start(config(dir.path(), &Fake::default()))
        .await
        .expect("start");
    let run = engine
        .start_run("parent", None, Value::Null)
        .await
        .expect("run");
    assert_eq!(
        engine.wait_closed(&run, WAIT).await.expect("closed"),
        RunStatus::Failed
    );
    let names = history_names(&engine, &run).await;
    for expected in [
        "StartChildWorkflowExecutionInitiated",
        "ChildWorkflowExecutionStarted",
        "ChildWorkflowExecutionCompleted",
        "StartChildWorkflowExecutionFailed",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    let runs = engine
        .read(|s| s.list_runs(None).expect("list"))
        .await
        .expect("read");
    let child = runs
        .iter()
        .find(|r| r.parent_run_id.as_deref() == Some(run.as_str()))
        .expect("child run");
    assert_eq!(child.status, "completed");
    assert_eq!(child.workflow_type, "noop");
    engine.shutdown().await;
}

async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_for_async(
    what: &str,
    engine: &Engine,
    cond: impl Fn(&Store) -> bool + Send + Sync + Clone + 'static,
) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let c = cond.clone();
        if engine.read(move |s| c(s)).await.expect("read") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn command_config(dir: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir.join("db").join("spool.db"));
    c.templates = Templates::new(vec![dir.to_path_buf()]);
    c.poll_interval = Duration::from_millis(20);
    c.runner(
        "command",
        Arc::new(spool::engine::CommandRunner::new(dir.join("attempts"))),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_commands_run_with_placeholders_result_files_and_when() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "real",
        r#"
[[step]]
id = "greet"
kind = "activity"
command = ["echo", "hello {issue.title}"]
[[step]]
id = "result"
kind = "activity"
command = ["sh", "-c", "printf '{{\"ok\": true}}' > \"$SPOOL_RESULT_FILE\""]
[[step]]
id = "check"
kind = "activity"
command = ["true"]
when = "steps.result.result.ok && steps.greet.exit_code == 0"
[[step]]
id = "skipped"
kind = "activity"
command = ["false"]
when = "!steps.result.result.ok"
"#,
    );
    let engine = Engine::start(command_config(dir.path()))
        .await
        .expect("start");
    let run = engine
        .start_run(
            "real",
            None,
            json!({"issue": {"title": "a; rm -rf / && $(x)"}}),
        )
        .await
        .expect("run");
    assert_eq!(
        engine.wait_closed(&run, WAIT).await.expect("closed"),
        RunStatus::Completed
    );
    let r = run.clone();
    let (_, state) = engine
        .read(move |s| s.load_state(&r).expect("load"))
        .await
        .expect("read")
        .expect("state");
    assert_eq!(
        state.outputs["greet"]["stdout"],
        "hello a; rm -rf / && $(x)\n"
    );
    assert_eq!(state.outputs["result"]["result"]["ok"], true);
    assert_eq!(state.outputs["check"]["status"], "completed");
    assert_eq!(state.outputs["skipped"]["status"], "skipped");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_real_command_stops_its_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "long",
        "[[step]]\nid = \"wait\"\nkind = \"activity\"\ncommand = [\"sleep\", \"30\"]\n",
    );
    let engine = Engine::start(command_config(dir.path()))
        .await
        .expect("start");
    let run = engine
        .start_run("long", None, Value::Null)
        .await
        .expect("run");
    let r = run.clone();
    wait_for_async("attempt started", &engine, move |s| {
        s.activities_before(u64::MAX)
            .expect("rows")
            .iter()
            .any(|a| a.run_id == r && a.lease_epoch > 0)
    })
    .await;
    let asked = std::time::Instant::now();
    engine
        .cancel(&run, "no longer needed")
        .await
        .expect("cancel");
    assert_eq!(
        engine.wait_closed(&run, WAIT).await.expect("closed"),
        RunStatus::Canceled
    );
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "SIGTERM ends `sleep` at once"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_parent_cancels_its_child_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "waiter",
        "[[step]]\nid = \"g\"\nkind = \"gate\"\nsignals = [\"go\"]\n",
    );
    write(
        dir.path(),
        "outer",
        "[[step]]\nid = \"sub\"\nkind = \"child\"\ntemplate = \"waiter\"\n",
    );
    let engine = Engine::start(config(dir.path(), &Fake::default()))
        .await
        .expect("start");
    let parent = engine
        .start_run("outer", Some("outer"), Value::Null)
        .await
        .expect("run");
    let p = parent.clone();
    wait_for_async("child running", &engine, move |s| {
        s.list_runs(Some("running"))
            .expect("list")
            .iter()
            .any(|r| r.parent_run_id.as_deref() == Some(p.as_str()))
    })
    .await;
    engine.cancel("outer", "stop").await.expect("cancel");
    assert_eq!(
        engine.wait_closed(&parent, WAIT).await.expect("closed"),
        RunStatus::Canceled
    );
    let runs = engine
        .read(|s| s.list_runs(None).expect("list"))
        .await
        .expect("read");
    let child = runs
        .iter()
        .find(|r| r.parent_run_id.as_deref() == Some(parent.as_str()))
        .expect("child");
    assert_eq!(child.status, "canceled");
    let names = history_names(&engine, &parent).await;
    assert!(names
        .iter()
        .any(|n| n == "RequestCancelExternalWorkflowExecutionInitiated"));
    assert!(
        names.iter().any(|n| n == "ChildWorkflowExecutionCanceled"),
        "{names:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_sees_the_last_heartbeat_of_the_failed_attempt() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "resume",
        r#"
[[step]]
id = "work"
kind = "activity"
command = ["sh", "-c", "if [ \"$SPOOL_ATTEMPT\" = 1 ]; then echo cursor=5 >> \"$SPOOL_HEARTBEAT_FILE\"; sleep 0.5; exit 3; fi; printf %s \"$SPOOL_LAST_HEARTBEAT\""]
retry = { max_attempts = 2, initial_interval = "10ms" }
timeouts = { heartbeat = "5s" }
"#,
    );
    let engine = Engine::start(command_config(dir.path()))
        .await
        .expect("start");
    let run = engine
        .start_run("resume", None, Value::Null)
        .await
        .expect("run");
    assert_eq!(
        engine.wait_closed(&run, WAIT).await.expect("closed"),
        RunStatus::Completed
    );
    let r = run.clone();
    let (_, state) = engine
        .read(move |s| s.load_state(&r).expect("load"))
        .await
        .expect("read")
        .expect("state");
    assert_eq!(state.outputs["work"]["attempt"], 2);
    assert_eq!(state.outputs["work"]["stdout"], "cursor=5");
    engine.shutdown().await;
}
