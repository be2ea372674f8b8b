//! A backlog large enough to be memory-mapped (see `src/mapped.rs`) reads exactly as its
//! bytes say, although its pages are released while it is parsed.

mod common;

use common::TestEnv;
use serde_json::Value;

#[test]
fn a_mapped_backlog_renders_every_issue_from_its_own_line() {
    let maps = spool::synth::generate(&spool::synth::SynthSpec {
        issues: 9000,
        seed: 5,
        prefix: "map".into(),
    });
    let mut text = String::new();
    for m in &maps {
        text.push_str(&serde_json::to_string(m).expect("serialises"));
        text.push('\n');
    }
    assert!(
        text.len() > 8 << 20,
        "the backlog is too small to be mapped"
    );
    let env = TestEnv::with_backlog(&text);
    let out = env
        .cmd()
        .args(["list", "--json", "--all", "--limit", "0"])
        .output()
        .expect("spawn spool");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).expect("one JSON array");
    let shown = maps
        .iter()
        .filter(|m| m.get("status").and_then(Value::as_str) != Some("tombstone"))
        .count();
    assert_eq!(listed.len(), shown, "every issue but the tombstones");
    let by_id: std::collections::HashMap<&str, &serde_json::Map<String, Value>> = maps
        .iter()
        .map(|m| (m["id"].as_str().expect("id"), m))
        .collect();
    for issue in &listed {
        let mut issue = issue.as_object().expect("object").clone();
        for added in [
            "dependency_count",
            "dependent_count",
            "comment_count",
            "parent",
        ] {
            issue.remove(added);
        }
        let id = issue["id"].as_str().expect("id").to_string();
        let mut expected = (*by_id.get(id.as_str()).expect("listed id is in the file")).clone();
        // JSON output gives comment ids as strings, as bd's MCP server expects.
        if let Some(Value::Array(comments)) = expected.get_mut("comments") {
            for c in comments {
                if let Some(n) = c.get("id").and_then(Value::as_i64) {
                    c["id"] = Value::String(n.to_string());
                }
            }
        }
        assert_eq!(issue, expected);
    }
    // The cold `ready` (cache and write index built from the map) and a write through
    // the index agree with the file.
    let ready = env.cmd().args(["ready", "--json"]).output().expect("spawn");
    assert!(ready.status.success());
    let first: Vec<Value> = serde_json::from_slice(&ready.stdout).expect("json");
    let id = first[0]["id"].as_str().expect("id").to_string();
    let upd = env
        .cmd()
        .args(["update", &id, "--priority", "4"])
        .output()
        .expect("spawn");
    assert!(
        upd.status.success(),
        "{}",
        String::from_utf8_lossy(&upd.stderr)
    );
    let after = env.backlog();
    let changed = changed_lines(&text, &after);
    assert_eq!(changed.len(), 1, "exactly the updated line changed");
    assert!(changed[0].1.contains(&format!("\"id\":\"{id}\"")));
    assert!(changed[0].1.contains("\"priority\":4"));
    // A whole-file write (no index) reads the file mapped and writes it from the map.
    let label = env
        .cmd()
        .env("SPOOL_NO_CACHE", "1")
        .args(["label", "add", &id, "from-the-map"])
        .output()
        .expect("spawn");
    assert!(
        label.status.success(),
        "{}",
        String::from_utf8_lossy(&label.stderr)
    );
    let last = env.backlog();
    assert_eq!(last.lines().count(), after.lines().count());
    let changed = changed_lines(&after, &last);
    assert_eq!(changed.len(), 1, "exactly the labelled line changed");
    assert!(changed[0].1.contains(&format!("\"id\":\"{id}\"")));
    assert!(changed[0].1.contains("\"from-the-map\""));
}

/// The pairs of lines that differ between two versions of a file, in order.
fn changed_lines<'a>(before: &'a str, after: &'a str) -> Vec<(&'a str, &'a str)> {
    before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect()
}
