//! Windowed writes (the write index, `src/write_index.rs`) end to end: on every fixture
//! and on a synthetic backlog, `update` / `close` through the index leave the
//! file byte for byte as the whole-file path (`SPOOL_NO_CACHE=1`) does, print the same,
//! and keep the index current for the next write.

mod common;

use std::process::Output;

use common::{fixtures_dir, TestEnv};
use serde_json::Value;

fn index_file(env: &TestEnv) -> std::path::PathBuf {
    env.root().join(".beads/.spool/write-index.bin")
}

fn run(env: &TestEnv, args: &[&str], cached: bool) -> Output {
    let mut cmd = env.cmd();
    cmd.args(args);
    if !cached {
        cmd.env("SPOOL_NO_CACHE", "1");
    }
    cmd.output().expect("spawn spool")
}

/// Runs `args` on a cached and an uncached copy; asserts the same exit status, output
/// and file, and returns the cached run's output.
fn run_both(cached: &TestEnv, plain: &TestEnv, args: &[&str], step: &str) -> Output {
    let a = run(cached, args, true);
    let b = run(plain, args, false);
    assert_eq!(a.status.code(), b.status.code(), "{step}: exit status");
    assert_eq!(
        mask_uuids(&String::from_utf8_lossy(&a.stdout)),
        mask_uuids(&String::from_utf8_lossy(&b.stdout)),
        "{step}: stdout"
    );
    let root = |env: &TestEnv| env.root().display().to_string();
    assert_eq!(
        String::from_utf8_lossy(&a.stderr).replace(&root(cached), "<root>"),
        String::from_utf8_lossy(&b.stderr).replace(&root(plain), "<root>"),
        "{step}: stderr"
    );
    assert!(
        mask_uuids(&cached.backlog()) == mask_uuids(&plain.backlog()),
        "{step}: the files differ"
    );
    a
}

/// `text` with every UUID replaced by `<uuid>`: new bd v1 comment ids are UUIDv7s, whose
/// random bits differ from run to run.
fn mask_uuids(text: &str) -> String {
    let shape = |w: &[u8]| {
        w.len() == 36
            && w.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes.len() - i >= 36 && shape(&bytes[i..i + 36]) {
            out.push_str("<uuid>");
            i += 36;
        } else {
            let c = text[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Ids of live, open issues spread over the file: first, middle, last.
fn targets(text: &str) -> Vec<String> {
    let open: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| matches!(v.get("status").and_then(Value::as_str), Some("open") | None))
        .filter_map(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    let mut picked: Vec<String> = [0, open.len() / 2, open.len().saturating_sub(1)]
        .iter()
        .filter_map(|&i| open.get(i).cloned())
        .collect();
    picked.dedup();
    picked
}

/// Runs the same edits on a cached and an uncached copy of `text`, comparing output and
/// file after each; returns how many edits succeeded and how many of those left an index
/// behind.
fn compare(text: &str, what: &str) -> (usize, usize) {
    let cached = TestEnv::with_backlog(text);
    let plain = TestEnv::with_backlog(text);
    // The cold `ready` builds the index the first write uses.
    let a = run(&cached, &["ready", "--json"], true);
    let b = run(&plain, &["ready", "--json"], false);
    assert_eq!(a.stdout, b.stdout, "{what}: ready");
    let (mut succeeded, mut indexed) = (0, 0);
    let creates: [&[&str]; 3] = [
        &["q", "Quick new issue"],
        &[
            "create",
            "A new \"issue\" é",
            "--priority",
            "1",
            "--labels",
            "a,b",
        ],
        &["create", "Zzz last", "--id", "zzzz-last"],
    ];
    let mut edits: Vec<Vec<String>> = creates
        .iter()
        .map(|a| a.iter().map(|s| s.to_string()).collect())
        .collect();
    for id in targets(text) {
        for args in [
            &["update", id.as_str(), "--priority", "1"][..],
            &["update", id.as_str(), "--claim"],
            &[
                "update",
                id.as_str(),
                "--title",
                "Retitled é \"q\" <b>",
                "--add-label",
                "perf",
            ],
            &[
                "update",
                id.as_str(),
                "--append-notes",
                "more\nlines\ttabbed",
            ],
            &["update", id.as_str(), "--priority", "0", "--json"],
            &["close", id.as_str()],
            &["close", id.as_str(), "--json", "--reason", "json"],
            &["close", id.as_str(), "--force", "--reason", "done"],
            &["close", id.as_str(), "--force"],
            &["reopen", id.as_str()],
            &["reopen", id.as_str(), "--json"],
            &["label", "add", id.as_str(), "x-lab"],
            &["label", "remove", id.as_str(), "x-lab"],
            &["note", id.as_str(), "a note\nover lines"],
            &["close", id.as_str(), "--force"],
            &["reopen", id.as_str(), "--json"],
            &["close", id.as_str(), "--force"],
            &["reopen", id.as_str(), "--reason", "needs more"],
            &["comments", "add", id.as_str(), "a comment"],
            &["comment", id.as_str(), "another one", "--json"],
        ] {
            edits.push(args.iter().map(|s| s.to_string()).collect());
        }
        // Partial ids: a unique substring resolves as over the whole file, an ambiguous
        // or unknown one fails the same way.
        let tail = &id[id.len().saturating_sub(4)..];
        for args in [
            vec!["update", tail, "--priority", "3"],
            vec!["label", "add", tail, "by-tail"],
            vec!["update", "zz-no-such", "--priority", "3"],
            vec!["create", "A child", "--parent", &id],
            vec!["create", "A json child", "--parent", &id, "--json"],
            vec![
                "create",
                "Blocked by it",
                "--deps",
                &format!("blocks:{id}"),
                "-t",
                "bug",
            ],
            vec![
                "create",
                "Related, json",
                "--deps",
                &format!("related:{id}"),
                "--json",
            ],
            vec!["q", "Quick child", "--parent", &id],
        ] {
            edits.push(args.iter().map(|s| s.to_string()).collect());
        }
    }
    edits.push(vec!["create".into(), "Plain json".into(), "--json".into()]);
    // Edges: added through the window (a blocking one needs the lines its target
    // reaches), refused, then seen from the target's side.
    if let [a, .., b] = targets(text).as_slice() {
        for args in [
            vec!["dep", "add", b, a],
            vec!["dep", "add", a, b],
            vec!["dep", "add", b, b],
            vec!["dep", "add", b, a, "--type", "related"],
            vec!["update", a, "--priority", "1", "--json"],
            vec!["close", a, "--json"],
            vec!["dep", "remove", b, a],
            vec!["dep", "remove", b, a],
            vec!["dep", "add", b, a, "--type", "related"],
            vec!["reopen", a, "--json"],
        ] {
            edits.push(args.iter().map(|s| s.to_string()).collect());
        }
    }
    edits.push(vec!["q".into(), "After the edits".into()]);
    for args in &edits {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let args = args.as_slice();
        {
            let a = run_both(&cached, &plain, args, &format!("{what}: {args:?}"));
            if a.status.success() {
                succeeded += 1;
                indexed += usize::from(index_file(&cached).exists());
            }
        }
    }
    (succeeded, indexed)
}

#[test]
fn every_fixture_is_written_as_the_whole_file_path_writes_it() {
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("fixture readable");
        compare(&text, &path.display().to_string());
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} fixtures found");
}

#[test]
fn a_synthetic_backlog_is_written_through_the_index() {
    let maps = spool::synth::generate(&spool::synth::SynthSpec {
        issues: 3000,
        seed: 7,
        prefix: "syn".into(),
    });
    let mut text = String::new();
    for m in maps {
        text.push_str(&serde_json::to_string(&m).expect("serialises"));
        text.push('\n');
    }
    let (succeeded, indexed) = compare(&text, "synthetic");
    assert!(succeeded >= 12, "only {succeeded} edits succeeded");
    assert_eq!(indexed, succeeded, "writes that kept the index current");
}

#[test]
fn close_guards_through_the_index_answer_as_the_whole_file_does() {
    let line = |id: &str, status: &str, extra: &str| {
        format!(
            "{{\"id\":\"{id}\",\"title\":\"{id}\",\"status\":\"{status}\",\"priority\":2,\"issue_type\":\"task\",\"created_at\":\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-01-01T00:00:00Z\"{extra}}}\n"
        )
    };
    let dep = |on: &str, ty: &str, meta: &str| {
        format!(",\"dependencies\":[{{\"depends_on_id\":\"{on}\",\"type\":\"{ty}\"{meta}}}]")
    };
    let epic = |id: &str| {
        format!("{{\"id\":\"{id}\",\"title\":\"{id}\",\"status\":\"open\",\"priority\":2,\"issue_type\":\"epic\"}}\n")
    };
    let any = ",\"metadata\":\"{\\\"gate\\\":\\\"any-children\\\"}\"";
    let mut text = String::new();
    text += &line("g-blocker", "open", "");
    text += &line("g-blocked", "open", &dep("g-blocker", "blocks", ""));
    text += &line("g-freed", "open", &dep("g-done", "blocks", ""));
    text += &line("g-done", "closed", "");
    text += &line("g-dangling", "open", &dep("g-nowhere", "blocks", ""));
    text += &line(
        "g-on-tomb",
        "open",
        &dep("g-tomb", "conditional-blocks", ""),
    );
    text += &line("g-tomb", "tombstone", "");
    text += &line("g-pinned", "pinned", "");
    text += &epic("g-epic");
    text += &line("g-child", "open", &dep("g-epic", "parent-child", ""));
    text += &epic("g-epic2");
    text += &line("g-child2", "closed", &dep("g-epic2", "parent-child", ""));
    text += &epic("g-spawner");
    text += &line("g-kid1", "closed", &dep("g-spawner", "parent-child", ""));
    text += &line("g-kid2", "open", &dep("g-spawner", "parent-child", ""));
    text += &line("g-waits-all", "open", &dep("g-spawner", "waits-for", ""));
    text += &line("g-waits-any", "open", &dep("g-spawner", "waits-for", any));
    text += &line("g-dup", "open", "");
    text += &line("g-on-dup", "open", &dep("g-dup", "blocks", ""));
    text += &line("g-dup", "closed", "");
    let ids = [
        "g-blocked",
        "g-freed",
        "g-dangling",
        "g-on-tomb",
        "g-pinned",
        "g-epic",
        "g-epic2",
        "g-waits-all",
        "g-waits-any",
        "g-on-dup",
        "g-blocker",
    ];
    let (mut refused, mut closed) = (0, 0);
    for id in ids {
        let cached = TestEnv::with_backlog(&text);
        let plain = TestEnv::with_backlog(&text);
        let _ = run(&cached, &["ready"], true);
        assert!(index_file(&cached).exists());
        let a = run_both(&cached, &plain, &["close", id], &format!("close {id}"));
        if a.status.success() {
            closed += 1;
        } else {
            refused += 1;
        }
    }
    // Blocked, pinned, an epic with an open child, an all-children gate: refused.
    assert_eq!(refused, 4, "refusals");
    assert_eq!(closed, ids.len() - 4);
    // The closes that succeed take the window, except next to a duplicated id (whose
    // lines only the whole file can judge); refusals are left to the whole-file path.
    let now = spool_core::beads::Timestamp::parse("2026-02-01T00:00:00Z").expect("time");
    let stamp = spool_core::beads::ops::Stamp::new(&now, "tester");
    for id in ids {
        let env = TestEnv::with_backlog(&text);
        let _ = run(&env, &["ready"], true);
        let ws = spool::workspace::Workspace::discover(env.root(), None).expect("workspace");
        let got =
            spool::cli::edit::close_windowed(&ws, id, false, None, stamp, false).expect("no error");
        let windowed = !matches!(
            id,
            "g-blocked" | "g-pinned" | "g-epic" | "g-waits-all" | "g-on-dup"
        );
        assert_eq!(got.is_some(), windowed, "close {id} through the window");
    }
}

#[test]
fn an_edge_added_through_the_window_is_seen_from_its_distant_target() {
    let mut text = String::new();
    for k in 0..300 {
        text += &format!(
            "{{\"id\":\"t-{k:03}\",\"title\":\"t {k}\",\"status\":\"open\",\"priority\":2,\"issue_type\":\"task\",\"created_at\":\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-01-01T00:00:00Z\"}}\n"
        );
    }
    let cached = TestEnv::with_backlog(&text);
    let plain = TestEnv::with_backlog(&text);
    let _ = run(&cached, &["ready"], true);
    for args in [
        &["dep", "add", "t-000", "t-299"][..],
        &["update", "t-299", "--priority", "1", "--json"],
        &["close", "t-299", "--json"],
        &["dep", "add", "t-298", "t-000", "--type", "parent-child"],
        &["close", "t-000"],
    ] {
        let a = run_both(&cached, &plain, args, &format!("{args:?}"));
        assert!(index_file(&cached).exists());
        if args[0] == "update" {
            let shown: Value = serde_json::from_slice(&a.stdout).expect("json");
            assert_eq!(shown[0]["dependents"][0]["id"], "t-000", "{args:?}");
        }
    }
}

#[test]
fn a_file_with_an_unreadable_line_gets_no_index_and_is_not_written() {
    let text = "{\"id\":\"x-1\",\"title\":\"t\",\"status\":\"open\",\"priority\":2,\"issue_type\":\"task\",\"created_at\":\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-01-01T00:00:00Z\"}\n{not json\n";
    let env = TestEnv::with_backlog(text);
    let _ = run(&env, &["ready", "--json"], true);
    assert!(
        !index_file(&env).exists(),
        "an unreadable file got an index"
    );
    let out = run(&env, &["update", "x-1", "--priority", "1"], true);
    assert!(!out.status.success());
    assert_eq!(env.backlog(), text);
}

#[test]
fn a_write_to_an_indexed_file_goes_through_the_window() {
    let maps = spool::synth::generate(&spool::synth::SynthSpec {
        issues: 2000,
        seed: 3,
        prefix: "win".into(),
    });
    let mut text = String::new();
    for m in maps {
        text.push_str(&serde_json::to_string(&m).expect("serialises"));
        text.push('\n');
    }
    let env = TestEnv::with_backlog(&text);
    let id = targets(&text)[1].clone();
    let ws = spool::workspace::Workspace::discover(env.root(), None).expect("workspace");
    let plan = |index: &spool::write_index::WriteIndex| {
        index.resolve(&id).map(|anchor| spool::backlog::Plan {
            anchor,
            edits: vec![id.clone()],
            to_end: false,
        })
    };
    let set = |tx: &mut spool::backlog::Tx| tx.edit(&id, |ed| ed.set("priority", 0)).map(|_| ());
    let edit = |tx: &mut spool::backlog::Tx, _: &spool::backlog::Peek| set(tx);
    // No index yet: the caller must take the whole-file path.
    assert!(spool::backlog::modify_windowed(&ws, plan, edit)
        .expect("no error")
        .is_none());
    let _ = run(&env, &["ready", "--json"], true);
    assert!(index_file(&env).exists());
    let before = env.backlog();
    assert!(
        spool::backlog::modify_windowed(&ws, plan, edit)
            .expect("no error")
            .is_some(),
        "the indexed write fell back to the whole file"
    );
    let after = env.backlog();
    assert_ne!(before, after);
    // The same edit through the whole file gives the same bytes.
    let plain = TestEnv::with_backlog(&before);
    let pws = spool::workspace::Workspace::discover(plain.root(), None).expect("workspace");
    spool::backlog::modify(&pws, set).expect("whole-file write");
    assert_eq!(plain.backlog(), after);
    // The refreshed index describes the new file: the next write is windowed again.
    assert!(spool::backlog::modify_windowed(&ws, plan, |tx, _| {
        tx.edit(&id, |ed| ed.set("priority", 3)).map(|_| ())
    })
    .expect("no error")
    .is_some());
}

#[test]
fn escaping_decided_by_a_distant_line_is_written_as_the_whole_file_path_writes_it() {
    let maps = spool::synth::generate(&spool::synth::SynthSpec {
        issues: 3000,
        seed: 11,
        prefix: "esc".into(),
    });
    let mut lines: Vec<String> = maps
        .iter()
        .map(|m| serde_json::to_string(m).expect("serialises"))
        .collect();
    // No synthetic line holds non-ASCII text; one early line shows an `ensure_ascii`
    // writer, which decides how far-away edits escape `é`.
    lines[100] = lines[100].replacen("\"title\":\"", "\"title\":\"caf\\u00e9 ", 1);
    let open_far_away = |l: &&String| {
        let v: Value = serde_json::from_str(l).expect("json");
        v.get("status").and_then(Value::as_str) == Some("open")
    };
    let target: Value = serde_json::from_str(
        lines[900..1100]
            .iter()
            .find(open_far_away)
            .expect("an open issue 800+ lines away"),
    )
    .expect("json");
    let id = target["id"].as_str().expect("id").to_string();
    let text = lines.join("\n") + "\n";
    let cached = TestEnv::with_backlog(&text);
    let plain = TestEnv::with_backlog(&text);
    let _ = run(&cached, &["ready", "--json"], true);
    assert!(index_file(&cached).exists(), "no write index to go through");
    for args in [
        &["update", id.as_str(), "--priority", "0"][..],
        &["update", id.as_str(), "--title", "Café"],
        &[
            "close",
            id.as_str(),
            "--force",
            "--reason",
            "fixed in café/2",
        ],
    ] {
        let a = run(&cached, args, true);
        let b = run(&plain, args, false);
        assert!(a.status.success() && b.status.success(), "{args:?}");
        assert!(
            cached.backlog() == plain.backlog(),
            "{args:?}: the files differ"
        );
    }
    assert!(
        cached.backlog().contains("\"title\":\"Caf\\u00e9\""),
        "the edit did not follow the distant line's escaping"
    );
}

#[test]
fn a_write_reports_its_issues_as_show_shows_them() {
    // Comments, free text and edges both ways: everything a detail view reads.
    let text = concat!(
        r#"{"id":"w-1","title":"First","description":"Long text","status":"open","priority":2,"issue_type":"task","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","comments":[{"id":1,"issue_id":"w-1","author":"a","text":"a comment with text","created_at":"2026-01-01T00:00:00Z"}]}"#,
        "\n",
        r#"{"id":"w-2","title":"Second","notes":"some notes","status":"open","priority":2,"issue_type":"task","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","dependencies":[{"issue_id":"w-2","depends_on_id":"w-1","type":"related","created_at":"2026-01-01T00:00:00Z"}],"comments":[{"id":2,"issue_id":"w-2","author":"b","text":"second comment","created_at":"2026-01-01T00:00:00Z"}]}"#,
        "\n",
    );
    for cached in [true, false] {
        let env = TestEnv::with_backlog(text);
        run(&env, &["ready"], cached);
        for (args, ids) in [
            (
                &["update", "w-1", "--priority", "1", "--json"][..],
                &["w-1"][..],
            ),
            // A no-op edit: the line is not rewritten, and is still shown in full.
            (&["update", "w-1", "--priority", "1", "--json"], &["w-1"]),
            (
                &["update", "w-1", "w-2", "--priority", "3", "--json"],
                &["w-1", "w-2"],
            ),
            (&["close", "w-2", "--json"], &["w-2"]),
            (&["reopen", "w-2", "--json"], &["w-2"]),
        ] {
            let out = run(&env, args, cached);
            assert!(out.status.success(), "{args:?}: {out:?}");
            let written: Value = serde_json::from_slice(&out.stdout).expect("json");
            let mut show = vec!["show"];
            show.extend_from_slice(ids);
            show.push("--json");
            let shown: Value =
                serde_json::from_slice(&run(&env, &show, cached).stdout).expect("show json");
            assert_eq!(written, shown, "{args:?} (cached: {cached})");
            assert!(
                written.to_string().contains("comment with text")
                    || written.to_string().contains("second comment"),
                "{args:?}: comment texts are shown"
            );
        }
    }
}
