//! Crash test: 200+ workflows of 5–10 command steps (some with a durable sleep and a
//! gate) while the worker process is SIGKILLed at random moments 50+ times and restarted
//! each time, and signals are sent (and re-sent) throughout. Afterwards every workflow is
//! complete, no step ran again after its completion was recorded, every history is dense
//! with exactly one close event, last, every timer fired once and not early, and every
//! gated run saw its signal exactly once.

use serde_json::Value;
use spool::engine::Templates;
use spool::store::{Durability, NewRun, Store};
use spool_core::workflow::decide::Input;
use spool_core::workflow::event::EventAttributes;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 210;
/// Runs of the gated template, on top of `RUNS`.
const GATED: usize = 60;
const KILLS: usize = 50;

fn template(steps: usize, log: &Path) -> String {
    let mut t = String::new();
    for i in 1..=steps {
        t.push_str(&format!(
            "[[step]]\nid = \"s{i}\"\nkind = \"activity\"\ncommand = [\"sh\", \"-c\", \
             \"echo \\\"$SPOOL_RUN_ID:$SPOOL_STEP_ID:$SPOOL_ATTEMPT:$(date +%s%N)\\\" >> \\\"$0\\\"; sleep 0.02\", \"{}\"]\n\
             retry = {{ max_attempts = 5, initial_interval = \"10ms\" }}\n\n",
            log.display()
        ));
    }
    t
}

/// Three steps, a 150 ms sleep, a gate waiting for `go`, two more steps.
fn gated_template(log: &Path) -> String {
    let step = |id: &str| {
        format!(
            "[[step]]\nid = \"{id}\"\nkind = \"activity\"\ncommand = [\"sh\", \"-c\", \
             \"echo \\\"$SPOOL_RUN_ID:$SPOOL_STEP_ID:$SPOOL_ATTEMPT:$(date +%s%N)\\\" >> \\\"$0\\\"\", \"{}\"]\n\n",
            log.display()
        )
    };
    format!(
        "{}{}{}[[step]]\nid = \"nap\"\nkind = \"sleep\"\nduration = \"150ms\"\n\n\
         [[step]]\nid = \"gate\"\nkind = \"gate\"\nsignals = [\"go\"]\n\n{}{}",
        step("g1"),
        step("g2"),
        step("g3"),
        step("g4"),
        step("g5")
    )
}

fn signal(store: &mut Store, run: &str) {
    let input = Input::Signal {
        name: "go".into(),
        payload: Value::Null,
        request_id: format!("go-{run}"),
    };
    store
        .push_inbox(run, Some(&format!("go-{run}")), &input, chrono::Utc::now())
        .expect("push signal");
}

fn spawn_worker(dir: &Path, db: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_spool"))
        .arg("-C")
        .arg(dir)
        .args(["worker", "-q", "--poll-ms", "10", "--spool-db"])
        .arg(db)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn worker")
}

fn open_runs(store: &Store) -> usize {
    store
        .list_runs(None)
        .expect("list")
        .iter()
        .filter(|r| matches!(r.status.as_str(), "new" | "running"))
        .count()
}

#[test]
fn workflows_survive_repeated_sigkill_of_the_worker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state").join("spool.db");
    let log = dir.path().join("executions.log");
    let tdir = dir.path().join(".spool").join("templates");
    std::fs::create_dir_all(&tdir).expect("templates dir");
    for n in [5, 7, 10] {
        std::fs::write(tdir.join(format!("steps{n}.toml")), template(n, &log)).expect("write");
    }
    std::fs::write(tdir.join("gated.toml"), gated_template(&log)).expect("write");
    let templates = Templates::for_repo(dir.path());
    let mut store = Store::open(&db, Durability::Full).expect("open");
    let mut steps_of: HashMap<String, usize> = HashMap::new();
    for i in 0..RUNS {
        let n = [5, 7, 10][i % 3];
        let (row, program) = templates.load(&format!("steps{n}")).expect("template");
        let run_id = format!("run{i:03}");
        let run = NewRun {
            run_id: run_id.clone(),
            workflow_id: format!("wf{i:03}"),
            workflow_type: program.name.clone(),
            template_hash: row.hash.clone(),
            parent_run_id: None,
        };
        let start = Input::Start {
            workflow_id: run.workflow_id.clone(),
            run_id: run_id.clone(),
            input: Value::Null,
            parent: None,
        };
        store
            .create_run(&run, &row, &start, chrono::Utc::now())
            .expect("create");
        steps_of.insert(run_id, n);
    }
    let mut gated = Vec::new();
    for i in 0..GATED {
        let (row, program) = templates.load("gated").expect("template");
        let run_id = format!("gated{i:03}");
        let run = NewRun {
            run_id: run_id.clone(),
            workflow_id: format!("gwf{i:03}"),
            workflow_type: program.name.clone(),
            template_hash: row.hash.clone(),
            parent_run_id: None,
        };
        let start = Input::Start {
            workflow_id: run.workflow_id.clone(),
            run_id: run_id.clone(),
            input: Value::Null,
            parent: None,
        };
        store
            .create_run(&run, &row, &start, chrono::Utc::now())
            .expect("create");
        steps_of.insert(run_id.clone(), 5);
        gated.push(run_id);
    }

    let mut worker = spawn_worker(dir.path(), &db);
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(240);
    while kills < KILLS {
        assert!(Instant::now() < deadline, "kill loop took too long");
        std::thread::sleep(Duration::from_millis(fastrand::u64(20..250)));
        worker.kill().expect("SIGKILL");
        worker.wait().expect("reap");
        kills += 1;
        // Signal a few gated runs (again): each is acknowledged once written.
        for _ in 0..3 {
            let run = &gated[fastrand::usize(..gated.len())];
            signal(&mut store, run);
        }
        worker = spawn_worker(dir.path(), &db);
    }
    for run in &gated {
        signal(&mut store, run);
    }
    while open_runs(&store) > 0 {
        assert!(
            Instant::now() < deadline,
            "{} runs still open after {kills} kills",
            open_runs(&store)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    worker.kill().expect("stop worker");
    worker.wait().expect("reap");

    // Every body execution, by (run, step): start times in ns.
    let text = std::fs::read_to_string(&log).expect("log");
    let mut executions: HashMap<(String, String), Vec<i64>> = HashMap::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(':').collect();
        assert_eq!(parts.len(), 4, "bad log line {line:?}");
        let at: i64 = parts[3].parse().expect("timestamp");
        executions
            .entry((parts[0].to_string(), parts[1].to_string()))
            .or_default()
            .push(at);
    }

    let mut reruns_in_flight = 0;
    for run in store.list_runs(None).expect("list") {
        assert_eq!(
            run.status, "completed",
            "run {} ended {}",
            run.run_id, run.status
        );
        let events = store.history(&run.run_id).expect("history");
        for (i, e) in events.iter().enumerate() {
            assert_eq!(
                e.event_id,
                i as u64 + 1,
                "history of {} has a gap",
                run.run_id
            );
        }
        let closes = events.iter().filter(|e| e.attributes.is_close()).count();
        assert_eq!(closes, 1, "run {} has {closes} close events", run.run_id);
        assert!(events.last().is_some_and(|e| e.attributes.is_close()));
        if run.run_id.starts_with("gated") {
            let signaled = events
                .iter()
                .filter(|e| e.attributes.name() == "WorkflowExecutionSignaled")
                .count();
            assert_eq!(signaled, 1, "run {} saw {signaled} signals", run.run_id);
            let fire_time = events
                .iter()
                .find_map(|e| match &e.attributes {
                    EventAttributes::TimerStarted { fire_time, .. } => Some(*fire_time),
                    _ => None,
                })
                .expect("timer started");
            let fired: Vec<_> = events
                .iter()
                .filter(|e| e.attributes.name() == "TimerFired")
                .collect();
            assert_eq!(fired.len(), 1, "run {}", run.run_id);
            assert!(
                fired[0].event_time >= fire_time,
                "timer of {} fired early",
                run.run_id
            );
        }
        let mut terminal: HashMap<u64, usize> = HashMap::new();
        let mut completed_at: HashMap<String, i64> = HashMap::new();
        let mut step_of: HashMap<u64, String> = HashMap::new();
        for e in &events {
            match &e.attributes {
                EventAttributes::ActivityTaskScheduled { activity_id, .. } => {
                    step_of.insert(e.event_id, activity_id.clone());
                }
                EventAttributes::ActivityTaskCompleted {
                    scheduled_event_id, ..
                } => {
                    *terminal.entry(*scheduled_event_id).or_default() += 1;
                    let step = step_of[scheduled_event_id].clone();
                    let at = e.event_time.timestamp_nanos_opt().expect("time in range");
                    completed_at.insert(step, at);
                }
                EventAttributes::ActivityTaskFailed {
                    scheduled_event_id, ..
                }
                | EventAttributes::ActivityTaskTimedOut {
                    scheduled_event_id, ..
                }
                | EventAttributes::ActivityTaskCanceled {
                    scheduled_event_id, ..
                } => *terminal.entry(*scheduled_event_id).or_default() += 1,
                _ => {}
            }
        }
        assert_eq!(step_of.len(), steps_of[&run.run_id], "run {}", run.run_id);
        for sid in step_of.keys() {
            assert_eq!(
                terminal.get(sid),
                Some(&1),
                "activity {sid} of {}",
                run.run_id
            );
        }
        for (step, done) in &completed_at {
            let runs = executions
                .get(&(run.run_id.clone(), step.clone()))
                .unwrap_or_else(|| panic!("{}:{step} completed but never ran", run.run_id));
            for at in runs {
                assert!(
                    at <= done,
                    "{}:{step} ran again after its completion was recorded",
                    run.run_id
                );
            }
            reruns_in_flight += runs.len() - 1;
        }
    }
    eprintln!("{kills} kills; {reruns_in_flight} step bodies re-ran because they were in flight at a kill");
}
