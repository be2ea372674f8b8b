//! End-to-end tests of the backlog commands: the real binary in a sealed environment.

mod common;

use common::{fixtures_dir, ids, TestEnv};
use serde_json::Value;

fn line(id: &str, extra: &str) -> String {
    format!(
        r#"{{"id":"{id}","title":"Issue {id}","status":"open","priority":2,"issue_type":"task","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"{extra}}}"#
    )
}

fn blocks(from: &str, to: &str) -> String {
    format!(
        r#","dependencies":[{{"issue_id":"{from}","depends_on_id":"{to}","type":"blocks","created_at":"2026-01-01T00:00:00Z"}}]"#
    )
}

#[test]
fn version_prints_a_bd_compatible_number_first() {
    let env = TestEnv::new();
    let out = env.ok(&["version"]);
    let first = out
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()));
    assert_eq!(first, Some("1.0.5"), "{out}");
}

#[test]
fn init_then_create_makes_hash_ids_with_the_prefix() {
    let env = TestEnv::new();
    let v = env.json(&["init", "--prefix", "demo"]);
    assert_eq!(v["prefix"], "demo");
    for f in ["issues.jsonl", "config.yaml", "metadata.json", ".gitignore"] {
        assert!(env.root().join(".beads").join(f).exists(), "{f} missing");
    }
    let a = env.json(&["create", "First", "-p", "1", "-t", "bug", "-l", "b,a"]);
    let id = a["id"].as_str().expect("id");
    assert!(
        id.starts_with("demo-") && id.len() == "demo-".len() + 3,
        "{id}"
    );
    assert_eq!(a["priority"], 1);
    assert_eq!(a["issue_type"], "bug");
    assert_eq!(a["labels"], serde_json::json!(["a", "b"]));
    assert_eq!(a["created_by"], "tester");
    assert_eq!(a["created_at"], common::NOW);
    let q = env.ok(&["q", "Second"]);
    let qid = q.trim();
    assert!(qid.starts_with("demo-") && !qid.contains(' '), "{q}");
    // Written as classic bd writes: one line each, sorted by id.
    let text = env.backlog();
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    let sorted = {
        lines.sort();
        lines.clone()
    };
    assert_eq!(text.lines().collect::<Vec<_>>(), sorted);
    assert!(env.fails(&["init"]).contains("already"));
    // The daemon's configuration can be added to an initialized backlog, once.
    let backlog = env.backlog();
    let v = env.json(&["init", "--daemon"]);
    let config = env.root().join(".spool/config.toml");
    assert_eq!(v["daemon_config"], config.display().to_string());
    let text = std::fs::read_to_string(&config).expect("daemon config");
    assert!(
        text.contains("[[select]]") && text.contains("max_concurrent"),
        "{text}"
    );
    assert_eq!(env.backlog(), backlog);
    assert!(env.fails(&["init", "--daemon"]).contains("already"));
}

#[test]
fn ready_and_blocked_follow_dependencies_and_close_unblocks() {
    let env = TestEnv::with_backlog(&format!(
        "{}\n{}\n",
        line("t-a", ""),
        line("t-b", &blocks("t-b", "t-a"))
    ));
    assert_eq!(ids(&env.json(&["ready"])), vec!["t-a"]);
    let blocked = env.json(&["blocked"]);
    assert_eq!(ids(&blocked), vec!["t-b"]);
    assert_eq!(blocked[0]["blocked_by"], serde_json::json!(["t-a"]));
    assert_eq!(blocked[0]["blocked_by_count"], 1);
    // Closing a blocked issue is refused; closing the blocker unblocks it.
    assert!(env.fails(&["close", "t-b"]).contains("open blockers"));
    let closed = env.json(&["close", "t-a", "--reason", "done"]);
    assert_eq!(closed[0]["status"], "closed");
    assert_eq!(closed[0]["close_reason"], "done");
    assert_eq!(closed[0]["closed_at"], common::NOW);
    assert_eq!(ids(&env.json(&["ready"])), vec!["t-b"]);
    assert!(ids(&env.json(&["blocked"])).is_empty());
}

#[test]
fn claim_is_a_compare_and_swap() {
    let env = TestEnv::with_backlog(&format!("{}\n", line("t-a", "")));
    let v = env.json(&["update", "t-a", "--claim", "--actor", "alice"]);
    assert_eq!(v[0]["status"], "in_progress");
    assert_eq!(v[0]["assignee"], "alice");
    // Re-claiming your own issue succeeds without change; someone else is refused.
    env.json(&["update", "t-a", "--claim", "--actor", "alice"]);
    let err = env.fails(&["update", "t-a", "--claim", "--actor", "bob"]);
    assert!(err.contains("already claimed by alice"), "{err}");
}

#[test]
fn global_flags_work_after_subcommand_arguments() {
    let env = TestEnv::with_backlog(&format!("{}\n", line("t-a", "")));
    let out = env.ok(&[
        "update",
        "t-a",
        "--status",
        "in_progress",
        "--actor",
        "mcp",
        "--no-auto-flush",
        "--no-auto-import",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(v[0]["status"], "in_progress");
}

#[test]
fn show_lists_dependencies_dependents_and_string_comment_ids() {
    let env = TestEnv::with_backlog(&format!(
        "{}\n{}\n",
        line(
            "t-a",
            r#","comments":[{"id":3,"issue_id":"t-a","author":"x","text":"hi","created_at":"2026-01-01T00:00:00Z"}]"#
        ),
        line("t-b", &blocks("t-b", "t-a"))
    ));
    let v = env.json(&["show", "t-a"]);
    assert_eq!(v[0]["id"], "t-a");
    assert_eq!(v[0]["dependents"][0]["id"], "t-b");
    assert_eq!(v[0]["dependents"][0]["dependency_type"], "blocks");
    assert_eq!(v[0]["comments"][0]["id"], "3");
    let b = env.json(&["show", "t-b"]);
    assert_eq!(b[0]["dependencies"][0]["id"], "t-a");
    assert_eq!(b[0]["dependencies"][0]["title"], "Issue t-a");
    // Unknown ids fail.
    assert!(env.fails(&["show", "t-zzz"]).contains("no issue"));
}

#[test]
fn write_commands_print_issues_in_shows_shape_with_linked_dependencies() {
    let env = TestEnv::with_backlog(&format!(
        "{}\n{}\n",
        line("t-a", ""),
        line("t-b", &blocks("t-b", "t-a"))
    ));
    // Tools validate `dependencies` as linked issues, never raw edge records.
    let linked_a = |deps: &Value| {
        let d = &deps[0];
        assert_eq!(d["id"], "t-a", "{deps}");
        assert_eq!(d["title"], "Issue t-a");
        assert_eq!(d["dependency_type"], "blocks");
        assert_eq!(d["created_at"], "2026-01-01T00:00:00Z");
        assert_eq!(d["updated_at"], "2026-01-01T00:00:00Z");
        assert!(d.get("depends_on_id").is_none(), "{deps}");
    };
    let c = env.json(&["create", "C", "--deps", "t-a"]);
    linked_a(&c["dependencies"]);
    let c_id = c["id"].as_str().expect("id").to_string();
    let updated = env.json(&["update", "t-b", "--priority", "1"]);
    linked_a(&updated[0]["dependencies"]);
    assert_eq!(
        updated,
        env.json(&["show", "t-b"]),
        "update --json is show's shape"
    );
    let noted = env.json(&["note", "t-b", "more"]);
    linked_a(&noted[0]["dependencies"]);
    let closed = env.json(&["close", "t-a", "--force"]);
    let mut dependents: Vec<&str> = closed[0]["dependents"]
        .as_array()
        .expect("dependents")
        .iter()
        .map(|d| d["id"].as_str().expect("id"))
        .collect();
    dependents.sort_unstable();
    let mut expected = vec!["t-b", c_id.as_str()];
    expected.sort_unstable();
    assert_eq!(dependents, expected);
    let reopened = env.json(&["reopen", "t-a"]);
    assert_eq!(reopened[0]["dependents"].as_array().map(Vec::len), Some(2));
}

#[test]
fn show_leaves_out_edges_to_issues_not_in_the_file() {
    let env = TestEnv::with_backlog(&format!(
        "{}\n{}\n",
        line("t-a", ""),
        line(
            "t-b",
            r#","dependencies":[{"issue_id":"t-b","depends_on_id":"t-gone","type":"blocks","created_at":"2026-01-01T00:00:00Z"},{"issue_id":"t-b","depends_on_id":"t-a","type":"related","created_at":"2026-01-01T00:00:00Z"}]"#
        )
    ));
    let b = env.json(&["show", "t-b"]);
    let deps: Vec<&str> = b[0]["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .map(|d| d["id"].as_str().expect("every linked issue has an id"))
        .collect();
    assert_eq!(deps, vec!["t-a"]);
    assert!(b[0]["dependencies"][0]["created_at"].is_string());
    // The edge stays in the file, and doctor names it.
    assert!(env.backlog().contains("t-gone"));
    let doctor = env.json(&["doctor"]);
    assert_eq!(doctor["problems"][0]["kind"], "dangling-dependency");
}

#[test]
fn ids_resolve_by_unique_suffix_and_refuse_ambiguity() {
    let env = TestEnv::with_backlog(&format!("{}\n{}\n", line("t-3wq", ""), line("t-3wx", "")));
    assert_eq!(env.json(&["show", "3wq"])[0]["id"], "t-3wq");
    let err = env.fails(&["show", "3w"]);
    assert!(
        err.contains("ambiguous") && err.contains("t-3wq") && err.contains("t-3wx"),
        "{err}"
    );
}

#[test]
fn dep_add_refuses_self_edges_and_cycles_naming_them() {
    let env = TestEnv::with_backlog(&format!(
        "{}\n{}\n",
        line("t-a", ""),
        line("t-b", &blocks("t-b", "t-a"))
    ));
    assert!(env.fails(&["dep", "add", "t-a", "t-a"]).contains("itself"));
    let err = env.fails(&["dep", "add", "t-a", "t-b"]);
    assert!(
        err.contains("cycle") && err.contains("t-a") && err.contains("t-b"),
        "{err}"
    );
    let before = env.backlog();
    env.json(&["dep", "remove", "t-b", "t-a"]);
    assert_ne!(before, env.backlog());
    assert_eq!(env.json(&["ready"]).as_array().map(Vec::len), Some(2));
}

#[test]
fn stats_json_has_flat_and_summary_keys() {
    let env = TestEnv::with_backlog(&format!(
        "{}\n{}\n",
        line("t-a", ""),
        line("t-b", &blocks("t-b", "t-a"))
    ));
    let v = env.json(&["stats"]);
    assert_eq!(v["total_issues"], 2);
    assert_eq!(v["summary"]["ready_issues"], 1);
    assert_eq!(v["summary"]["blocked_issues"], 1);
}

#[test]
fn comments_get_the_next_integer_id_in_classic_files() {
    let env = TestEnv::with_backlog(&format!(
        "{}\n",
        line(
            "t-a",
            r#","comments":[{"id":7,"issue_id":"t-a","author":"x","text":"hi","created_at":"2026-01-01T00:00:00Z"}]"#
        )
    ));
    let c = env.json(&["comment", "t-a", "second"]);
    assert_eq!(c["id"], "8");
    let list = env.json(&["comments", "t-a"]);
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    assert!(
        env.backlog().contains(r#""id":8,"#),
        "classic files keep integer ids on disk"
    );
}

#[test]
fn bad_lines_fail_reads_with_path_and_line_and_writes_leave_the_file_alone() {
    let text = format!(
        "{}\n{{\"id\":\"t-b\",\"title\":\n{}\n",
        line("t-a", ""),
        line("t-c", "")
    );
    let env = TestEnv::with_backlog(&text);
    let err = env.fails(&["ready"]);
    assert!(err.contains("issues.jsonl:2:"), "{err}");
    let err = env.fails(&["update", "t-a", "--title", "new"]);
    assert!(
        err.contains("issues.jsonl:2:") && err.contains("refusing to write"),
        "{err}"
    );
    assert_eq!(env.backlog(), text, "file must be byte-identical");
    let doc = env.run(&["doctor", "--json"]);
    assert!(!doc.status.success());
    let v: Value = serde_json::from_slice(&doc.stdout).expect("json");
    assert_eq!(v["problems"][0]["line"], 2);
}

#[test]
fn conflict_markers_get_instructions() {
    let text = format!(
        "<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> theirs\n",
        line("t-a", ""),
        line("t-b", "")
    );
    let env = TestEnv::with_backlog(&text);
    let err = env.fails(&["list"]);
    assert!(
        err.contains("conflict markers") && err.contains("issues.jsonl:1:"),
        "{err}"
    );
    assert_eq!(env.backlog(), text);
}

#[test]
fn invalid_utf8_and_a_directory_are_clear_errors() {
    let env = TestEnv::with_backlog("");
    std::fs::write(
        env.issues_path(),
        b"{\"id\":\"t-a\",\"title\":\"\xff\xfe\"}\n",
    )
    .expect("write");
    let err = env.fails(&["ready"]);
    assert!(err.contains("issues.jsonl:1:"), "{err}");
    std::fs::remove_file(env.issues_path()).expect("rm");
    std::fs::create_dir(env.issues_path()).expect("mkdir");
    let err = env.fails(&["ready"]);
    assert!(err.contains("directory"), "{err}");
    let err = env.fails(&["create", "x"]);
    assert!(err.contains("directory"), "{err}");
}

#[test]
fn duplicate_ids_warn_on_read_and_refuse_targeted_writes() {
    let text = format!(
        "{}\n{}\n{}\n",
        line("t-a", ""),
        line("t-b", ""),
        line("t-a", r#","notes":"second""#)
    );
    let env = TestEnv::with_backlog(&text);
    let out = env.run(&["show", "t-a", "--json"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":3:") && err.contains('1'),
        "warning names both lines: {err}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["notes"], "second", "the last occurrence is in effect");
    let err = env.fails(&["update", "t-a", "--title", "x"]);
    assert!(err.contains("lines 1 and 3"), "{err}");
    env.json(&["update", "t-b", "--title", "renamed"]);
    let after = env.backlog();
    let lines: Vec<&str> = after.lines().collect();
    let orig: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], orig[0]);
    assert_eq!(lines[2], orig[2]);
    assert_ne!(lines[1], orig[1]);
}

#[test]
fn export_and_import_round_trip_between_shapes() {
    let env = TestEnv::with_backlog(&format!(
        "{}\n{}\n",
        line("t-a", ""),
        line("t-b", &blocks("t-b", "t-a"))
    ));
    let exported = env.ok(&["export"]);
    assert!(
        exported
            .lines()
            .all(|l| l.starts_with(r#"{"_type":"issue","#)),
        "{exported}"
    );
    assert!(exported.contains(r#""dependent_count":1"#));
    // Import into an empty backlog reproduces the classic lines exactly.
    let other = TestEnv::with_backlog("");
    std::fs::write(other.root().join("in.jsonl"), &exported).expect("write");
    let summary = other.json(&["import", "in.jsonl"]);
    assert_eq!(summary["created"], 2);
    assert_eq!(other.backlog(), env.backlog());
    let again = other.json(&["import", "in.jsonl"]);
    assert_eq!(again["unchanged"], 2);
    // Classic bd's spellings: `-i FILE`, and stdin when no file is named.
    let classic = other.json(&["import", "-i", "in.jsonl"]);
    assert_eq!(classic["unchanged"], 2);
    let third = TestEnv::with_backlog("");
    let out = third
        .cmd()
        .args(["import", "--json"])
        .stdin(std::fs::File::open(other.root().join("in.jsonl")).expect("open"))
        .output()
        .expect("spawn spool");
    assert!(out.status.success(), "{out:?}");
    let from_stdin: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(from_stdin["created"], 2);
    assert_eq!(third.backlog(), env.backlog());
    other.fails(&["import", "in.jsonl", "-i", "in.jsonl"]);
    // A file that is not there, or a directory, is an error, not an empty import.
    let missing = other.fails(&["import", "no-such.jsonl"]);
    assert!(missing.contains("no-such.jsonl"), "{missing}");
    let dir = other.fails(&["import", "."]);
    assert!(dir.contains("is a directory"), "{dir}");
    assert_eq!(other.backlog(), env.backlog());
}

#[test]
fn finds_the_backlog_from_a_linked_worktree() {
    let env = TestEnv::new();
    let root = env.root().join("repo");
    std::fs::create_dir_all(&root).expect("mkdir");
    let git = |args: &[&str], dir: &std::path::Path| {
        let st = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .expect("git");
        assert!(
            st.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"], &root);
    std::fs::create_dir_all(root.join(".beads")).expect("mkdir");
    std::fs::write(
        root.join(".beads/issues.jsonl"),
        format!("{}\n", line("t-a", "")),
    )
    .expect("write");
    git(&["add", "-A"], &root);
    git(&["commit", "-qm", "init"], &root);
    // A worktree whose checkout lacks `.beads` (it was removed on its branch).
    git(&["worktree", "add", "-q", "-b", "wt", "../wt"], &root);
    let wt = env.root().join("wt");
    std::fs::remove_dir_all(wt.join(".beads")).expect("rm");
    let v = env.json(&["-C", wt.to_str().expect("utf8"), "ready"]);
    assert_eq!(ids(&v), vec!["t-a"]);
}

/// Every real fixture: a one-issue edit through the CLI changes only that line.
#[test]
fn fixture_edits_change_exactly_one_line() {
    let dir = fixtures_dir();
    let mut checked = 0;
    for entry in
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("fixtures at {}: {e}", dir.display()))
    {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if !name.ends_with(".jsonl") || name.contains("deletions") {
            continue;
        }
        let original = std::fs::read_to_string(&path).expect("read fixture");
        let env = TestEnv::with_backlog(&original);
        // An open, non-duplicated issue (the first the file lists).
        let target = original
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["status"] == "open" && v.get("_type").is_none_or(|t| t == "issue"))
            .map(|v| v["id"].as_str().unwrap_or("").to_string())
            .find(|id| {
                original.matches(&format!("\"id\":\"{id}\"")).count()
                    + original.matches(&format!("\"id\": \"{id}\"")).count()
                    == 1
            })
            .unwrap_or_else(|| panic!("{name}: no open issue"));
        env.ok(&[
            "update",
            &target,
            "--notes",
            "edited <by> spool & co",
            "--add-label",
            "zz-spool",
        ]);
        let after = env.backlog();
        let (a, b): (Vec<&str>, Vec<&str>) = (original.lines().collect(), after.lines().collect());
        assert_eq!(a.len(), b.len(), "{name}: line count changed");
        let changed: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        assert_eq!(
            changed.len(),
            1,
            "{name}: expected one changed line, got {changed:?}"
        );
        let v: Value = serde_json::from_str(b[changed[0]]).expect("edited line parses");
        assert_eq!(v["notes"], "edited <by> spool & co", "{name}");
        assert!(after.ends_with('\n') == original.ends_with('\n'));
        checked += 1;
    }
    assert!(
        checked >= 10,
        "only {checked} fixtures checked in {}",
        dir.display()
    );
}

#[test]
fn twenty_racing_claims_have_exactly_one_winner() {
    let env = TestEnv::with_backlog(&format!("{}\n", line("t-a", "")));
    let children: Vec<_> = (0..20)
        .map(|n| {
            env.cmd()
                .args(["update", "t-a", "--claim", "--actor", &format!("agent-{n}")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let results: Vec<bool> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait").status.success())
        .collect();
    assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "{results:?}");
    let v = env.json(&["show", "t-a"]);
    assert_eq!(v[0]["status"], "in_progress");
    assert!(v[0]["assignee"]
        .as_str()
        .expect("assignee")
        .starts_with("agent-"));
}

#[test]
fn thirty_concurrent_creates_lose_nothing() {
    let env = TestEnv::with_backlog("");
    let children: Vec<_> = (0..30)
        .map(|n| {
            env.cmd()
                .args(["q", &format!("Concurrent issue {n}")])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut created = Vec::new();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        assert!(out.status.success());
        created.push(
            String::from_utf8(out.stdout)
                .expect("utf8")
                .trim()
                .to_string(),
        );
    }
    let all = env.json(&["list", "--limit", "0"]);
    let mut listed = ids(&all);
    listed.sort();
    created.sort();
    assert_eq!(listed, created);
    assert_eq!(env.backlog().lines().count(), 30);
}

#[test]
fn import_places_new_issues_in_id_order_and_applies_a_repeated_id_as_an_update() {
    let line = |id: &str, title: &str, day: u32| {
        format!(
            r#"{{"id":"{id}","title":"{title}","status":"open","priority":2,"issue_type":"task","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-{day:02}T00:00:00Z"}}"#
        )
    };
    let env = TestEnv::with_backlog(&(line("d-15", "Existing", 1) + "\n"));
    let incoming = [
        line("d-2", "Second", 1),
        line("d-1", "First", 1),
        line("d-2", "Second, newer", 2),
        line("d-0", "Zero", 1),
        line("d-1", "First, older", 1),
    ]
    .join("\n");
    std::fs::write(env.root().join("in.jsonl"), incoming + "\n").expect("write");
    let summary = env.json(&["import", "in.jsonl"]);
    assert_eq!(summary["created"], 3, "{summary}");
    assert_eq!(summary["updated"], 1, "{summary}");
    assert_eq!(summary["skipped_older"], 1, "{summary}");
    let expected = [
        line("d-0", "Zero", 1),
        line("d-1", "First", 1),
        line("d-15", "Existing", 1),
        line("d-2", "Second, newer", 2),
    ]
    .join("\n")
        + "\n";
    assert_eq!(env.backlog(), expected);
}
