//! `spool run ...` and `spool worker` through the real binary.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Env {
    dir: tempfile::TempDir,
}

/// Kills the worker when the test ends, however it ends.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Env {
    fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        std::fs::create_dir_all(env.templates()).expect("templates dir");
        env
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn templates(&self) -> PathBuf {
        self.root().join(".spool").join("templates")
    }

    fn template(&self, name: &str, body: &str) {
        std::fs::write(self.templates().join(format!("{name}.toml")), body).expect("write");
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_spool"));
        c.arg("-C")
            .arg(self.root())
            .env("SPOOL_DB", self.root().join("state").join("spool.db"))
            .env_remove("SPOOL_NOW")
            .stdin(Stdio::null());
        c
    }

    fn spool(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run spool")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.spool(args);
        assert!(
            out.status.success(),
            "spool {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_string()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("json output")
    }

    fn worker(&self) -> Worker {
        Worker(
            self.cmd()
                .args(["worker", "-q", "--poll-ms", "10"])
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn worker"),
        )
    }

    fn status(&self, id: &str) -> String {
        self.json(&["run", "show", id])["run"]["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.status(id);
            if got == want {
                return;
            }
            assert!(Instant::now() < deadline, "{id} is {got}, expected {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

const REVIEW: &str = r#"
[[step]]
id = "build"
kind = "activity"
command = ["echo", "building {issue.id}"]
[[step]]
id = "review"
kind = "gate"
signals = ["approve", "reject"]
fail_on = ["reject"]
[[step]]
id = "ship"
kind = "activity"
command = ["echo", "shipped by {steps.review.payload.by}"]
"#;

#[test]
fn runs_start_without_a_worker_and_finish_with_one() {
    let env = Env::new();
    env.template("review", REVIEW);
    let run = env.ok(&[
        "run",
        "start",
        "review",
        "--id",
        "wf-1",
        "--input",
        r#"{"issue": {"id": "bd-1"}}"#,
    ]);
    assert_eq!(env.status("wf-1"), "new");
    let listed = env.json(&["run", "list", "--status", "new"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["run_id"], run.as_str());

    // Signals are acknowledged before any worker runs, and deduplicated by request id.
    let first = env.json(&[
        "run",
        "signal",
        "wf-1",
        "approve",
        "--payload",
        r#"{"by": "ann"}"#,
        "--request-id",
        "r1",
    ]);
    assert_eq!(first["queued"], true);
    let again = env.json(&["run", "signal", "wf-1", "approve", "--request-id", "r1"]);
    assert_eq!(again["queued"], false);

    let second = env.spool(&["run", "start", "review", "--id", "wf-1"]);
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already has an open run"));

    let _worker = env.worker();
    env.wait_status(&run, "completed");
    let shown = env.json(&["run", "show", &run]);
    assert_eq!(
        shown["state"]["outputs"]["ship"]["stdout"],
        "shipped by ann\n"
    );
    let history = env.json(&["run", "history", "wf-1"]);
    let events = history["events"].as_array().expect("events");
    let types: Vec<&str> = events
        .iter()
        .filter_map(|e| e["eventType"].as_str())
        .collect();
    assert_eq!(
        types.first(),
        Some(&"EVENT_TYPE_WORKFLOW_EXECUTION_STARTED")
    );
    assert_eq!(
        types.last(),
        Some(&"EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED")
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED")
            .count(),
        1
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["eventId"], (i + 1).to_string());
    }
    assert!(env
        .ok(&["run", "show", "wf-1"])
        .contains("status    completed"));
}

#[test]
fn cancel_terminate_and_retry() {
    let env = Env::new();
    env.template(
        "long",
        "[[step]]\nid = \"wait\"\nkind = \"activity\"\ncommand = [\"sleep\", \"30\"]\n",
    );
    let _worker = env.worker();
    let run = env.ok(&["run", "start", "long", "--id", "job"]);
    env.wait_status(&run, "running");
    let refused = env.spool(&["run", "retry", &run]);
    assert!(!refused.status.success(), "a running run cannot be retried");
    env.ok(&["run", "cancel", "job"]);
    env.wait_status(&run, "canceled");

    let retry = env.json(&["run", "retry", "job"]);
    let second = retry["run_id"].as_str().expect("run id").to_string();
    assert_eq!(retry["retry_of"], run.as_str());
    env.wait_status(&second, "running");
    let shown = env.json(&["run", "show", &second]);
    assert_eq!(shown["run"]["workflow_id"], "job");
    assert_eq!(
        shown["run"]["template_hash"],
        env.json(&["run", "show", &run])["run"]["template_hash"]
    );
    env.ok(&["run", "terminate", "job", "--reason", "enough"]);
    env.wait_status(&second, "terminated");
    let history = env.json(&["run", "history", &second]);
    let last = history["events"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .expect("event");
    assert_eq!(
        last["workflowExecutionTerminatedEventAttributes"]["reason"],
        "enough"
    );
}

#[test]
fn template_errors_name_file_and_line_before_anything_runs() {
    let env = Env::new();
    env.template(
        "bad",
        "[[step]]\nid = \"a\"\nkind = \"sleep\"\nduration = \"10x\"\n",
    );
    let out = env.spool(&["run", "start", "bad"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:4"), "{err}");
    assert!(err.contains("unknown unit"), "{err}");
    assert_eq!(env.json(&["run", "list"]).as_array().map(Vec::len), Some(0));
}

#[test]
fn editing_a_template_does_not_change_a_run_in_flight() {
    let env = Env::new();
    env.template("pinned", "[[step]]\nid = \"gate\"\nkind = \"gate\"\nsignals = [\"go\"]\n[[step]]\nid = \"say\"\nkind = \"activity\"\ncommand = [\"echo\", \"old\"]\n");
    let run = env.ok(&["run", "start", "pinned"]);
    env.template("pinned", "[[step]]\nid = \"gate\"\nkind = \"gate\"\nsignals = [\"go\"]\n[[step]]\nid = \"say\"\nkind = \"activity\"\ncommand = [\"echo\", \"new\"]\n");
    let _worker = env.worker();
    env.ok(&["run", "signal", &run, "go"]);
    env.wait_status(&run, "completed");
    assert_eq!(
        env.json(&["run", "show", &run])["state"]["outputs"]["say"]["stdout"],
        "old\n"
    );
}

fn fails(env: &Env, args: &[&str]) -> String {
    let out = env.spool(args);
    assert!(!out.status.success(), "spool {args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "spool {args:?} panicked: {err}");
    err
}

#[test]
fn unknown_runs_and_finished_runs_are_clear_errors() {
    let env = Env::new();
    env.template(
        "quick",
        "[[step]]\nid = \"a\"\nkind = \"activity\"\ncommand = [\"true\"]\n",
    );
    for args in [
        &["run", "show", "nope"][..],
        &["run", "history", "nope"],
        &["run", "signal", "nope", "approve"],
        &["run", "cancel", "nope"],
    ] {
        let err = fails(&env, args);
        assert!(err.contains("nope"), "{args:?}: {err}");
    }
    let id = env.ok(&["run", "start", "quick", "--id", "q1"]);
    let _worker = env.worker();
    env.wait_status(&id, "completed");
    let err = fails(&env, &["run", "signal", "q1", "approve"]);
    assert!(err.contains("completed") || err.contains("closed"), "{err}");
}

#[test]
fn a_corrupt_database_is_a_clear_error_and_is_left_alone() {
    let env = Env::new();
    let db = env.root().join("state").join("spool.db");
    std::fs::create_dir_all(db.parent().expect("parent")).expect("mkdir");
    let garbage = b"this is not an SQLite database, it is a text file\n".repeat(100);
    std::fs::write(&db, &garbage).expect("write");
    for args in [
        &["run", "list"][..],
        &["run", "show", "x"],
        &["run", "start", "demo"],
    ] {
        let err = fails(&env, args);
        assert!(
            err.contains("spool.db") || err.to_lowercase().contains("database"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        std::fs::read(&db).expect("read"),
        garbage,
        "the file must not be modified"
    );
}
