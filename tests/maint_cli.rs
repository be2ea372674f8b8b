//! End-to-end tests of bd's maintenance commands: `repair-deps`, `info`, `migrate
//! --inspect` and `doctor --check=pollution --clean`, on the real binary.

mod common;

use std::process::Stdio;

use common::{fixtures_dir, ids, TestEnv, NOW};
use serde_json::{json, Value};

fn line(id: &str, title: &str, extra: &str) -> String {
    format!(
        r#"{{"id":"{id}","title":"{title}","status":"open","priority":2,"issue_type":"task","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"{extra}}}"#
    )
}

fn deps(from: &str, targets: &[(&str, &str)]) -> String {
    let items: Vec<String> = targets
        .iter()
        .map(|(to, ty)| {
            format!(r#"{{"issue_id":"{from}","depends_on_id":"{to}","type":"{ty}","created_at":"2026-01-01T00:00:00Z"}}"#)
        })
        .collect();
    format!(r#","dependencies":[{}]"#, items.join(","))
}

/// The line of `id` in `text`, parsed.
fn record(text: &str, id: &str) -> Value {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in the backlog:\n{text}"))
}

/// A backlog with two orphaned edges (t-a → t-gone twice, by type), and edges that are
/// not orphans: to a live issue, to a tombstone, to another project.
fn orphan_backlog() -> String {
    [
        line(
            "t-a",
            "Holder",
            &deps("t-a", &[("t-gone", "blocks"), ("t-b", "related"), ("t-gone", "related")]),
        ),
        line("t-b", "Fine", &deps("t-b", &[("t-dead", "blocks")])),
        line("t-c", "External", &deps("t-c", &[("external:other:cap", "blocks")])),
        r#"{"id":"t-dead","title":"Gone","status":"tombstone","priority":2,"issue_type":"task","deleted_at":"2026-01-02T00:00:00Z"}"#.to_string(),
        line("t-e", "Last", ""),
    ]
    .join("\n")
        + "\n"
}

#[test]
fn repair_deps_reports_orphans_in_bds_shape_and_leaves_the_file_alone() {
    let text = orphan_backlog();
    let env = TestEnv::with_backlog(&text);
    let v = env.json(&["repair-deps"]);
    assert_eq!(
        v,
        json!({
            "orphans_found": 2,
            "orphans": [
                {"issue_id": "t-a", "depends_on_id": "t-gone", "type": "blocks"},
                {"issue_id": "t-a", "depends_on_id": "t-gone", "type": "related"},
            ],
        })
    );
    let human = env.ok(&["repair-deps"]);
    assert!(
        human.contains("Found 2 orphaned dependencies")
            && human.contains("t-a → t-gone (blocks) [t-gone does not exist]")
            && human.contains("--fix"),
        "{human}"
    );
    assert_eq!(env.backlog(), text);
}

#[test]
fn repair_deps_fix_removes_orphans_and_changes_only_their_lines() {
    let text = orphan_backlog();
    let env = TestEnv::with_backlog(&text);
    let v = env.json(&["repair-deps", "--fix"]);
    assert_eq!(v["orphans_found"], 2);
    assert_eq!(v["fixed"], 2);
    let after = env.backlog();
    let (old, new): (Vec<&str>, Vec<&str>) = (text.lines().collect(), after.lines().collect());
    assert_eq!(old.len(), new.len());
    for (n, (o, w)) in old.iter().zip(&new).enumerate() {
        if n == 0 {
            assert_ne!(o, w, "the holder's line changes");
        } else {
            assert_eq!(o, w, "line {} must stay byte-identical", n + 1);
        }
    }
    let a = record(&after, "t-a");
    let targets: Vec<&str> = a["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .map(|d| d["depends_on_id"].as_str().expect("target"))
        .collect();
    assert_eq!(targets, ["t-b"], "only the live edge is left");
    assert_eq!(a["updated_at"], NOW);
    let again = env.json(&["repair-deps", "--fix"]);
    assert_eq!(
        again,
        json!({"orphans_found": 0, "orphans": [], "fixed": 0})
    );
    assert_eq!(env.backlog(), after, "nothing left to fix: no write");
    assert!(env
        .ok(&["repair-deps"])
        .contains("No orphaned dependencies found"));
}

fn polluted_backlog() -> String {
    [
        line("t-a", "Real work", ""),
        line("t-b", "test issue 1", r#","closed_at":null"#),
        line("t-c", "Testing strategy for the parser", ""),
    ]
    .join("\n")
        + "\n"
}

#[test]
fn pollution_clean_without_yes_on_a_non_terminal_refuses_and_writes_nothing() {
    let text = polluted_backlog();
    let env = TestEnv::with_backlog(&text);
    let out = env
        .cmd()
        .args(["doctor", "--check=pollution", "--clean"])
        .stdin(Stdio::null())
        .output()
        .expect("spawn spool");
    assert!(!out.status.success(), "must refuse without --yes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a terminal") && stderr.contains("--yes"),
        "{stderr}"
    );
    assert_eq!(env.backlog(), text, "the file is left byte-identical");
    // Reporting alone still works and still writes nothing.
    let v = env.json(&["doctor", "--check=pollution"]);
    assert_eq!(v["polluted_count"], 1);
    assert_eq!(ids(&v["issues"]), ["t-b"]);
    assert!(v.get("deleted_count").is_none());
    assert_eq!(env.backlog(), text);
}

#[test]
fn pollution_clean_with_yes_tombstones_the_test_issues_only() {
    let text = polluted_backlog();
    let env = TestEnv::with_backlog(&text);
    let err = env.fails(&[
        "doctor",
        "--check=pollution",
        "--clean",
        "--yes",
        "--file",
        ".beads/issues.jsonl",
    ]);
    assert!(err.contains("--file"), "{err}");
    assert_eq!(env.backlog(), text);
    let v = env.json(&["doctor", "--check=pollution", "--clean", "--yes"]);
    assert_eq!(v["polluted_count"], 1);
    assert_eq!(v["deleted_count"], 1);
    assert_eq!(v["deleted"], json!(["t-b"]));
    let after = env.backlog();
    let (old, new): (Vec<&str>, Vec<&str>) = (text.lines().collect(), after.lines().collect());
    assert_eq!((old[0], old[2]), (new[0], new[2]), "other lines untouched");
    let b = record(&after, "t-b");
    assert_eq!(b["status"], "tombstone");
    assert_eq!(b["deleted_at"], NOW);
    assert_eq!(b["deleted_by"], "tester");
    assert_eq!(b["original_type"], "task");
    assert_eq!(b["updated_at"], NOW);
    assert!(b.get("closed_at").is_none());
    assert_eq!(b["title"], "test issue 1", "the tombstone keeps the issue");
    let listed = ids(&env.json(&["list", "--all", "--limit", "0"]));
    assert_eq!(listed.len(), 2);
    assert!(!listed.contains(&"t-b".to_string()), "{listed:?}");
    let again = env.json(&["doctor", "--check=pollution", "--clean", "--yes"]);
    assert_eq!(
        (
            again["polluted_count"].clone(),
            again["deleted_count"].clone()
        ),
        (json!(0), json!(0))
    );
    assert_eq!(env.backlog(), after);
    let err = env.fails(&["doctor", "--clean"]);
    assert!(err.contains("--check=pollution"), "{err}");
}

#[test]
fn info_and_migrate_inspect_describe_the_jsonl_store() {
    let text = [
        r#"{"_schema":"beads","version":1}"#.to_string(),
        line("t-a", "Alpha", r#","labels":["x"]"#),
        r#"{"_type":"issue","id":"t-b","title":"Beta","status":"open","created_at":"2026-01-01T00:00:00Z"}"#.to_string(),
        r#"{"id":"t-c","title":"Gamma","created":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z"}"#.to_string(),
        r#"{"id":"t-d","title":"Gone","status":"tombstone"}"#.to_string(),
        line("t-e", "Epsilon", &deps("t-e", &[("t-a", "blocks")])),
        r#"{"_type":"memory","key":"k","value":"v"}"#.to_string(),
    ]
    .join("\n")
        + "\n";
    let env = TestEnv::with_backlog(&text);
    let v = env.json(&["info", "--schema"]);
    let path = std::path::absolute(env.issues_path()).expect("absolute path");
    assert_eq!(v["database_path"], path.display().to_string());
    assert_eq!(v["issue_count"], 4);
    assert_eq!(v["config"], json!({"issue_prefix": "t"}));
    let s = &v["schema"];
    assert_eq!(s["schema_version"], "1.0.5");
    assert_eq!(s["sample_issue_ids"], json!(["t-a", "t-b", "t-c"]));
    assert_eq!(s["detected_prefix"], "t");
    assert_eq!(s["tables"], json!(["issues", "dependencies", "labels"]));
    let fields: Vec<&str> = s["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f.as_str().expect("field name"))
        .collect();
    for f in [
        "_type",
        "created",
        "created_at",
        "dependencies",
        "labels",
        "title",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    assert_eq!(
        s["records"],
        json!({
            "lines": 7,
            "classic_issue_lines": 4,
            "v1_issue_lines": 1,
            "schema_headers": 1,
            "memory_records": 1,
            "other_records": 0,
            "tombstones": 1,
            "legacy_created_updated_lines": 1,
            "blank_lines": 0,
            "invalid_lines": 0,
            "duplicate_ids": 0,
        })
    );
    let plain = env.json(&["info"]);
    assert!(plain.get("schema").is_none());
    assert_eq!(plain["issue_count"], 4);

    let m = env.json(&["migrate", "--inspect"]);
    assert_eq!(m["registered_migrations"], json!([]));
    assert_eq!(m["warnings"], json!([]));
    assert_eq!(m["invariants_to_check"], json!([]));
    let state = &m["current_state"];
    assert_eq!(state["issue_count"], 4);
    assert_eq!(state["db_exists"], false);
    assert_eq!(state["missing_config"], json!([]));
    assert_eq!(state["records"], s["records"]);
    assert_eq!(env.backlog(), text, "inspection never writes");

    // Without a configured prefix bd's warning names the detected one.
    std::fs::write(env.root().join(".beads/config.yaml"), "").expect("clear config");
    let m = env.json(&["migrate", "--inspect"]);
    assert_eq!(
        m["current_state"]["missing_config"],
        json!(["issue_prefix"])
    );
    let w = m["warnings"][0].as_str().expect("warning");
    assert!(
        w.contains("issue_prefix") && w.contains("detected: t"),
        "{w}"
    );
    assert_eq!(
        env.json(&["migrate"]),
        json!({"status": "current", "applied": 0})
    );
}

/// On every real backlog, `repair-deps --fix` changes exactly the lines of the issues
/// that held orphans (two of the fixtures have some), and each of them only loses those
/// edges.
#[test]
fn repair_deps_fix_on_real_backlogs_changes_only_the_holders_lines() {
    let dir = fixtures_dir();
    let mut with_orphans = 0;
    for entry in
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("fixtures at {}: {e}", dir.display()))
    {
        let path = entry.expect("entry").path();
        let name = path.display().to_string();
        if !name.ends_with(".jsonl") || name.contains("deletions") {
            continue;
        }
        let original = std::fs::read_to_string(&path).expect("read fixture");
        let env = TestEnv::with_backlog(&original);
        let report = env.json(&["repair-deps", "--fix"]);
        let orphans = report["orphans"].as_array().expect("orphans").clone();
        assert_eq!(report["fixed"], orphans.len(), "{name}");
        let holders: std::collections::BTreeSet<&str> = orphans
            .iter()
            .map(|o| o["issue_id"].as_str().expect("issue_id"))
            .collect();
        let after = env.backlog();
        let (a, b): (Vec<&str>, Vec<&str>) = (original.lines().collect(), after.lines().collect());
        assert_eq!(a.len(), b.len(), "{name}: line count changed");
        let mut changed = std::collections::BTreeSet::new();
        for (old, new) in a.iter().zip(&b).filter(|(o, n)| o != n) {
            let (old, new): (Value, Value) = (
                serde_json::from_str(old).expect("old line"),
                serde_json::from_str(new).expect("new line"),
            );
            let id = new["id"].as_str().expect("id").to_string();
            let targets = |v: &Value| -> Vec<String> {
                v["dependencies"]
                    .as_array()
                    .map(|d| {
                        d.iter()
                            .map(|d| d["depends_on_id"].as_str().unwrap_or("").to_string())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let lost: Vec<String> = targets(&old)
                .into_iter()
                .filter(|t| !targets(&new).contains(t))
                .collect();
            let expected: Vec<String> = orphans
                .iter()
                .filter(|o| o["issue_id"] == id.as_str())
                .map(|o| o["depends_on_id"].as_str().expect("target").to_string())
                .collect();
            assert_eq!(lost, expected, "{name}: {id} lost other edges");
            changed.insert(id);
        }
        let holders: std::collections::BTreeSet<String> =
            holders.into_iter().map(str::to_string).collect();
        assert_eq!(changed, holders, "{name}: changed lines");
        with_orphans += usize::from(!orphans.is_empty());
    }
    assert!(with_orphans >= 2, "fixtures with orphans: {with_orphans}");
}
