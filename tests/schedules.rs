//! Schedules against a real store and engine, with the scheduler's clock in the test's
//! hands: catch-up after downtime, every overlap policy, pause on failure, the actions
//! limit, file edits, and create_issue writing one issue per fire.

use chrono::{DateTime, Duration as Span, Utc};
use spool::engine::{CommandRunner, Engine, EngineConfig, Scheduler, SchedulerConfig, Templates};
use spool::store::{Durability, Store};
use spool_core::workflow::decide::Input;
use spool_core::workflow::state::RunStatus;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const GATED: &str = "[[step]]\nid = \"wait\"\nkind = \"gate\"\nsignals = [\"go\"]\n";
const FAILS: &str = "[[step]]\nid = \"fail\"\nkind = \"activity\"\ncommand = [\"sh\", \"-c\", \"exit 3\"]\nretry = { max_attempts = 1 }\n";

struct Repo {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let t = root.join(".spool").join("templates");
        std::fs::create_dir_all(&t).expect("templates dir");
        std::fs::write(t.join("gated.toml"), GATED).expect("write");
        std::fs::write(t.join("fails.toml"), FAILS).expect("write");
        Repo { _dir: dir, root }
    }

    fn db(&self) -> PathBuf {
        self.root.join("state").join("spool.db")
    }

    fn schedules(&self, body: &str) {
        std::fs::write(self.root.join(".spool").join("schedules.toml"), body).expect("write");
    }

    fn scheduler(&self) -> Scheduler {
        Scheduler::open(
            &self.db(),
            Durability::Process,
            Templates::for_repo(&self.root),
            SchedulerConfig::for_repo(&self.root, "tester"),
        )
        .expect("scheduler")
    }

    async fn engine(&self) -> Engine {
        let mut c = EngineConfig::new(self.db());
        c.durability = Durability::Process;
        c.templates = Templates::for_repo(&self.root);
        c.poll_interval = Duration::from_millis(10);
        let c = c.runner(
            "command",
            Arc::new(CommandRunner::new(self.root.join("attempts"))),
        );
        Engine::start(c).await.expect("engine")
    }

    fn store(&self) -> Store {
        Store::open(&self.db(), Durability::Process).expect("store")
    }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn schedule(id: &str, every: &str, extra: &str, template: &str) -> String {
    format!(
        "[[schedule]]\nid = \"{id}\"\nevery = \"{every}\"\n{extra}\n[schedule.action]\nworkflow = \"{template}\"\n\n"
    )
}

/// Outcome of each action of a schedule, by nominal time.
fn outcomes(store: &Store, id: &str) -> Vec<(String, String)> {
    let mut rows = store.schedule_actions(id, 10_000).expect("actions");
    rows.reverse();
    rows.into_iter()
        .map(|a| {
            let at = DateTime::from_timestamp_millis(a.nominal_ms).expect("time");
            (at.format("%H:%M").to_string(), a.outcome)
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn a_day_of_downtime_with_a_one_hour_window_runs_exactly_the_last_hour() {
    let repo = Repo::new();
    repo.schedules(&schedule(
        "minutely",
        "1m",
        "catchup_window = \"1h\"\noverlap = \"allow_all\"",
        "noop",
    ));
    let t0 = t("2026-01-01T00:00:30Z");
    let mut s = repo.scheduler();
    assert!(s.sync_file(t0, false).expect("sync").is_empty());
    let back = t0 + Span::days(1);
    let report = s.tick(back).expect("tick");
    assert_eq!(report.started, 60, "{report:?}");
    assert_eq!(report.missed, 1440 - 60);
    let store = repo.store();
    let runs = store.list_runs(None).expect("runs");
    let mut ids: Vec<String> = runs.iter().map(|r| r.workflow_id.clone()).collect();
    ids.sort();
    let expected: Vec<String> = (0..60)
        .map(|i| {
            let at = t("2026-01-01T23:01:00Z") + Span::minutes(i);
            format!(
                "minutely@{}",
                at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            )
        })
        .collect();
    assert_eq!(ids, expected);
    let row = store.schedule("minutely").expect("row").expect("stored");
    assert_eq!(row.missed_total, 1380);
    assert_eq!(
        row.next_due_ms,
        Some(t("2026-01-02T00:01:00Z").timestamp_millis())
    );
    // Ticking again, or from a fresh process, fires nothing more.
    assert_eq!(s.tick(back).expect("tick").started, 0);
    let mut again = repo.scheduler();
    assert_eq!(
        again.tick(back + Span::seconds(10)).expect("tick").started,
        0
    );
    assert_eq!(store.list_runs(None).expect("runs").len(), 60);
    let log = store.schedule_actions("minutely", 10_000).expect("log");
    assert_eq!(log.iter().filter(|a| a.outcome == "started").count(), 60);
    assert_eq!(log.iter().filter(|a| a.outcome == "missed").count(), 100);
}

/// Drives one overlap policy over four minutes with gated runs the test releases.
async fn overlap_run(policy: &str) -> (Vec<(String, String)>, Vec<String>) {
    let repo = Repo::new();
    repo.schedules(&schedule(
        "o",
        "1m",
        &format!("overlap = \"{policy}\"\ncatchup_window = \"10m\""),
        "gated",
    ));
    let engine = repo.engine().await;
    let mut s = repo.scheduler();
    let t0 = t("2026-01-01T00:00:30Z");
    s.sync_file(t0, false).expect("sync");
    let minute = |m: i64| t0 + Span::minutes(m);
    s.tick(minute(1)).expect("tick 00:01");
    s.tick(minute(2)).expect("tick 00:02");
    s.tick(minute(3)).expect("tick 00:03");
    // Release every open run, oldest first, ticking after each close.
    for round in 0..6 {
        let store = repo.store();
        let mut open: Vec<_> = store
            .list_runs(None)
            .expect("runs")
            .into_iter()
            .filter(|r| matches!(r.status.as_str(), "new" | "running"))
            .collect();
        open.sort_by(|a, b| a.workflow_id.cmp(&b.workflow_id));
        let Some(run) = open.first() else { break };
        // Through the inbox, as `spool run signal` does: applied after the run's start.
        let go = Input::Signal {
            name: "go".into(),
            payload: serde_json::Value::Null,
            request_id: format!("go-{round}"),
        };
        repo.store()
            .push_inbox(&run.run_id, Some(&format!("go-{round}")), &go, Utc::now())
            .expect("signal");
        engine
            .wait_closed(&run.run_id, Duration::from_secs(10))
            .await
            .expect("closes");
        s.tick(minute(3) + Span::seconds(round + 1)).expect("tick");
    }
    let log = outcomes(&repo.store(), "o");
    let mut runs = repo.store().list_runs(None).expect("runs");
    runs.sort_by(|a, b| a.workflow_id.cmp(&b.workflow_id));
    let statuses = runs
        .iter()
        .map(|r| format!("{}:{}", &r.workflow_id[13..18], r.status))
        .collect();
    engine.shutdown().await;
    (log, statuses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_policies_decide_with_a_fake_clock() {
    // (policy, outcome of 00:01, 00:02, 00:03, final status of each run started)
    let table: &[(&str, [&str; 3], &[&str])] = &[
        (
            "skip",
            ["started", "skipped", "skipped"],
            &["00:01:completed"],
        ),
        (
            "buffer_one",
            ["started", "started", "dropped"],
            &["00:01:completed", "00:02:completed"],
        ),
        (
            "buffer_all",
            ["started", "started", "started"],
            &["00:01:completed", "00:02:completed", "00:03:completed"],
        ),
        (
            "cancel_other",
            ["started", "started", "dropped"],
            &["00:01:canceled", "00:02:completed"],
        ),
        (
            "terminate_other",
            ["started", "started", "started"],
            &["00:01:terminated", "00:02:terminated", "00:03:completed"],
        ),
        (
            "allow_all",
            ["started", "started", "started"],
            &["00:01:completed", "00:02:completed", "00:03:completed"],
        ),
    ];
    for (policy, outcomes, statuses) in table {
        let (log, runs) = overlap_run(policy).await;
        let expected: Vec<(&str, &str)> = ["00:01", "00:02", "00:03"]
            .into_iter()
            .zip(outcomes.iter().copied())
            .collect();
        assert_eq!(log, pairs(&expected), "{policy}");
        assert_eq!(runs, *statuses, "{policy}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_pauses_its_schedule_and_unpause_resumes_from_now() {
    let repo = Repo::new();
    repo.schedules(&schedule("f", "1m", "pause_on_failure = true", "fails"));
    let engine = repo.engine().await;
    let mut s = repo.scheduler();
    let t0 = t("2026-01-01T00:00:30Z");
    s.sync_file(t0, false).expect("sync");
    s.tick(t0 + Span::seconds(31)).expect("tick");
    let run = repo.store().list_runs(None).expect("runs")[0]
        .run_id
        .clone();
    assert_eq!(
        engine
            .wait_closed(&run, Duration::from_secs(10))
            .await
            .expect("closes"),
        RunStatus::Failed
    );
    s.tick(t0 + Span::seconds(40)).expect("tick");
    let row = repo.store().schedule("f").expect("row").expect("stored");
    assert!(row.paused);
    assert!(row.notes.contains("paused on failure"), "{}", row.notes);
    // Paused: the next minutes do nothing.
    assert_eq!(s.tick(t0 + Span::minutes(5)).expect("tick").started, 0);
    s.set_paused("f", false, "", t0 + Span::minutes(5))
        .expect("unpause");
    assert_eq!(
        s.tick(t0 + Span::minutes(5)).expect("tick").started,
        0,
        "nothing caught up"
    );
    assert_eq!(s.tick(t0 + Span::minutes(6)).expect("tick").started, 1);
    engine.shutdown().await;
}

#[test]
fn the_actions_limit_stops_scheduled_fires_but_not_triggers() {
    let repo = Repo::new();
    repo.schedules(&schedule(
        "lim",
        "1m",
        "max_actions = 2\noverlap = \"allow_all\"\ncatchup_window = \"10m\"",
        "noop",
    ));
    let mut s = repo.scheduler();
    let t0 = t("2026-01-01T00:00:30Z");
    s.sync_file(t0, false).expect("sync");
    assert_eq!(s.tick(t0 + Span::minutes(5)).expect("tick").started, 2);
    let row = repo.store().schedule("lim").expect("row").expect("stored");
    assert_eq!(row.remaining_actions, Some(0));
    assert_eq!(row.next_due_ms, None);
    let fired = s
        .trigger("lim", t0 + Span::minutes(6), None)
        .expect("trigger");
    assert_eq!(fired.outcome, "started");
    let again = s
        .trigger("lim", t0 + Span::minutes(6), None)
        .expect("trigger");
    assert_eq!(again.outcome, "already_recorded");
}

#[test]
fn file_edits_apply_to_future_times_and_a_bad_schedule_keeps_its_last_version() {
    let repo = Repo::new();
    repo.schedules(
        &(schedule("a", "1m", "overlap = \"allow_all\"", "noop")
            + &schedule("b", "1h", "", "noop")),
    );
    let mut s = repo.scheduler();
    let t0 = t("2026-01-01T00:00:30Z");
    s.sync_file(t0, false).expect("sync");
    s.tick(t0 + Span::minutes(2)).expect("tick");
    // `a` becomes every 10 minutes; `b` gets a broken field; a new `c` appears.
    repo.schedules(
        &(schedule("a", "10m", "overlap = \"allow_all\"", "noop")
            + &schedule("b", "1h", "jitter = \"soon\"", "noop")
            + &schedule("c", "1m", "", "noop")),
    );
    let errors = s.sync_file(t0 + Span::minutes(2), false).expect("sync");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].schedule.as_deref(), Some("b"));
    assert_eq!(errors[0].field.as_deref(), Some("jitter"));
    let store = repo.store();
    let ids: Vec<String> = store
        .schedules()
        .expect("rows")
        .into_iter()
        .map(|r| r.schedule_id)
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(
        store.schedule("a").expect("row").expect("a").next_due_ms,
        Some(t("2026-01-01T00:10:00Z").timestamp_millis())
    );
    s.tick(t0 + Span::minutes(12)).expect("tick");
    let a: Vec<String> = outcomes(&store, "a")
        .into_iter()
        .map(|(at, _)| at)
        .collect();
    assert_eq!(a, ["00:01", "00:02", "00:10"]);
    // Removing a schedule from the file deletes it; its log stays.
    repo.schedules(&schedule("c", "1m", "", "noop"));
    s.sync_file(t0 + Span::minutes(12), false).expect("sync");
    let ids: Vec<String> = store
        .schedules()
        .expect("rows")
        .into_iter()
        .map(|r| r.schedule_id)
        .collect();
    assert_eq!(ids, ["c"]);
    assert_eq!(store.schedule_actions("a", 10).expect("log").len(), 3);
}

#[test]
fn create_issue_writes_one_issue_per_fire_even_when_repeated() {
    let repo = Repo::new();
    std::fs::create_dir_all(repo.root.join(".beads")).expect("beads");
    std::fs::write(repo.root.join(".beads").join("issues.jsonl"), "").expect("backlog");
    repo.schedules(
        "[[schedule]]\nid = \"deps\"\ncron = \"0 9 * * MON\"\n[schedule.action]\n\
         create_issue = { title = \"Dependency update\", type = \"chore\", labels = [\"deps\"] }\n",
    );
    let mut s = repo.scheduler();
    let t0 = t("2026-11-29T12:00:00Z");
    s.sync_file(t0, false).expect("sync");
    let report = s.tick(t("2026-11-30T09:00:10Z")).expect("tick");
    assert_eq!(report.creating, 1);
    assert_eq!(s.perform_creates(t0).expect("create"), 1);
    // As if the process died after writing the issue but before recording it.
    let mut store = repo.store();
    let nominal = t("2026-11-30T09:00:00Z").timestamp_millis();
    store
        .schedule_tx(|tx| tx.set_action("deps", nominal, "creating", None, None))
        .expect("reset");
    assert_eq!(s.perform_creates(t0).expect("create again"), 1);
    let text =
        std::fs::read_to_string(repo.root.join(".beads").join("issues.jsonl")).expect("read");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["title"], "Dependency update");
    assert_eq!(lines[0]["issue_type"], "chore");
    assert_eq!(lines[0]["labels"], serde_json::json!(["deps"]));
    assert_eq!(
        lines[0]["external_ref"],
        "spool-schedule:deps@2026-11-30T09:00:00Z"
    );
    let log = store.schedule_actions("deps", 10).expect("log");
    assert_eq!(log[0].outcome, "created");
    assert_eq!(log[0].detail.as_deref(), lines[0]["id"].as_str());
}
