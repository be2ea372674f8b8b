//! One linked worktree per issue run: `<common-dir>/spool/worktrees/<id>` on branch
//! `spool/<id>`, so an agent never works in the user's own checkout.
//!
//! gix 0.90 can open linked worktrees but has no porcelain to create, repair or remove
//! them (no `worktree add/remove/prune`), so those three go through the `git` binary
//! ([`super::cmd::Git`]); reads (branch tips, ancestry) use gix.

use std::path::{Path, PathBuf};

use gix::ObjectId;

use super::cmd::Git;
use super::{GitError, Result};

/// Longest issue id accepted for a branch or directory name.
const MAX_ID_LEN: usize = 100;

/// Checks that an issue id (untrusted text from the backlog) can safely name a branch and
/// a directory: only `[A-Za-z0-9._-]`, no `..`, no leading `-` or `.`, no trailing `.` or
/// `.lock` (git refuses those ref names), at most 100 characters.
pub fn validate_issue_id(id: &str) -> Result<()> {
    let reason = if id.is_empty() {
        Some("it is empty")
    } else if id.len() > MAX_ID_LEN {
        Some("it is longer than 100 characters")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("only letters, digits, `.`, `_` and `-` are allowed")
    } else if id.contains("..") {
        Some("it contains `..`")
    } else if id.starts_with('-') {
        Some("it starts with `-`")
    } else if id.starts_with('.') {
        Some("it starts with `.`")
    } else if id.ends_with('.') || id.ends_with(".lock") {
        Some("it ends with `.` or `.lock`")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(GitError::InvalidIssueId {
            id: id.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The branch a run of `issue_id` works on: `spool/<id>`.
pub fn run_branch_name(issue_id: &str) -> Result<String> {
    validate_issue_id(issue_id)?;
    Ok(format!("spool/{issue_id}"))
}

/// Where the run worktree of `issue_id` lives: under git's common dir, so every
/// worktree of the clone agrees, and outside the user's work tree.
pub fn run_worktree_path(repo_dir: &Path, issue_id: &str) -> Result<PathBuf> {
    validate_issue_id(issue_id)?;
    Ok(super::spool_dir(repo_dir)?.join("worktrees").join(issue_id))
}

/// Creates (or reuses) the worktree for a run of `issue_id` and returns its path.
///
/// - A healthy existing worktree on `spool/<id>` is reused as is, so a run resumed after a
///   crash continues where its agent left off.
/// - An existing `spool/<id>` branch is checked out (earlier attempts' commits are kept);
///   otherwise the branch starts at the current HEAD.
/// - A registration whose directory vanished is pruned first.
/// - Anything else at the path is refused rather than deleted.
pub fn create_run_worktree(repo_dir: &Path, issue_id: &str) -> Result<PathBuf> {
    let path = run_worktree_path(repo_dir, issue_id)?;
    let branch = run_branch_name(issue_id)?;
    let repo = super::open(repo_dir)?;
    let git = Git::new(&git_cwd(&repo));
    if path.exists() {
        if is_healthy(&path, &branch) {
            return Ok(path);
        }
        return Err(GitError::Worktree {
            path,
            reason: format!("exists but is not a worktree on branch {branch}; remove it by hand"),
        });
    }
    // A worktree whose directory was deleted is still registered (and its branch counts
    // as checked out) until pruned.
    git.run(["worktree", "prune"])?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| GitError::io(format!("creating {}", parent.display()), e))?;
    }
    let path_arg = path.as_os_str().to_os_string();
    let full = format!("refs/heads/{branch}");
    let exists = repo
        .try_find_reference(full.as_str())
        .map_err(|e| GitError::gix(format!("reading {full}"), e))?
        .is_some();
    if exists {
        git.run([
            "worktree".into(),
            "add".into(),
            "--quiet".into(),
            path_arg,
            branch.clone().into(),
        ])?;
    } else {
        git.run([
            "worktree".into(),
            "add".into(),
            "--quiet".into(),
            "-b".into(),
            std::ffi::OsString::from(&branch),
            path_arg,
            "HEAD".into(),
        ])?;
    }
    Ok(path)
}

/// Removes the worktree of `issue_id` but keeps its branch (the run's commits live there).
///
/// Uncommitted files in the run worktree are discarded: what a run keeps is what it
/// committed. Removing a worktree that is already gone is not an error.
pub fn remove_run_worktree(repo_dir: &Path, issue_id: &str) -> Result<()> {
    let path = run_worktree_path(repo_dir, issue_id)?;
    let branch = run_branch_name(issue_id)?;
    let repo = super::open(repo_dir)?;
    let git = Git::new(&git_cwd(&repo));
    if path.exists() {
        if !is_healthy(&path, &branch) {
            return Err(GitError::Worktree {
                path,
                reason: format!("is not a worktree on branch {branch}; not removing it"),
            });
        }
        git.run([
            "worktree".into(),
            "remove".into(),
            "--force".into(),
            path.as_os_str().to_os_string(),
        ])?;
    }
    git.run(["worktree", "prune"])?;
    Ok(())
}

/// Whether branch `spool/<id>` holds a commit that `base` (the commit the run started
/// from) does not: the run produced work. A missing branch has no commits.
pub fn worktree_has_new_commits(repo_dir: &Path, issue_id: &str, base: ObjectId) -> Result<bool> {
    let branch = run_branch_name(issue_id)?;
    let repo = super::open(repo_dir)?;
    let Some(tip) = branch_tip(&repo, &format!("refs/heads/{branch}"))? else {
        return Ok(false);
    };
    if tip == base {
        return Ok(false);
    }
    let mut walk = repo
        .rev_walk([tip])
        .with_hidden([base])
        .all()
        .map_err(|e| GitError::gix(format!("walking {branch}"), e))?;
    match walk.next() {
        Some(Ok(_)) => Ok(true),
        Some(Err(e)) => Err(GitError::gix(format!("walking {branch}"), e)),
        None => Ok(false),
    }
}

/// The commit HEAD points at in the repository containing `repo_dir` (`None` on an
/// unborn branch): the base a run's new commits are measured against.
pub fn head_commit(repo_dir: &Path) -> Result<Option<ObjectId>> {
    let repo = super::open(repo_dir)?;
    let mut head = repo.head().map_err(|e| GitError::gix("reading HEAD", e))?;
    match head.try_peel_to_id() {
        Ok(id) => Ok(id.map(|id| id.detach())),
        Err(e) => Err(GitError::gix("reading HEAD", e)),
    }
}

fn branch_tip(repo: &gix::Repository, full: &str) -> Result<Option<ObjectId>> {
    let found = repo
        .try_find_reference(full)
        .map_err(|e| GitError::gix(format!("reading {full}"), e))?;
    match found {
        Some(mut r) => r
            .peel_to_id()
            .map(|id| Some(id.detach()))
            .map_err(|e| GitError::gix(format!("reading {full}"), e)),
        None => Ok(None),
    }
}

/// Where to run `git worktree`: the main work tree, or the git dir of a bare clone.
fn git_cwd(repo: &gix::Repository) -> PathBuf {
    repo.workdir()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo.git_dir().to_path_buf())
}

/// A usable run worktree: gix opens it as a linked worktree whose HEAD is `branch`.
fn is_healthy(path: &Path, branch: &str) -> bool {
    if !path.join(".git").is_file() {
        return false;
    }
    let Ok(repo) = gix::open(path) else {
        return false;
    };
    let on_branch = repo
        .head_name()
        .ok()
        .flatten()
        .is_some_and(|n| n.as_bstr() == format!("refs/heads/{branch}").as_str());
    on_branch && repo.workdir().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_ids_that_could_escape_or_confuse_git_are_rejected() {
        for ok in ["bd-3wq", "spool-a1.2", "X_9", "a"] {
            assert!(validate_issue_id(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(101);
        for bad in [
            "",
            "..",
            "a..b",
            "-rf",
            ".hidden",
            "a/b",
            "a b",
            "a\nb",
            "ref.lock",
            "trailing.",
            "ü",
            "a~1",
            "a:b",
            long.as_str(),
        ] {
            let err = validate_issue_id(bad).expect_err(bad);
            assert!(
                matches!(err, GitError::InvalidIssueId { .. }),
                "{bad}: {err}"
            );
        }
    }
}
