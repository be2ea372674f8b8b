//! The git module against real repositories made (and checked) with the `git` binary.

mod gitrepo;

use std::path::Path;

use gitrepo::{git, git_ok, init_repo, sig, write};
use spool::git::{commit_paths, CommitOutcome, GitError};

const BACKLOG: &str = ".beads/issues.jsonl";

fn commit_backlog(dir: &Path, msg: &str) -> Result<CommitOutcome, GitError> {
    commit_paths(dir, &[Path::new(BACKLOG)], msg, &sig())
}

#[test]
fn commit_contains_only_the_backlog_and_leaves_the_users_changes_as_they_were() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init_repo(dir);
    write(dir, BACKLOG, "{\"id\":\"a\"}\n");
    write(dir, "staged.txt", "one\n");
    write(dir, "unstaged.txt", "one\n");
    write(dir, "src/deep/file.rs", "fn main() {}\n");
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "init"]);

    // The user's own work in progress, of every kind.
    write(dir, "staged.txt", "two\n");
    git(dir, &["add", "staged.txt"]);
    write(dir, "staged.txt", "three\n"); // and an unstaged change on top of the staged one
    write(dir, "unstaged.txt", "two\n");
    write(dir, "src/deep/new.rs", "// staged new file\n");
    git(dir, &["add", "src/deep/new.rs"]);
    write(dir, "untracked.txt", "mine\n");
    let status_before = git(dir, &["status", "--porcelain"]);
    let cached_before = git(dir, &["diff", "--cached"]);
    let unstaged_before = git(dir, &["diff"]);

    write(dir, BACKLOG, "{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
    let outcome = commit_backlog(dir, "spool: bd-3wq implement ✓ (2/4)").expect("commit");
    let CommitOutcome::Committed {
        commit,
        branch,
        attempts,
    } = outcome
    else {
        panic!("expected a commit, got {outcome:?}");
    };
    assert_eq!(branch, "refs/heads/main");
    assert_eq!(attempts, 1);
    assert_eq!(git(dir, &["rev-parse", "HEAD"]).trim(), commit.to_string());

    // The commit changes exactly the backlog.
    assert_eq!(
        git(dir, &["show", "--name-only", "--format=", "HEAD"]),
        format!("{BACKLOG}\n")
    );
    assert_eq!(
        git(dir, &["show", &format!("HEAD:{BACKLOG}")]),
        "{\"id\":\"a\"}\n{\"id\":\"b\"}\n"
    );
    assert_eq!(
        git(dir, &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%s"]),
        "spool <spool@test>|spool <spool@test>|spool: bd-3wq implement ✓ (2/4)\n"
    );
    // The user's staged, unstaged and untracked changes are exactly as before.
    assert_eq!(git(dir, &["status", "--porcelain"]), status_before);
    assert_eq!(git(dir, &["diff", "--cached"]), cached_before);
    assert_eq!(git(dir, &["diff"]), unstaged_before);
    assert!(!status_before.contains("issues.jsonl"));
    assert_eq!(
        std::fs::read_to_string(dir.join("untracked.txt")).expect("read"),
        "mine\n"
    );
    // git agrees the index is sound (its own consistency check and a real commit).
    git(dir, &["fsck", "--no-progress"]);
    git(dir, &["commit", "-q", "-m", "user commit"]);
    assert_eq!(
        git(dir, &["show", "--name-only", "--format=", "HEAD"]),
        "src/deep/new.rs\nstaged.txt\n"
    );
    assert_eq!(git(dir, &["show", "HEAD:staged.txt"]), "two\n");
}

#[test]
fn a_file_identical_to_head_makes_no_commit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init_repo(dir);
    write(dir, BACKLOG, "{\"id\":\"a\"}\n");
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "init"]);
    let head = git(dir, &["rev-parse", "HEAD"]);
    assert_eq!(
        commit_backlog(dir, "spool: nothing").expect("commit"),
        CommitOutcome::Unchanged
    );
    assert_eq!(git(dir, &["rev-parse", "HEAD"]), head);
}

#[test]
fn an_unborn_branch_gets_its_first_commit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init_repo(dir);
    write(dir, BACKLOG, "{\"id\":\"a\"}\n");
    write(dir, "readme.md", "staged by the user\n");
    git(dir, &["add", "readme.md"]);
    write(dir, "notes.txt", "untracked\n");

    let outcome = commit_backlog(dir, "spool: start").expect("commit");
    assert!(
        matches!(outcome, CommitOutcome::Committed { .. }),
        "{outcome:?}"
    );
    assert_eq!(git(dir, &["log", "--format=%s|%P"]), "spool: start|\n");
    assert_eq!(
        git(dir, &["ls-tree", "-r", "--name-only", "HEAD"]),
        format!("{BACKLOG}\n")
    );
    // The backlog is now tracked and clean; the user's staged file is still staged (as
    // an addition, since it is not in the commit), the untracked file still untracked.
    assert_eq!(
        git(dir, &["status", "--porcelain"]),
        "A  readme.md\n?? notes.txt\n"
    );
}

#[test]
fn a_detached_head_is_refused_and_nothing_changes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init_repo(dir);
    write(dir, BACKLOG, "{\"id\":\"a\"}\n");
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "init"]);
    git(dir, &["checkout", "-q", "--detach"]);
    write(dir, BACKLOG, "{\"id\":\"b\"}\n");
    let err = commit_backlog(dir, "spool: x").expect_err("detached HEAD must be refused");
    assert!(matches!(err, GitError::DetachedHead), "{err}");
    assert!(err.to_string().contains("detached"));
    assert_eq!(git(dir, &["log", "--all", "--format=%s"]), "init\n");
    assert_eq!(
        git(dir, &["status", "--porcelain"]),
        format!(" M {BACKLOG}\n")
    );
}

#[test]
fn a_linked_worktree_commits_to_its_own_branch_and_index() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let main = tmp.path().join("main");
    std::fs::create_dir(&main).expect("mkdir");
    init_repo(&main);
    write(&main, BACKLOG, "{\"id\":\"a\"}\n");
    git(&main, &["add", "."]);
    git(&main, &["commit", "-q", "-m", "init"]);
    let wt = tmp.path().join("wt");
    git(
        &main,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "side",
            wt.to_str().expect("utf-8"),
            "HEAD",
        ],
    );
    write(&main, "main-staged.txt", "x\n");
    git(&main, &["add", "main-staged.txt"]);

    write(&wt, BACKLOG, "{\"id\":\"a\"}\n{\"id\":\"w\"}\n");
    let outcome = commit_paths(
        &wt,
        &[&wt.join(BACKLOG)],
        "spool: from the worktree",
        &sig(),
    )
    .expect("commit");
    assert!(
        matches!(&outcome, CommitOutcome::Committed { branch, .. } if branch == "refs/heads/side")
    );
    assert_eq!(
        git(&wt, &["log", "-1", "--format=%s", "side"]),
        "spool: from the worktree\n"
    );
    assert_eq!(git(&main, &["log", "-1", "--format=%s", "main"]), "init\n");
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert_eq!(
        git(&main, &["status", "--porcelain"]),
        "A  main-staged.txt\n"
    );
}

#[test]
fn a_path_outside_the_work_tree_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init_repo(dir);
    let err = commit_paths(dir, &[Path::new("../elsewhere")], "x", &sig()).expect_err("refused");
    assert!(err.to_string().contains("no `..`"), "{err}");
    assert!(!git_ok(dir, &["rev-parse", "--verify", "-q", "HEAD"]));
}
