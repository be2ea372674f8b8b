//! `spool sync` against a bare remote with several clones in temporary directories.

mod gitrepo;

use std::path::{Path, PathBuf};
use std::process::Output;

use gitrepo::{git, git_output, write};
use serde_json::Value;

const SPOOL: &str = env!("CARGO_BIN_EXE_spool");
const BACKLOG: &str = ".beads/issues.jsonl";
const T0: &str = "2026-01-01T00:00:00Z";

fn issue(id: &str, title: &str) -> String {
    format!(
        r#"{{"id":"{id}","title":"{title}","status":"open","priority":2,"issue_type":"task","created_at":"{T0}","updated_at":"{T0}"}}"#
    )
}

fn spool_output(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(SPOOL)
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("BEADS_DIR")
        .env_remove("SPOOL_NOW")
        .output()
        .expect("run spool")
}

fn spool(dir: &Path, args: &[&str]) -> Output {
    let out = spool_output(dir, args);
    assert!(
        out.status.success(),
        "spool {args:?} in {}: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `spool sync --json` that must succeed; its report.
fn sync(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["sync", "--json"];
    args.extend_from_slice(extra);
    let out = spool(dir, &args);
    let v: Value = serde_json::from_slice(&out.stdout).expect("sync prints JSON");
    assert_eq!(v["ok"], true, "{v}");
    v["report"].clone()
}

/// `spool sync --json` that must fail; its whole document and stderr.
fn sync_fails(dir: &Path, extra: &[&str]) -> (Value, String) {
    let mut args = vec!["sync", "--json"];
    args.extend_from_slice(extra);
    let out = spool_output(dir, &args);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("sync prints JSON");
    assert_eq!(v["ok"], false, "{v}");
    (v, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A bare remote `remote.git` whose `main` holds issues t-a, t-b, t-c and `code.txt`.
fn remote(tmp: &Path) -> PathBuf {
    let remote = tmp.join("remote.git");
    std::fs::create_dir_all(&remote).expect("mkdir");
    git(&remote, &["init", "-q", "--bare", "-b", "main"]);
    let seed = tmp.join("seed");
    std::fs::create_dir_all(&seed).expect("mkdir");
    git(&seed, &["init", "-q", "-b", "main"]);
    let lines: String = ["t-a", "t-b", "t-c"]
        .iter()
        .map(|id| format!("{}\n", issue(id, &format!("Issue {id}"))))
        .collect();
    write(&seed, BACKLOG, &lines);
    write(&seed, ".beads/config.yaml", "issue-prefix: t\n");
    write(&seed, ".gitignore", ".beads/*.lock\n");
    write(&seed, "code.txt", "one\ntwo\nthree\n");
    git(&seed, &["add", "."]);
    git(&seed, &["commit", "-q", "-m", "init"]);
    git(
        &seed,
        &["push", "-q", remote.to_str().expect("utf-8"), "main"],
    );
    remote
}

fn clone(tmp: &Path, remote: &Path, name: &str) -> PathBuf {
    git(tmp, &["clone", "-q", remote.to_str().expect("utf-8"), name]);
    let dir = tmp.join(name);
    git(&dir, &["config", "user.name", name]);
    git(
        &dir,
        &["config", "user.email", &format!("{name}@example.com")],
    );
    dir
}

/// The issue `id` as the backlog text `text` has it.
fn issue_in(text: &str, id: &str) -> Value {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in backlog:\n{text}"))
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).expect("read file")
}

fn remote_backlog(remote: &Path, branch: &str) -> String {
    git(remote, &["show", &format!("{branch}:{BACKLOG}")])
}

fn head(dir: &Path) -> String {
    git(dir, &["rev-parse", "HEAD"]).trim().to_string()
}

fn status(dir: &Path) -> String {
    git(dir, &["status", "--porcelain=v1", "--untracked-files=all"])
}

fn commit_file(dir: &Path, rel: &str, text: &str, msg: &str) {
    write(dir, rel, text);
    git(dir, &["add", rel]);
    git(dir, &["commit", "-q", "-m", msg]);
}

#[test]
fn edits_of_different_fields_on_three_clones_all_survive_a_sync_round() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let remote = remote(tmp.path());
    let a = clone(tmp.path(), &remote, "a");
    let b = clone(tmp.path(), &remote, "b");
    let c = clone(tmp.path(), &remote, "c");
    spool(&a, &["update", "t-b", "--title", "Renamed on a"]);
    spool(&b, &["label", "add", "t-b", "from-b"]);
    spool(&c, &["comment", "t-b", "a note from c"]);

    let ra = sync(&a, &[]);
    assert!(ra["committed"].is_string(), "{ra}");
    assert_eq!(ra["pushed"], ra["committed"], "{ra}");
    let rb = sync(&b, &[]);
    assert_eq!(rb["merge"], "merged", "{rb}");
    assert_eq!(rb["backlog"]["merged"], true, "{rb}");
    let rc = sync(&c, &[]);
    assert_eq!(rc["merge"], "merged", "{rc}");
    // A second round brings everyone to the remote's state.
    for dir in [&a, &b] {
        let r = sync(dir, &[]);
        assert_eq!(r["merge"], "fast-forward", "{r}");
        assert!(r["pushed"].is_null(), "nothing new to push: {r}");
    }
    let on_remote = remote_backlog(&remote, "main");
    for text in [
        on_remote.clone(),
        read(&a, BACKLOG),
        read(&b, BACKLOG),
        read(&c, BACKLOG),
    ] {
        assert_eq!(
            text, on_remote,
            "every clone ends with the remote's backlog"
        );
        let t = issue_in(&text, "t-b");
        assert_eq!(t["title"], "Renamed on a", "{t}");
        assert_eq!(t["labels"], serde_json::json!(["from-b"]), "{t}");
        let comments = t["comments"].as_array().expect("comments");
        assert_eq!(comments.len(), 1, "{t}");
        assert_eq!(comments[0]["text"], "a note from c", "{t}");
    }
    for dir in [&a, &b, &c] {
        assert_eq!(status(dir), "", "sync leaves no uncommitted state");
    }
}

/// An upload-pack wrapper that, on its first run only, lets clone `pusher` push to the
/// remote right after the fetch is served: the sync's first push is then rejected.
fn race_on_first_fetch(tmp: &Path, fetcher: &Path, pusher: &Path) -> PathBuf {
    let marker = tmp.join("raced");
    let script = tmp.join("upload-pack-racing");
    let text = format!(
        "#!/bin/sh\ngit upload-pack \"$@\"\nst=$?\nif [ ! -e '{m}' ]; then\n  touch '{m}'\n  (unset GIT_DIR; cd '{p}' && git push -q origin main) </dev/null >/dev/null 2>&1\nfi\nexit $st\n",
        m = marker.display(),
        p = pusher.display()
    );
    std::fs::write(&script, text).expect("write script");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    git(
        fetcher,
        &[
            "config",
            "remote.origin.uploadpack",
            script.to_str().expect("utf-8"),
        ],
    );
    marker
}

#[test]
fn a_rejected_push_is_retried_and_succeeds() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let remote = remote(tmp.path());
    let a = clone(tmp.path(), &remote, "a");
    let b = clone(tmp.path(), &remote, "b");
    // b has a commit ready; it reaches the remote between a's fetch and a's push.
    spool(&b, &["update", "t-c", "--priority", "0"]);
    git(&b, &["commit", "-q", "-am", "b: raise t-c"]);
    let marker = race_on_first_fetch(tmp.path(), &a, &b);
    spool(&a, &["update", "t-a", "--title", "Renamed on a"]);

    // Through the library, as the daemon calls it.
    let ws = spool::workspace::Workspace::discover(&a, None).expect("workspace");
    let opts = spool::sync::SyncOptions {
        remote: None,
        branch: None,
        max_attempts: 3,
        signature: gitrepo::sig(),
    };
    let report = spool::sync::sync_backlog(&ws, &opts).expect("sync succeeds");
    assert!(marker.exists(), "the race was staged");
    assert_eq!(report.attempts, 2, "{report:?}");
    assert!(report.pushed.is_some(), "{report:?}");
    let on_remote = remote_backlog(&remote, "main");
    assert_eq!(issue_in(&on_remote, "t-a")["title"], "Renamed on a");
    assert_eq!(issue_in(&on_remote, "t-c")["priority"], 0);
    assert_eq!(read(&a, BACKLOG), on_remote);
}

#[test]
fn a_push_still_rejected_after_the_last_attempt_is_a_push_rejected_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let remote = remote(tmp.path());
    let a = clone(tmp.path(), &remote, "a");
    // Pushes go to a copy of the remote that is always ahead of what a fetches.
    let ahead = tmp.path().join("ahead.git");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            remote.to_str().expect("utf-8"),
            "ahead.git",
        ],
    );
    let b = clone(tmp.path(), &ahead, "b");
    commit_file(&b, "code.txt", "moved on\n", "b: ahead");
    git(&b, &["push", "-q", "origin", "main"]);
    git(
        &a,
        &[
            "config",
            "remote.origin.pushurl",
            ahead.to_str().expect("utf-8"),
        ],
    );
    spool(&a, &["update", "t-a", "--title", "Renamed on a"]);
    let (v, stderr) = sync_fails(&a, &["--max-attempts", "2"]);
    assert_eq!(v["error"]["kind"], "push-rejected", "{v}");
    assert_eq!(v["report"]["attempts"], 2, "{v}");
    assert!(stderr.contains("rejected 2 times"), "{stderr}");
    assert!(stderr.contains("committed locally"), "{stderr}");
    assert_eq!(issue_in(&read(&a, BACKLOG), "t-a")["title"], "Renamed on a");
}

#[test]
fn uncommitted_changes_to_other_files_are_left_as_they_were() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let remote = remote(tmp.path());
    let a = clone(tmp.path(), &remote, "a");
    let b = clone(tmp.path(), &remote, "b");
    // The upstream changes the backlog and a file a does not touch.
    commit_file(&b, "docs.txt", "from b\n", "b: docs");
    spool(&b, &["update", "t-a", "--title", "From b"]);
    sync(&b, &[]);
    // a has its own backlog edit, a staged change, an unstaged change, an untracked file.
    spool(&a, &["label", "add", "t-a", "mine"]);
    write(&a, ".gitignore", ".beads/*.lock\nstaged\n");
    git(&a, &["add", ".gitignore"]);
    write(&a, "code.txt", "one\ntwo\nthree\nlocal, unstaged\n");
    write(&a, "scratch/notes.md", "untracked\n");

    let r = sync(&a, &[]);
    assert_eq!(r["merge"], "merged", "{r}");
    assert_eq!(
        read(&a, "docs.txt"),
        "from b\n",
        "the upstream's file arrived"
    );
    assert_eq!(read(&a, "code.txt"), "one\ntwo\nthree\nlocal, unstaged\n");
    assert_eq!(read(&a, "scratch/notes.md"), "untracked\n");
    assert_eq!(
        status(&a),
        "M  .gitignore\n M code.txt\n?? scratch/notes.md\n",
        "staged stays staged, unstaged stays unstaged"
    );
    let t = issue_in(&read(&a, BACKLOG), "t-a");
    assert_eq!(t["title"], "From b");
    assert_eq!(t["labels"], serde_json::json!(["mine"]));
    assert!(!a.join(".git/MERGE_HEAD").exists());
}

#[test]
fn a_local_change_the_merge_would_overwrite_stops_sync_with_nothing_changed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let remote = remote(tmp.path());
    let a = clone(tmp.path(), &remote, "a");
    let b = clone(tmp.path(), &remote, "b");
    commit_file(&b, "code.txt", "one\nTWO\nthree\n", "b: code");
    git(&b, &["push", "-q", "origin", "main"]);
    // a diverged (a committed backlog change) and has code.txt modified, uncommitted.
    spool(&a, &["update", "t-a", "--title", "On a"]);
    git(&a, &["commit", "-q", "-am", "a: backlog"]);
    write(&a, "code.txt", "one\ntwo\nthree\nmine\n");
    let before = (head(&a), status(&a), read(&a, BACKLOG));

    let (v, stderr) = sync_fails(&a, &[]);
    assert_eq!(v["error"]["kind"], "local-changes", "{v}");
    assert!(stderr.contains("code.txt"), "the file is named: {stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!((head(&a), status(&a), read(&a, BACKLOG)), before);
    assert_eq!(read(&a, "code.txt"), "one\ntwo\nthree\nmine\n");
    assert!(!a.join(".git/MERGE_HEAD").exists());
    assert!(
        git_output(&a, &["stash", "list"]).stdout.is_empty(),
        "nothing stashed"
    );

    // Committed by its owner, the change merges like any other.
    commit_file(&a, "other.txt", "x\n", "a: other");
    git(&a, &["checkout", "-q", "--", "code.txt"]);
    let r = sync(&a, &[]);
    assert_eq!(r["merge"], "merged", "{r}");
    assert_eq!(read(&a, "code.txt"), "one\nTWO\nthree\n");
}

#[test]
fn conflicting_commits_to_other_files_stop_sync_with_nothing_changed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let remote = remote(tmp.path());
    let a = clone(tmp.path(), &remote, "a");
    let b = clone(tmp.path(), &remote, "b");
    commit_file(&b, "code.txt", "one\nB\nthree\n", "b: code");
    git(&b, &["push", "-q", "origin", "main"]);
    commit_file(&a, "code.txt", "one\nA\nthree\n", "a: code");
    let before = (head(&a), status(&a));
    let (v, stderr) = sync_fails(&a, &[]);
    assert_eq!(v["error"]["kind"], "merge-conflict", "{v}");
    assert!(stderr.contains("code.txt"), "{stderr}");
    assert_eq!((head(&a), status(&a)), before);
    assert_eq!(read(&a, "code.txt"), "one\nA\nthree\n");
    assert!(!a.join(".git/MERGE_HEAD").exists());
}

#[test]
fn sync_works_from_a_linked_worktree() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let remote = remote(tmp.path());
    let a = clone(tmp.path(), &remote, "a");
    let b = clone(tmp.path(), &remote, "b");
    let wt = tmp.path().join("a-wt");
    // A worktree on its own branch that tracks origin/main.
    git(
        &a,
        &[
            "worktree",
            "add",
            "-q",
            "--track",
            "-b",
            "side",
            wt.to_str().expect("utf-8"),
            "origin/main",
        ],
    );
    spool(&b, &["update", "t-c", "--title", "From b"]);
    sync(&b, &[]);
    spool(&wt, &["label", "add", "t-c", "from-wt"]);
    let r = sync(&wt, &[]);
    assert_eq!(r["local_branch"], "side", "{r}");
    assert_eq!(r["branch"], "main", "{r}");
    assert_eq!(r["merge"], "merged", "{r}");
    let on_remote = remote_backlog(&remote, "main");
    let t = issue_in(&on_remote, "t-c");
    assert_eq!(t["title"], "From b");
    assert_eq!(t["labels"], serde_json::json!(["from-wt"]));
    assert_eq!(read(&wt, BACKLOG), on_remote);
    assert_eq!(status(&wt), "");
}

#[test]
fn sync_works_in_a_bare_repository_with_worktrees() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let remote = remote(tmp.path());
    let b = clone(tmp.path(), &remote, "b");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            remote.to_str().expect("utf-8"),
            "proj.git",
        ],
    );
    let bare = tmp.path().join("proj.git");
    git(&bare, &["config", "user.name", "bare"]);
    git(&bare, &["config", "user.email", "bare@example.com"]);
    let wt = tmp.path().join("proj-main");
    git(
        &bare,
        &["worktree", "add", "-q", wt.to_str().expect("utf-8"), "main"],
    );

    spool(&b, &["update", "t-a", "--title", "From b"]);
    sync(&b, &[]);
    spool(&wt, &["label", "add", "t-a", "from-bare"]);
    let r = sync(&wt, &[]);
    assert_eq!(r["remote"], "origin", "{r}");
    assert_eq!(r["merge"], "merged", "{r}");
    let on_remote = remote_backlog(&remote, "main");
    let t = issue_in(&on_remote, "t-a");
    assert_eq!(t["title"], "From b");
    assert_eq!(t["labels"], serde_json::json!(["from-bare"]));
    assert_eq!(read(&wt, BACKLOG), on_remote);
    // spool's state lives in the bare repository, shared by its worktrees.
    assert!(bare.join("spool").is_dir());
}

#[test]
fn dedicated_branch_mode_round_trip_keeps_the_code_branch_clean() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let remote = tmp.path().join("remote.git");
    std::fs::create_dir_all(&remote).expect("mkdir");
    git(&remote, &["init", "-q", "--bare", "-b", "main"]);
    let seed = tmp.path().join("seed");
    std::fs::create_dir_all(&seed).expect("mkdir");
    git(&seed, &["init", "-q", "-b", "main"]);
    commit_file(&seed, "code.txt", "code\n", "code only");
    git(
        &seed,
        &["push", "-q", remote.to_str().expect("utf-8"), "main"],
    );
    let a = clone(tmp.path(), &remote, "a");
    let b = clone(tmp.path(), &remote, "b");
    let code_tip = head(&a);

    // a switches to branch mode: an empty backlog on spool/backlog, a view in .beads/.
    let out = spool(&a, &["sync", "--json", "--mode", "branch"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["branch_setup"]["setup"], "started", "{v}");
    assert_eq!(v["branch_setup"]["view"], "linked", "{v}");
    let view = a.join(BACKLOG);
    assert!(std::fs::symlink_metadata(&view)
        .expect("view")
        .file_type()
        .is_symlink());
    spool(&a, &["create", "Planned on a", "--json"]);
    let r = sync(&a, &[]);
    assert_eq!(r["mode"], "branch", "{r}");
    assert_eq!(r["branch"], "spool/backlog", "{r}");
    assert!(r["pushed"].is_string(), "{r}");
    let on_remote = remote_backlog(&remote, "spool/backlog");
    assert!(on_remote.contains("Planned on a"), "{on_remote}");
    assert_eq!(read(&a, BACKLOG), on_remote, "the view shows the backlog");
    // The code branch saw none of it.
    assert_eq!(head(&a), code_tip);
    assert_eq!(git(&remote, &["rev-parse", "main"]).trim(), code_tip);
    assert_eq!(status(&a), "", "the view is not shown as untracked");

    // b joins from the remote's branch, edits, syncs; a receives the edit.
    let out = spool(&b, &["sync", "--json", "--mode", "branch"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["branch_setup"]["setup"], "from-remote", "{v}");
    let listed: Value =
        serde_json::from_slice(&spool(&b, &["list", "--json"]).stdout).expect("json");
    let id = listed[0]["id"].as_str().expect("id").to_string();
    assert_eq!(listed[0]["title"], "Planned on a");
    spool(&b, &["label", "add", &id, "from-b"]);
    sync(&b, &[]);
    let r = sync(&a, &[]);
    assert_eq!(r["merge"], "fast-forward", "{r}");
    let t = issue_in(&read(&a, BACKLOG), &id);
    assert_eq!(t["labels"], serde_json::json!(["from-b"]));
    assert_eq!(head(&a), code_tip);
    assert_eq!(head(&b), code_tip);
    // The hidden worktree is clean (its lock file ignored), so git can remove it.
    let hidden = PathBuf::from(git(&a, &["rev-parse", "--git-common-dir"]).trim());
    let hidden = a.join(hidden).join("spool/backlog-worktree");
    assert_eq!(status(&hidden), "");
}

#[test]
fn an_unreachable_remote_is_a_clear_error_and_nothing_is_lost() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let remote = remote(tmp.path());
    let a = clone(tmp.path(), &remote, "a");
    let missing = tmp.path().join("no-such-remote.git");
    git(
        &a,
        &[
            "remote",
            "set-url",
            "origin",
            missing.to_str().expect("utf-8"),
        ],
    );
    spool(&a, &["update", "t-a", "--title", "Offline edit"]);
    write(&a, "code.txt", "work in progress\n");
    let (v, stderr) = sync_fails(&a, &[]);
    assert_eq!(v["error"]["kind"], "unreachable", "{v}");
    assert!(stderr.contains("remote origin is unreachable"), "{stderr}");
    assert!(v["report"]["committed"].is_string(), "{v}");
    assert_eq!(issue_in(&read(&a, BACKLOG), "t-a")["title"], "Offline edit");
    assert_eq!(read(&a, "code.txt"), "work in progress\n");
    assert_eq!(status(&a), " M code.txt\n");

    // Once the remote is back, the same command delivers the edit.
    git(
        &a,
        &[
            "remote",
            "set-url",
            "origin",
            remote.to_str().expect("utf-8"),
        ],
    );
    let r = sync(&a, &[]);
    assert!(r["pushed"].is_string(), "{r}");
    assert_eq!(
        issue_in(&remote_backlog(&remote, "main"), "t-a")["title"],
        "Offline edit"
    );
}

#[test]
fn the_same_field_edited_on_two_clones_at_the_same_time_is_decided_and_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let remote = remote(tmp.path());
    let a = clone(tmp.path(), &remote, "a");
    let b = clone(tmp.path(), &remote, "b");
    // Equal `updated_at` on both sides: no time orders them, the fallback rule decides.
    for (dir, title) in [(&a, "Title from a"), (&b, "Title from b")] {
        let out = std::process::Command::new(SPOOL)
            .args(["update", "t-b", "--title", title])
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("SPOOL_NOW", "2026-02-01T00:00:00Z")
            .output()
            .expect("run spool");
        assert!(out.status.success(), "{out:?}");
    }
    sync(&a, &[]);
    let r = sync(&b, &[]);
    assert_eq!(r["merge"], "merged", "{r}");
    let conflicts = r["backlog"]["conflicts"].as_array().expect("conflicts");
    assert_eq!(conflicts.len(), 1, "{r}");
    assert_eq!(conflicts[0]["id"], "t-b", "{r}");
    assert_eq!(conflicts[0]["field"], "title", "{r}");
    let on_remote = remote_backlog(&remote, "main");
    // The documented fallback: the greater JSON text wins, whichever side pushed first.
    assert_eq!(issue_in(&on_remote, "t-b")["title"], "Title from b");
    assert_eq!(read(&b, BACKLOG), on_remote);
}
