//! Kill loop: a real `spool worker` runs an every-second schedule and is SIGKILLed 200+
//! times, most kills aimed at the moment a fire is due. Afterwards every nominal second
//! from the first fire to the last has exactly one action, `started`, with exactly one
//! run: no double fire and, the outages being far shorter than the catch-up window, no
//! missed fire. A second every-second schedule creates an issue per fire: each exactly
//! once in the backlog.

use spool::store::{Durability, Store};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const KILLS: usize = 200;

const SCHEDULES: &str = r#"[[schedule]]
id = "tick"
every = "1s"
overlap = "allow_all"
catchup_window = "1m"
[schedule.action]
workflow = "noop"

[[schedule]]
id = "file"
every = "1s"
catchup_window = "1m"
[schedule.action]
create_issue = { title = "Scheduled issue", type = "chore" }
"#;

fn spawn_worker(dir: &Path, db: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_spool"))
        .arg("-C")
        .arg(dir)
        .args([
            "worker",
            "-q",
            "--poll-ms",
            "10",
            "--durability",
            "process",
            "--spool-db",
        ])
        .arg(db)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn worker")
}

/// A pause of 20–250 ms, moved to just after the next whole second when that falls
/// inside it, so that most kills land while a fire is being recorded.
fn pause() -> Duration {
    let wanted = fastrand::u64(20..250);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    let to_second = 1000 - now_ms % 1000;
    if to_second <= wanted {
        Duration::from_millis(to_second + fastrand::u64(0..25))
    } else {
        Duration::from_millis(wanted)
    }
}

#[test]
fn an_every_second_schedule_fires_each_second_once_across_sigkills() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join(".spool")).expect("spool dir");
    std::fs::write(dir.path().join(".spool").join("schedules.toml"), SCHEDULES).expect("write");
    std::fs::create_dir_all(dir.path().join(".beads")).expect("beads dir");
    std::fs::write(dir.path().join(".beads").join("issues.jsonl"), "").expect("backlog");
    let db = dir.path().join("state").join("spool.db");
    let deadline = Instant::now() + Duration::from_secs(240);

    let began = chrono::Utc::now();
    let mut worker = spawn_worker(dir.path(), &db);
    for _ in 0..KILLS {
        assert!(Instant::now() < deadline, "kill loop took too long");
        std::thread::sleep(pause());
        worker.kill().expect("SIGKILL");
        worker.wait().expect("reap");
        worker = spawn_worker(dir.path(), &db);
    }
    let killed_at = chrono::Utc::now();
    // Let the last worker catch up past the last kill, then stop it.
    let store = Store::open(&db, Durability::Process).expect("store");
    loop {
        assert!(Instant::now() < deadline, "the schedule stopped advancing");
        let row = store.schedule("tick").expect("row");
        if row.is_some_and(|r| r.last_processed_ms > killed_at.timestamp_millis() + 2000) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    worker.wait().expect("reap");

    let actions = store.schedule_actions("tick", 100_000).expect("actions");
    assert!(actions.len() > 20, "only {} fires", actions.len());
    let mut nominal: Vec<i64> = actions.iter().map(|a| a.nominal_ms).collect();
    nominal.sort();
    assert!(
        nominal[0] <= began.timestamp_millis() + 5000,
        "the first fire came late"
    );
    for pair in nominal.windows(2) {
        assert_eq!(pair[1] - pair[0], 1000, "a second without an action");
    }
    let runs = store.list_runs(None).expect("runs");
    let mut by_workflow: HashMap<&str, Vec<&str>> = HashMap::new();
    for r in &runs {
        by_workflow
            .entry(r.workflow_id.as_str())
            .or_default()
            .push(r.run_id.as_str());
    }
    for a in &actions {
        assert_eq!(a.outcome, "started", "{a:?}");
        let wf = a.workflow_id.as_deref().expect("workflow id");
        let started = by_workflow.get(wf).cloned().unwrap_or_default();
        assert_eq!(started.len(), 1, "{wf} started {} runs", started.len());
        assert_eq!(Some(started[0]), a.run_id.as_deref());
    }
    assert_eq!(runs.len(), actions.len(), "every run belongs to one action");

    // The create_issue schedule: one issue per fire, every second, none twice.
    let created = store.schedule_actions("file", 100_000).expect("actions");
    assert!(created.len() > 20, "only {} issue fires", created.len());
    let mut nominal: Vec<i64> = created.iter().map(|a| a.nominal_ms).collect();
    nominal.sort();
    for pair in nominal.windows(2) {
        assert_eq!(pair[1] - pair[0], 1000, "a second without an issue action");
    }
    let text =
        std::fs::read_to_string(dir.path().join(".beads").join("issues.jsonl")).expect("backlog");
    let mut by_ref: HashMap<String, Vec<String>> = HashMap::new();
    for line in text.lines() {
        let issue: serde_json::Value = serde_json::from_str(line).expect("issue line");
        let r = issue["external_ref"]
            .as_str()
            .expect("external_ref")
            .to_string();
        let id = issue["id"].as_str().expect("id").to_string();
        by_ref.entry(r).or_default().push(id);
    }
    for a in &created {
        assert_eq!(a.outcome, "created", "{a:?}");
        let wf = a.workflow_id.as_deref().expect("workflow id");
        let ids = by_ref
            .get(&format!("spool-schedule:{wf}"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(ids.len(), 1, "{wf}: issues {ids:?}");
        assert_eq!(a.detail.as_deref(), Some(ids[0].as_str()));
    }
    assert_eq!(
        by_ref.len(),
        created.len(),
        "every issue belongs to one action"
    );
    eprintln!(
        "{KILLS} kills, {} runs and {} issues, each once",
        actions.len(),
        created.len()
    );
}
