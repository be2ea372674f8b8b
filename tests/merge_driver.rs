//! `spool merge` as git's merge driver in real repositories, `spool resolve`, and the
//! driver's installation by `spool hooks install`.

mod gitrepo;

use std::path::Path;
use std::process::Output;

use gitrepo::{git, git_cmd, git_output, init_repo, write};

const SPOOL: &str = env!("CARGO_BIN_EXE_spool");
const BACKLOG: &str = ".beads/issues.jsonl";

fn issue(id: &str, title: &str, priority: u8, updated: &str) -> String {
    format!(
        r#"{{"id":"{id}","title":"{title}","status":"open","priority":{priority},"issue_type":"task","created_at":"2026-01-01T00:00:00Z","updated_at":"{updated}"}}"#
    )
}

fn spool_output(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(SPOOL)
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run spool")
}

fn spool(dir: &Path, args: &[&str]) -> Output {
    let out = spool_output(dir, args);
    assert!(
        out.status.success(),
        "spool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn backlog(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-02T00:00:00Z";
const T2: &str = "2026-01-03T00:00:00Z";

/// A repository on `main` with issues a, b, c committed, and a `feature` branch from it.
fn repo(dir: &Path, install: bool) {
    init_repo(dir);
    write(
        dir,
        BACKLOG,
        &backlog(&[
            issue("t-a", "Alpha", 2, T0),
            issue("t-b", "Beta", 2, T0),
            issue("t-c", "Gamma", 2, T0),
        ]),
    );
    if install {
        spool(dir, &["hooks", "install"]);
    }
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "init"]);
    git(dir, &["branch", "feature"]);
}

fn commit_backlog(dir: &Path, text: &str, msg: &str) {
    write(dir, BACKLOG, text);
    git(dir, &["commit", "-q", "-am", msg]);
}

/// Two branches change different fields of issue t-b (title on feature, priority on
/// main), on neighbouring lines of the same issue.
fn diverge(dir: &Path, feature_updated: &str, main_updated: &str, feature_title: &str) {
    git(dir, &["checkout", "-q", "feature"]);
    commit_backlog(
        dir,
        &backlog(&[
            issue("t-a", "Alpha", 2, T0),
            issue("t-b", feature_title, 2, feature_updated),
            issue("t-c", "Gamma", 2, T0),
        ]),
        "feature: rename t-b",
    );
    git(dir, &["checkout", "-q", "main"]);
    commit_backlog(
        dir,
        &backlog(&[
            issue("t-a", "Alpha", 2, T0),
            issue("t-b", "Beta (main)", 0, main_updated),
            issue("t-c", "Gamma", 2, T0),
        ]),
        "main: raise t-b",
    );
}

#[test]
fn git_merge_with_the_installed_driver_keeps_both_fields_of_one_issue() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    repo(dir, true);
    // main renames too, earlier: feature's later title wins, main's priority stays.
    diverge(dir, T2, T1, "Beta renamed");
    let out = git_output(dir, &["merge", "--no-edit", "feature"]);
    assert!(
        out.status.success(),
        "merge failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = std::fs::read_to_string(dir.join(BACKLOG)).expect("read");
    assert_eq!(
        merged,
        backlog(&[
            issue("t-a", "Alpha", 2, T0),
            issue("t-b", "Beta renamed", 0, T2),
            issue("t-c", "Gamma", 2, T0),
        ])
    );
    // The merge is committed and the work tree is clean.
    assert_eq!(git(dir, &["status", "--porcelain"]), "");
    assert_eq!(git(dir, &["rev-list", "--count", "HEAD"]).trim(), "4");
}

#[test]
fn without_the_driver_the_same_merge_conflicts_line_by_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    repo(dir, false);
    diverge(dir, T2, T1, "Beta renamed");
    let out = git_output(dir, &["merge", "--no-edit", "feature"]);
    assert!(!out.status.success(), "git's line merge should conflict");
    let text = std::fs::read_to_string(dir.join(BACKLOG)).expect("read");
    assert!(text.contains("<<<<<<<"), "{text}");

    // `spool resolve` turns the markers into the merge of both sides.
    let out = spool(dir, &["--json", "resolve"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["hunks"], 1, "{json}");
    assert_eq!(json["written"], true, "{json}");
    assert_eq!(json["clean"], true, "{json}");
    let resolved = std::fs::read_to_string(dir.join(BACKLOG)).expect("read");
    // Two-way (no base section): both edits of t-b are taken as additions; the later
    // updated_at decides each field both sides set.
    assert_eq!(
        resolved,
        backlog(&[
            issue("t-a", "Alpha", 2, T0),
            issue("t-b", "Beta renamed", 2, T2),
            issue("t-c", "Gamma", 2, T0),
        ])
    );
    // Nothing left to do the second time.
    let out = spool(dir, &["--json", "resolve"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["hunks"], 0, "{json}");
    assert_eq!(json["written"], false, "{json}");
}

#[test]
fn resolve_with_a_diff3_base_honours_one_sided_changes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    repo(dir, false);
    git(dir, &["config", "merge.conflictStyle", "diff3"]);
    diverge(dir, T2, T1, "Beta renamed");
    assert!(!git_output(dir, &["merge", "--no-edit", "feature"])
        .status
        .success());
    assert!(std::fs::read_to_string(dir.join(BACKLOG))
        .expect("read")
        .contains("|||||||"));
    spool(dir, &["resolve", BACKLOG]);
    // With the base, main's priority change (feature left it) survives.
    assert_eq!(
        std::fs::read_to_string(dir.join(BACKLOG)).expect("read"),
        backlog(&[
            issue("t-a", "Alpha", 2, T0),
            issue("t-b", "Beta renamed", 0, T2),
            issue("t-c", "Gamma", 2, T0),
        ])
    );
}

#[test]
fn a_real_conflict_fails_the_merge_but_leaves_a_readable_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    repo(dir, true);
    // Both rename t-b at the same updated_at: no rule says which is later.
    diverge(dir, T1, T1, "Beta renamed");
    let out = git_output(dir, &["merge", "--no-edit", "feature"]);
    assert!(!out.status.success(), "the merge should stop");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("conflict: t-b title"), "{said}");
    let text = std::fs::read_to_string(dir.join(BACKLOG)).expect("read");
    assert!(!text.contains("<<<<<<<"), "{text}");
    // The greater JSON text ("Beta renamed" > "Beta (main)") is in the file.
    assert_eq!(
        text,
        backlog(&[
            issue("t-a", "Alpha", 2, T0),
            issue("t-b", "Beta renamed", 0, T1),
            issue("t-c", "Gamma", 2, T0),
        ])
    );
}

#[test]
fn merge_with_an_unreadable_input_names_it_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let ours = dir.join("ours.jsonl");
    std::fs::write(&ours, "{\"id\":\"x\"}\n").expect("write");
    std::fs::write(dir.join("theirs.jsonl"), "{\"id\":\"y\"}\n").expect("write");
    let out = spool_output(
        dir,
        &["merge", "missing.jsonl", "ours.jsonl", "theirs.jsonl"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.jsonl"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&ours).expect("read"),
        "{\"id\":\"x\"}\n"
    );
    // With all three readable (and git's %L %P passed) the result replaces ours.
    std::fs::write(dir.join("base.jsonl"), "").expect("write");
    let out = spool_output(
        dir,
        &[
            "merge",
            "base.jsonl",
            "ours.jsonl",
            "theirs.jsonl",
            "7",
            BACKLOG,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{:?}", out);
    assert_eq!(
        std::fs::read_to_string(&ours).expect("read"),
        "{\"id\":\"x\"}\n{\"id\":\"y\"}\n"
    );
}

#[test]
fn install_registers_the_driver_once_and_uninstall_removes_only_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init_repo(dir);
    write(dir, ".gitattributes", "*.png binary\n");
    spool(dir, &["hooks", "install"]);
    spool(dir, &["hooks", "install"]);
    let attrs = std::fs::read_to_string(dir.join(".gitattributes")).expect("read");
    assert_eq!(attrs, "*.png binary\n.beads/issues.jsonl merge=spool\n");
    let driver = git(dir, &["config", "--get", "merge.spool.driver"]);
    assert!(
        driver.trim().ends_with(" merge %O %A %B"),
        "driver: {driver}"
    );
    let check = git_cmd(dir)
        .args(["check-attr", "merge", "--", BACKLOG])
        .output()
        .expect("check-attr");
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        ".beads/issues.jsonl: merge: spool\n"
    );
    let listed = spool(dir, &["--json", "hooks", "list"]);
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(json["merge_driver"]["current"], true, "{json}");

    spool(dir, &["hooks", "uninstall"]);
    assert_eq!(
        std::fs::read_to_string(dir.join(".gitattributes")).expect("read"),
        "*.png binary\n"
    );
    assert!(!gitrepo::git_ok(
        dir,
        &["config", "--get", "merge.spool.driver"]
    ));
    let listed = spool(dir, &["--json", "hooks", "list"]);
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(json["merge_driver"]["attribute"], false, "{json}");
}
