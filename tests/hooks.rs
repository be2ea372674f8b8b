//! `spool hooks` against real repositories: hooks installed next to the user's own, run
//! by real `git commit` / `git checkout`, and removed without a trace.

mod gitrepo;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use gitrepo::{git, git_cmd, git_output, init_repo, write};

const SPOOL: &str = env!("CARGO_BIN_EXE_spool");
const BACKLOG: &str = ".beads/issues.jsonl";

fn issue(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","title":"Issue {id}","status":"open","priority":2,"issue_type":"task","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}}"#
    )
}

fn spool(dir: &Path, args: &[&str]) -> Output {
    let out = std::process::Command::new(SPOOL)
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run spool");
    assert!(
        out.status.success(),
        "spool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A repository with one commit holding a valid backlog.
fn repo(dir: &Path) {
    init_repo(dir);
    write(dir, BACKLOG, &format!("{}\n", issue("t-a")));
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "--no-verify", "-m", "init"]);
}

fn hook_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(dir).expect("mkdir hooks");
    std::fs::write(&p, text).expect("write hook");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o111 == 0o111
}

fn head(dir: &Path) -> String {
    git(dir, &["rev-parse", "HEAD"])
}

#[test]
fn installed_next_to_a_user_hook_both_run_and_uninstall_restores_it_byte_for_byte() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    repo(dir);
    let hooks = dir.join(".git/hooks");
    let user_pre_commit = "#!/bin/sh\n# the team's hook\necho ran > user-pre-commit.txt\nexit 0\n";
    let user_post_rewrite = "#!/bin/bash\ncat > user-post-rewrite.txt\n";
    let pre_commit = hook_file(&hooks, "pre-commit", user_pre_commit);
    let post_rewrite = hook_file(&hooks, "post-rewrite", user_post_rewrite);

    let out = spool(dir, &["hooks", "install"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("pre-commit") && text.contains("added"),
        "{text}"
    );
    assert!(
        text.contains("post-merge") && text.contains("created"),
        "{text}"
    );
    let installed = std::fs::read_to_string(&pre_commit).expect("read");
    assert!(
        installed.starts_with("#!/bin/sh\n# >>> spool hook >>>\n"),
        "{installed}"
    );
    assert!(installed.ends_with(&user_pre_commit["#!/bin/sh\n".len()..]));
    assert!(installed.contains(&format!("spool_bin='{SPOOL}'")));
    assert!(is_executable(&pre_commit));

    // A commit of a valid backlog: spool's check passes and the user's hook still runs.
    write(
        dir,
        BACKLOG,
        &format!("{}\n{}\n", issue("t-a"), issue("t-b")),
    );
    git(dir, &["add", BACKLOG]);
    git(dir, &["commit", "-q", "-m", "add t-b"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("user-pre-commit.txt")).expect("user hook ran"),
        "ran\n"
    );

    // post-rewrite: spool nudges the daemon, and the user's hook still gets its stdin.
    let before = head(dir);
    git(dir, &["commit", "-q", "--amend", "-m", "add t-b (amended)"]);
    let rewritten =
        std::fs::read_to_string(dir.join("user-post-rewrite.txt")).expect("user hook ran");
    assert_eq!(
        rewritten,
        format!("{} {}\n", before.trim(), head(dir).trim())
    );
    assert!(dir.join(".git/spool/rescan").exists());

    // post-checkout, created by spool, touches the rescan file again.
    std::fs::remove_file(dir.join(".git/spool/rescan")).expect("rm");
    git(dir, &["checkout", "-q", "-b", "other"]);
    assert!(dir.join(".git/spool/rescan").exists());

    let listed = String::from_utf8_lossy(&spool(dir, &["hooks", "list"]).stdout).into_owned();
    assert!(listed.contains("installed, with other hook"), "{listed}");
    assert!(!listed.contains("outdated"), "{listed}");

    spool(dir, &["hooks", "uninstall"]);
    assert_eq!(
        std::fs::read_to_string(&pre_commit).expect("read"),
        user_pre_commit
    );
    assert_eq!(
        std::fs::read_to_string(&post_rewrite).expect("read"),
        user_post_rewrite
    );
    assert!(is_executable(&pre_commit));
    for created in ["post-merge", "post-checkout"] {
        assert!(!hooks.join(created).exists(), "{created} should be deleted");
    }
}

#[test]
fn install_is_idempotent_and_list_reports_the_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    repo(dir);
    let listed = String::from_utf8_lossy(&spool(dir, &["hooks", "list"]).stdout).into_owned();
    assert_eq!(listed.matches("not installed").count(), 4, "{listed}");

    spool(dir, &["hooks", "install"]);
    let snapshot = |name: &str| std::fs::read(dir.join(".git/hooks").join(name)).expect("read");
    let first: Vec<_> = ["pre-commit", "post-merge", "post-checkout", "post-rewrite"]
        .iter()
        .map(|n| snapshot(n))
        .collect();
    let out = spool(dir, &["--json", "hooks", "install"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let actions: Vec<_> = json["hooks"]
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["action"].as_str().expect("action").to_string())
        .collect();
    assert_eq!(actions, ["unchanged"; 4]);
    let second: Vec<_> = ["pre-commit", "post-merge", "post-checkout", "post-rewrite"]
        .iter()
        .map(|n| snapshot(n))
        .collect();
    assert_eq!(first, second);
    let listed =
        String::from_utf8_lossy(&spool(dir, &["--json", "hooks", "list"]).stdout).into_owned();
    let json: serde_json::Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(json["merge_driver"]["current"], true, "{json}");
    for r in json["hooks"].as_array().expect("array") {
        assert_eq!(r["state"]["installed"]["current"], true, "{r}");
        assert_eq!(r["state"]["installed"]["shared"], false, "{r}");
    }
}

#[test]
fn core_hooks_path_is_respected_and_the_pre_commit_blocks_a_broken_backlog() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    repo(dir);
    git(dir, &["config", "core.hooksPath", ".githooks"]);
    spool(dir, &["hooks", "install"]);
    assert!(dir.join(".githooks/pre-commit").exists());
    assert!(!dir.join(".git/hooks/pre-commit").exists());

    // A broken line staged: the commit is refused and nothing is committed.
    let before = head(dir);
    write(
        dir,
        BACKLOG,
        &format!("{}\n{{\"id\":\"t-b\",\"title\":\n", issue("t-a")),
    );
    git(dir, &["add", BACKLOG]);
    let out = git_output(dir, &["commit", "-q", "-m", "broken"]);
    assert!(!out.status.success(), "the commit should be blocked");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(":2: error: truncated JSON"), "{stderr}");
    assert!(stderr.contains("has errors"), "{stderr}");
    assert_eq!(head(dir), before);

    // What is checked is the staged copy, not the work tree: fix only the work tree and
    // the commit is still refused; stage the fix and it goes through.
    write(
        dir,
        BACKLOG,
        &format!("{}\n{}\n", issue("t-a"), issue("t-b")),
    );
    assert!(!git_output(dir, &["commit", "-q", "-m", "still broken"])
        .status
        .success());
    git(dir, &["add", BACKLOG]);
    git(dir, &["commit", "-q", "-m", "fixed"]);
    assert_eq!(git(dir, &["log", "-1", "--format=%s"]), "fixed\n");

    // Commits that do not stage the backlog are not checked (and not slowed).
    write(dir, "readme.md", "hi\n");
    git(dir, &["add", "readme.md"]);
    git(dir, &["commit", "-q", "-m", "docs"]);
}

#[test]
fn without_spool_the_pre_commit_warns_and_allows() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    repo(dir);
    let gone = tmp.path().join("no/such/spool");
    spool::git::install_hooks(dir, &gone).expect("install");
    write(dir, BACKLOG, "{\"id\":\n");
    git(dir, &["add", BACKLOG]);
    // A PATH with git but without spool.
    let git_path = which_git();
    let out = git_cmd(dir)
        .env("PATH", git_path.parent().expect("git's directory"))
        .args(["commit", "-q", "-m", "unchecked"])
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("spool: not installed"));
    assert_eq!(git(dir, &["log", "-1", "--format=%s"]), "unchecked\n");
}

fn which_git() -> PathBuf {
    let path = std::env::var_os("PATH").expect("PATH");
    std::env::split_paths(&path)
        .map(|d| d.join("git"))
        .find(|p| p.is_file())
        .expect("git on PATH")
}

#[test]
fn a_hook_in_another_language_is_refused_and_no_hook_is_touched() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    repo(dir);
    let hooks = dir.join(".git/hooks");
    let python = "#!/usr/bin/env python3\nprint('hi')\n";
    let p = hook_file(&hooks, "post-rewrite", python);
    let out = std::process::Command::new(SPOOL)
        .args(["hooks", "install"])
        .current_dir(dir)
        .output()
        .expect("run spool");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("post-rewrite") && stderr.contains("not a shell"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&p).expect("read"), python);
    for name in ["pre-commit", "post-merge", "post-checkout"] {
        assert!(!hooks.join(name).exists(), "{name} must not be written");
    }
}
