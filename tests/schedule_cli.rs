//! `spool schedule ...` end to end: the file edits keep the rest of the file, state and
//! actions show up in `list`/`show --json`, triggers and backfills record their runs.

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

fn spool(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("spool").expect("binary");
    c.arg("-C")
        .arg(dir)
        .env("SPOOL_DB", dir.join("db").join("spool.db"));
    c.env_remove("SPOOL_NOW");
    c
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let out = spool(dir).arg("--json").args(args).output().expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json output")
}

#[test]
fn create_show_trigger_pause_backfill_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::create_dir_all(d.join(".spool")).expect("dir");
    let file = d.join(".spool").join("schedules.toml");
    std::fs::write(&file, "# ours\n").expect("write");

    json(
        d,
        &[
            "schedule",
            "create",
            "nightly",
            "--cron",
            "0 3 * * *",
            "--timezone",
            "Europe/Berlin",
            "--workflow",
            "noop",
            "--input",
            "{\"scope\":\"all\"}",
        ],
    );
    let bad = spool(d)
        .args([
            "schedule",
            "create",
            "bad",
            "--every",
            "soon",
            "--workflow",
            "noop",
        ])
        .output()
        .expect("run");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("schedule \"bad\": `every`"), "{err}");
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.starts_with("# ours\n"), "{text}");
    assert!(!text.contains("bad"), "{text}");

    let list = json(d, &["schedule", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["id"], "nightly");
    assert_eq!(list[0]["paused"], false);

    let fired = json(d, &["schedule", "trigger", "nightly"]);
    assert_eq!(fired[0]["outcome"], "started");
    json(d, &["schedule", "pause", "nightly", "--note", "holiday"]);
    let show = json(d, &["schedule", "show", "nightly"]);
    assert_eq!(show["paused"], true);
    assert_eq!(show["notes"], "holiday");
    assert_eq!(show["next_times"].as_array().map(Vec::len), Some(10));
    assert_eq!(show["actions"][0]["source"], "trigger");
    assert_eq!(show["actions"][0]["outcome"], "started");

    // 2026-03-29 is the spring-forward day in Berlin: 03:00 CEST is 01:00 UTC.
    let back = json(
        d,
        &[
            "schedule",
            "backfill",
            "nightly",
            "--from",
            "2026-03-27T12:00:00Z",
            "--to",
            "2026-03-29T12:00:00Z",
            "--overlap",
            "allow_all",
        ],
    );
    let ids: Vec<&str> = back
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|f| f["workflow_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "nightly@2026-03-28T02:00:00Z",
            "nightly@2026-03-29T01:00:00Z"
        ]
    );
    let again = json(
        d,
        &[
            "schedule",
            "backfill",
            "nightly",
            "--from",
            "2026-03-27T12:00:00Z",
            "--to",
            "2026-03-29T12:00:00Z",
        ],
    );
    assert!(again
        .as_array()
        .expect("list")
        .iter()
        .all(|f| f["outcome"] == "already_recorded"));

    json(d, &["schedule", "delete", "nightly"]);
    assert_eq!(
        std::fs::read_to_string(&file).expect("read").trim(),
        "# ours"
    );
    assert_eq!(json(d, &["schedule", "list"]), Value::Array(Vec::new()));
}
