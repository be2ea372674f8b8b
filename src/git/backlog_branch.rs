//! The dedicated backlog branch: `.beads/issues.jsonl` on its own branch (`spool/backlog`),
//! checked out in a hidden linked worktree `<common-dir>/spool/backlog-worktree`, so the
//! backlog's commits never land on the code branches.
//!
//! Every spool command finds the backlog there once the worktree exists
//! (`workspace::Workspace::find`), so reads, writes, locks and the daemon's commits all go
//! to that worktree's file. The user's checkout gets a *view*: `.beads/issues.jsonl` as a
//! symlink to the hidden file (always current, nothing to refresh), listed in
//! `<common-dir>/info/exclude` so it never shows as untracked.

use std::path::{Path, PathBuf};

use gix::objs::tree::EntryKind;
use gix::ObjectId;

use super::cmd::Git;
use super::commit::{to_gix_signature, Signature};
use super::{GitError, Result};

/// The branch the backlog lives on in dedicated-branch mode, unless configured otherwise.
pub const DEFAULT_BACKLOG_BRANCH: &str = "spool/backlog";

/// The backlog's path inside a work tree.
pub const BACKLOG_PATH: &str = ".beads/issues.jsonl";

/// The hidden worktree's directory for the repository containing `repo_dir`.
pub fn backlog_worktree_path(repo_dir: &Path) -> Result<PathBuf> {
    Ok(super::spool_dir(repo_dir)?.join("backlog-worktree"))
}

/// How [`ensure_backlog_worktree`] found or made the worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorktreeSetup {
    /// It was there already.
    Existing,
    /// The local branch existed; it was checked out.
    FromLocalBranch,
    /// The branch was created at the remote's tip.
    FromRemote,
    /// A new branch was started with one commit holding the seed backlog.
    Started,
}

/// Makes sure the hidden worktree exists on `branch` and returns its path.
///
/// The branch is, in order: the existing local branch; a new branch at `remote_tip` (the
/// fetched remote branch); a new root commit holding the `seed` files (paths relative
/// to the work tree: the checkout's current backlog and `.beads/config.yaml`, so
/// switching to this mode loses nothing). Anything other
/// than a healthy worktree of `branch` at the path is refused, never deleted.
pub fn ensure_backlog_worktree(
    repo_dir: &Path,
    branch: &str,
    remote_tip: Option<ObjectId>,
    seed: &[(&str, Vec<u8>)],
    signature: &Signature,
) -> Result<(PathBuf, WorktreeSetup)> {
    let path = backlog_worktree_path(repo_dir)?;
    let full = format!("refs/heads/{branch}");
    if path.exists() {
        if is_worktree_on(&path, &full) {
            return Ok((path, WorktreeSetup::Existing));
        }
        return Err(GitError::Worktree {
            path,
            reason: format!("exists but is not a worktree on branch {branch}; remove it by hand"),
        });
    }
    let repo = super::open(repo_dir)?;
    let git = Git::new(&git_cwd(&repo));
    git.run(["worktree", "prune"])?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| GitError::io(format!("creating {}", parent.display()), e))?;
    }
    let exists = repo
        .try_find_reference(full.as_str())
        .map_err(|e| GitError::gix(format!("reading {full}"), e))?
        .is_some();
    let setup = if exists {
        WorktreeSetup::FromLocalBranch
    } else {
        let (start, setup) = match remote_tip {
            Some(tip) => (tip, WorktreeSetup::FromRemote),
            None => (root_commit(&repo, seed, signature)?, WorktreeSetup::Started),
        };
        // The empty old value makes this a create-only update: a branch made meanwhile
        // by someone else is not overwritten.
        git.run(["update-ref", &full, &start.to_string(), ""])?;
        setup
    };
    let path_arg = path.as_os_str().to_os_string();
    git.run([
        "worktree".into(),
        "add".into(),
        "--quiet".into(),
        path_arg,
        std::ffi::OsString::from(branch),
    ])?;
    Ok((path, setup))
}

/// A commit without parents whose tree holds only the `seed` files.
fn root_commit(
    repo: &gix::Repository,
    seed: &[(&str, Vec<u8>)],
    signature: &Signature,
) -> Result<ObjectId> {
    let mut editor = repo
        .empty_tree()
        .edit()
        .map_err(|e| GitError::gix("building the backlog tree", e))?;
    for (path, data) in seed {
        let blob = repo
            .write_blob(data)
            .map_err(|e| GitError::gix(format!("storing {path}"), e))?
            .detach();
        editor
            .upsert(*path, EntryKind::Blob, blob)
            .map_err(|e| GitError::gix("building the backlog tree", e))?;
    }
    let tree = editor
        .write()
        .map_err(|e| GitError::gix("writing the backlog tree", e))?
        .detach();
    let sig = to_gix_signature(signature);
    let mut time_buf = gix::date::parse::TimeBuf::default();
    let sig_ref = sig.to_ref(&mut time_buf);
    let no_parents: [ObjectId; 0] = [];
    Ok(repo
        .new_commit_as(
            sig_ref,
            sig_ref,
            "spool: start the backlog branch",
            tree,
            no_parents,
        )
        .map_err(|e| GitError::gix("writing the backlog branch's first commit", e))?
        .id)
}

/// What [`ensure_view`] found at the checkout's `.beads/issues.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViewState {
    /// The symlink to the hidden worktree's backlog is in place.
    Linked,
    /// A regular file (or something else) is there; it was left alone.
    Blocked,
}

/// Points the checkout's `.beads/issues.jsonl` at the hidden worktree's file (a symlink,
/// created only where nothing is) and keeps it out of `git status` through
/// `<common-dir>/info/exclude`. A regular file is never replaced: it may be tracked on
/// the code branch, or hold someone's edits.
pub fn ensure_view(checkout: &Path, target: &Path) -> Result<ViewState> {
    let view = checkout.join(BACKLOG_PATH);
    match std::fs::symlink_metadata(&view) {
        Ok(m) if m.file_type().is_symlink() => {
            let current = std::fs::read_link(&view)
                .map_err(|e| GitError::io(format!("reading {}", view.display()), e))?;
            if current != target {
                return Ok(ViewState::Blocked);
            }
        }
        Ok(_) => return Ok(ViewState::Blocked),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = view.parent().expect("the view path has a parent");
            std::fs::create_dir_all(dir)
                .map_err(|e| GitError::io(format!("creating {}", dir.display()), e))?;
            symlink(target, &view)?;
        }
        Err(e) => return Err(GitError::io(format!("reading {}", view.display()), e)),
    }
    exclude(checkout, &format!("/{BACKLOG_PATH}"))?;
    Ok(ViewState::Linked)
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, link)
        .map_err(|e| GitError::io(format!("linking {}", link.display()), e))
}

#[cfg(not(unix))]
fn symlink(_target: &Path, link: &Path) -> Result<()> {
    Err(GitError::BadPath {
        path: link.to_path_buf(),
        reason: "the backlog view needs symlinks, which this platform lacks",
    })
}

/// Adds `pattern` to `<common-dir>/info/exclude` unless a line already says it.
fn exclude(checkout: &Path, pattern: &str) -> Result<()> {
    let path = super::common_dir(checkout)?.join("info").join("exclude");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(GitError::io(format!("reading {}", path.display()), e)),
    };
    if text.lines().any(|l| l.trim() == pattern) {
        return Ok(());
    }
    let mut out = text;
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(pattern);
    out.push('\n');
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| GitError::io(format!("creating {}", dir.display()), e))?;
    }
    std::fs::write(&path, out).map_err(|e| GitError::io(format!("writing {}", path.display()), e))
}

/// Where to run `git worktree`: the main work tree, or the git dir of a bare clone.
fn git_cwd(repo: &gix::Repository) -> PathBuf {
    repo.workdir()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo.git_dir().to_path_buf())
}

fn is_worktree_on(path: &Path, full: &str) -> bool {
    if !path.join(".git").is_file() {
        return false;
    }
    let Ok(repo) = gix::open(path) else {
        return false;
    };
    repo.head_name()
        .ok()
        .flatten()
        .is_some_and(|n| n.as_bstr() == full)
}
