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

mod worktrees {
    use super::*;
    use spool::git::{
        create_run_worktree, head_commit, remove_run_worktree, run_worktree_path,
        worktree_has_new_commits,
    };

    fn repo_with_commit(dir: &Path) {
        init_repo(dir);
        write(dir, BACKLOG, "{\"id\":\"a\"}\n");
        git(dir, &["add", "."]);
        git(dir, &["commit", "-q", "-m", "init"]);
    }

    #[test]
    fn create_reuse_commit_remove_and_recreate_on_the_kept_branch() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        repo_with_commit(dir);
        let base = head_commit(dir).expect("head").expect("a commit");

        let wt = create_run_worktree(dir, "bd-3wq").expect("create");
        assert_eq!(wt, dir.join(".git/spool/worktrees/bd-3wq"));
        assert_eq!(run_worktree_path(dir, "bd-3wq").expect("path"), wt);
        assert_eq!(
            git(&wt, &["symbolic-ref", "HEAD"]),
            "refs/heads/spool/bd-3wq\n"
        );
        assert_eq!(git(&wt, &["rev-parse", "HEAD"]).trim(), base.to_string());
        assert!(!worktree_has_new_commits(dir, "bd-3wq", base).expect("check"));
        // The user's checkout is untouched.
        assert_eq!(git(dir, &["symbolic-ref", "HEAD"]), "refs/heads/main\n");
        assert_eq!(git(dir, &["status", "--porcelain"]), "");

        // Reused as is: an agent's files survive a second create.
        write(&wt, "work.txt", "in progress\n");
        assert_eq!(create_run_worktree(dir, "bd-3wq").expect("reuse"), wt);
        assert_eq!(
            std::fs::read_to_string(wt.join("work.txt")).expect("read"),
            "in progress\n"
        );

        git(&wt, &["add", "work.txt"]);
        git(&wt, &["commit", "-q", "-m", "agent work"]);
        assert!(worktree_has_new_commits(dir, "bd-3wq", base).expect("check"));

        write(&wt, "scratch.txt", "uncommitted\n");
        remove_run_worktree(dir, "bd-3wq").expect("remove");
        assert!(!wt.exists());
        assert!(!git(dir, &["worktree", "list"]).contains("bd-3wq"));
        assert_eq!(
            git(dir, &["log", "-1", "--format=%s", "spool/bd-3wq"]),
            "agent work\n"
        );
        assert!(worktree_has_new_commits(dir, "bd-3wq", base).expect("check"));
        remove_run_worktree(dir, "bd-3wq").expect("removing twice is fine");

        // Recreated on the kept branch, with the earlier attempt's commit.
        let again = create_run_worktree(dir, "bd-3wq").expect("recreate");
        assert_eq!(again, wt);
        assert_eq!(git(&wt, &["log", "-1", "--format=%s"]), "agent work\n");
        assert!(wt.join("work.txt").exists());
        assert!(!wt.join("scratch.txt").exists());
    }

    #[test]
    fn a_vanished_worktree_directory_is_pruned_and_recreated() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        repo_with_commit(dir);
        let wt = create_run_worktree(dir, "bd-1").expect("create");
        std::fs::remove_dir_all(&wt).expect("rm");
        let again = create_run_worktree(dir, "bd-1").expect("recreate");
        assert_eq!(again, wt);
        assert_eq!(
            git(&wt, &["symbolic-ref", "HEAD"]),
            "refs/heads/spool/bd-1\n"
        );
        assert_eq!(
            git(dir, &["worktree", "list", "--porcelain"])
                .matches("spool/worktrees/bd-1")
                .count(),
            1
        );
    }

    #[test]
    fn something_else_at_the_worktree_path_is_refused_not_deleted() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        repo_with_commit(dir);
        let path = run_worktree_path(dir, "bd-2").expect("path");
        write(&path, "precious.txt", "keep\n");
        let err = create_run_worktree(dir, "bd-2").expect_err("refused");
        assert!(matches!(err, GitError::Worktree { .. }), "{err}");
        let err = remove_run_worktree(dir, "bd-2").expect_err("refused");
        assert!(matches!(err, GitError::Worktree { .. }), "{err}");
        assert_eq!(
            std::fs::read_to_string(path.join("precious.txt")).expect("read"),
            "keep\n"
        );
    }

    #[test]
    fn unsafe_issue_ids_create_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        repo_with_commit(dir);
        for id in ["../escape", "-b", "a/b", "x..y"] {
            let err = create_run_worktree(dir, id).expect_err(id);
            assert!(
                matches!(err, GitError::InvalidIssueId { .. }),
                "{id}: {err}"
            );
        }
        assert_eq!(
            git(dir, &["branch", "--format=%(refname)"]),
            "refs/heads/main\n"
        );
        assert!(!dir.join(".git/spool").exists());
    }

    #[test]
    fn a_run_worktree_can_be_made_from_a_linked_worktree_and_lands_in_the_common_dir() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let main = tmp.path().join("main");
        std::fs::create_dir(&main).expect("mkdir");
        repo_with_commit(&main);
        let other = tmp.path().join("other");
        git(
            &main,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "other",
                other.to_str().expect("utf-8"),
            ],
        );
        let wt = create_run_worktree(&other, "bd-9").expect("create");
        assert_eq!(
            std::fs::canonicalize(&wt).expect("canonical"),
            std::fs::canonicalize(main.join(".git/spool/worktrees/bd-9")).expect("canonical")
        );
    }
}

mod remotes {
    use super::*;
    use spool::git::{fetch, push, PushOutcome};

    /// A bare `origin` and two clones of it, `a` and `b`.
    fn origin_and_clones(
        root: &Path,
    ) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
        let origin = root.join("origin.git");
        std::fs::create_dir(&origin).expect("mkdir");
        git(&origin, &["init", "-q", "--bare", "-b", "main"]);
        let a = root.join("a");
        let b = root.join("b");
        for clone in [&a, &b] {
            std::fs::create_dir(clone).expect("mkdir");
            init_repo(clone);
            git(
                clone,
                &["remote", "add", "origin", origin.to_str().expect("utf-8")],
            );
        }
        write(&a, BACKLOG, "{\"id\":\"a\"}\n");
        git(&a, &["add", "."]);
        git(&a, &["commit", "-q", "-m", "init"]);
        (origin, a, b)
    }

    #[test]
    fn push_reports_ok_then_rejected_when_the_remote_moved_and_fetch_brings_the_new_tip() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (origin, a, b) = origin_and_clones(tmp.path());
        assert_eq!(
            push(&a, "origin", "refs/heads/main:refs/heads/main").expect("push"),
            PushOutcome::Ok
        );
        assert_eq!(git(&origin, &["log", "--format=%s", "main"]), "init\n");
        assert_eq!(
            push(&a, "origin", "main").expect("push again"),
            PushOutcome::Ok
        );

        // b catches up, commits, pushes first.
        let tip = fetch(&b, "origin", "main").expect("fetch");
        assert_eq!(tip.to_string(), git(&a, &["rev-parse", "HEAD"]).trim());
        git(&b, &["reset", "-q", "--hard", "origin/main"]);
        write(&b, BACKLOG, "{\"id\":\"b\"}\n");
        commit_backlog(&b, "spool: from b").expect("commit");
        assert_eq!(push(&b, "origin", "main").expect("push"), PushOutcome::Ok);

        // a's diverging commit is rejected, not forced, and origin keeps b's commit.
        write(&a, BACKLOG, "{\"id\":\"a2\"}\n");
        commit_backlog(&a, "spool: from a").expect("commit");
        let outcome = push(&a, "origin", "main").expect("push");
        assert!(
            matches!(&outcome, PushOutcome::Rejected { reason } if reason.contains("refs/heads/main")),
            "{outcome:?}"
        );
        assert_eq!(
            git(&origin, &["log", "-1", "--format=%s", "main"]),
            "spool: from b\n"
        );
        let new_tip = fetch(&a, "origin", "main").expect("fetch");
        assert_eq!(new_tip.to_string(), git(&b, &["rev-parse", "HEAD"]).trim());
        assert_eq!(
            git(&a, &["rev-parse", "origin/main"]).trim(),
            new_tip.to_string()
        );
    }

    #[test]
    fn a_remote_hook_refusal_and_a_missing_remote_are_errors_not_rejections() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (origin, a, _b) = origin_and_clones(tmp.path());
        let hook = origin.join("hooks/pre-receive");
        std::fs::write(&hook, "#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
            .expect("write hook");
        make_executable(&hook);
        let outcome = push(&a, "origin", "main").expect("push");
        assert!(
            matches!(&outcome, PushOutcome::Error { message } if message.contains("pre-receive hook declined")),
            "{outcome:?}"
        );
        let missing = tmp.path().join("nowhere.git");
        let outcome = push(&a, missing.to_str().expect("utf-8"), "main").expect("push");
        assert!(matches!(outcome, PushOutcome::Error { .. }), "{outcome:?}");
        let err = fetch(&a, "origin", "no-such-branch").expect_err("missing branch");
        assert!(err.to_string().contains("no-such-branch"), "{err}");
        let err = push(&a, "--mirror", "main").expect_err("option-like remote refused");
        assert!(
            matches!(
                err,
                spool::git::GitError::BadArgument { what: "remote", .. }
            ),
            "{err}"
        );
    }

    #[test]
    fn the_local_pre_push_hook_does_not_run() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (origin, a, _b) = origin_and_clones(tmp.path());
        let hook = a.join(".git/hooks/pre-push");
        std::fs::write(&hook, "#!/bin/sh\nexit 1\n").expect("write hook");
        make_executable(&hook);
        assert_eq!(push(&a, "origin", "main").expect("push"), PushOutcome::Ok);
        assert_eq!(git(&origin, &["log", "--format=%s", "main"]), "init\n");
    }
}

fn make_executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn a_held_index_lock_makes_the_commit_fail_clearly_and_change_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init_repo(dir);
    write(dir, BACKLOG, "{\"id\":\"a\"}\n");
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "init"]);
    let head = git(dir, &["rev-parse", "HEAD"]);
    // As `git commit` holds it while its editor is open.
    std::fs::write(dir.join(".git/index.lock"), "").expect("lock");
    write(dir, BACKLOG, "{\"id\":\"b\"}\n");
    let err = commit_backlog(dir, "spool: x").expect_err("locked");
    assert!(matches!(err, GitError::IndexLocked { .. }), "{err}");
    assert_eq!(git(dir, &["rev-parse", "HEAD"]), head);
    std::fs::remove_file(dir.join(".git/index.lock")).expect("unlock");
    assert!(matches!(
        commit_backlog(dir, "spool: y").expect("commit"),
        CommitOutcome::Committed { .. }
    ));
}

#[test]
fn head_blob_reads_what_is_committed_not_the_work_tree() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init_repo(dir);
    assert_eq!(
        spool::git::head_blob(dir, Path::new(BACKLOG)).expect("unborn"),
        None
    );
    write(dir, BACKLOG, "{\"id\":\"a\"}\n");
    commit_backlog(dir, "spool: first").expect("commit");
    write(dir, BACKLOG, "{\"id\":\"changed\"}\n");
    assert_eq!(
        spool::git::head_blob(dir, Path::new(BACKLOG)).expect("read"),
        Some(b"{\"id\":\"a\"}\n".to_vec())
    );
    assert_eq!(
        spool::git::head_blob(dir, Path::new("missing.txt")).expect("read"),
        None
    );
}
