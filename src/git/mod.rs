//! Everything that touches `.git`: the only module that does.
//!
//! - [`backlog_branch`]: the dedicated backlog branch in a hidden worktree.
//! - [`commit`]: path-limited commits of the backlog made with gix, which never disturb
//!   the user's index (other than the committed paths' own entries) or work tree.
//! - [`worktree`]: one linked worktree per issue run, for agents to work in.
//! - [`remote`]: fetch and push through the `git` binary (gix cannot push).
//! - [`hooks`]: installing spool's section into the repository's git hooks.
//! - [`log`]: creating a repository and listing its commits.
//! - [`integrate`]: merging a fetched upstream into the branch, in memory first.
//! - [`merge_driver`]: registering `spool merge` as the backlog's git merge driver.
//!
//! gix does local reads and writes; the `git` binary is used only where gix has no
//! implementation: the network (fetch, push) and linked-worktree porcelain. Every such
//! call goes through [`cmd::Git`], which applies the same safeguards to each.
//!
//! All functions are blocking; async callers use `spawn_blocking` (gix is built with
//! `parallel`, so repositories are `Send`).

pub mod backlog_branch;
pub mod cmd;
pub mod commit;
pub mod hooks;
pub mod integrate;
pub mod log;
pub mod merge_driver;
pub mod remote;
pub mod worktree;

use std::path::{Path, PathBuf};

pub use cmd::{Git, GitCommandError};
pub use commit::{blob_at, commit_paths, head_blob, CommitOutcome, Signature};
pub use hooks::{
    hooks_dir, install_hooks, list_hooks, rescan_path, uninstall_hooks, HookReport, HookState,
    HOOK_NAMES,
};
pub use integrate::{integrate, BacklogMerge, Integration, IntegrationKind};
pub use log::{init_repo, log_oneline};
pub use merge_driver::{
    install_merge_driver, merge_driver_state, uninstall_merge_driver, DriverReport,
};
pub use remote::{fetch, push, PushOutcome};
pub use worktree::{
    create_run_worktree, head_commit, remove_run_worktree, run_branch_name, run_worktree_path,
    validate_issue_id, worktree_has_new_commits,
};

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a git operation failed; each variant names what the caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{what}: {source}")]
    Gix {
        what: String,
        #[source]
        source: BoxError,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: a bare repository has no work tree")]
    Bare(PathBuf),
    #[error(
        "HEAD is detached; spool commits only onto a checked-out branch (check out a branch first)"
    )]
    DetachedHead,
    #[error("{path}: {reason}")]
    BadPath { path: PathBuf, reason: &'static str },
    #[error("{path}: {reason}")]
    Hook { path: PathBuf, reason: String },
    #[error("{what} {value:?}: {reason}")]
    BadArgument {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{path}: has unresolved merge conflicts in the index; resolve them first")]
    Conflicted { path: PathBuf },
    #[error(
        "{path}: another git process holds the index lock; try again when it is done: {source}"
    )]
    IndexLocked {
        path: PathBuf,
        #[source]
        source: BoxError,
    },
    #[error("branch {branch} kept moving; gave up after {attempts} attempts")]
    Contended { branch: String, attempts: u32 },
    #[error("issue id {id:?} cannot name a branch or directory: {reason}")]
    InvalidIssueId { id: String, reason: &'static str },
    #[error("worktree {path}: {reason}")]
    Worktree { path: PathBuf, reason: String },
    #[error(
        "uncommitted changes to {} would be overwritten by the merge; nothing was changed — commit or stash them yourself, then sync again",
        files.join(", ")
    )]
    LocalChanges { files: Vec<String> },
    #[error(
        "the upstream's changes conflict with yours in {}; nothing was changed — merge it yourself (`git merge`), then sync again",
        files.join(", ")
    )]
    MergeConflict { files: Vec<String> },
    #[error("the branch moved while the merge was being built; nothing was changed")]
    BranchMoved,
    #[error(transparent)]
    Command(#[from] GitCommandError),
}

pub type Result<T, E = GitError> = std::result::Result<T, E>;

impl GitError {
    fn gix(what: impl Into<String>, source: impl Into<BoxError>) -> GitError {
        GitError::Gix {
            what: what.into(),
            source: source.into(),
        }
    }

    fn io(what: impl Into<String>, source: std::io::Error) -> GitError {
        GitError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Opens the repository whose work tree (or linked worktree) contains `dir`.
///
/// Discovery walks up like `git` does, so callers may pass any directory inside the tree.
pub fn open(dir: &Path) -> Result<gix::Repository> {
    gix::discover(dir)
        .map_err(|e| GitError::gix(format!("{}: opening the git repository", dir.display()), e))
}

/// Git's common directory for the repository containing `dir`: shared by all linked
/// worktrees, so it is where spool keeps per-clone state (`<common>/spool/`).
pub fn common_dir(dir: &Path) -> Result<PathBuf> {
    let repo = open(dir)?;
    Ok(absolute(repo.common_dir()))
}

/// The directory `<common-dir>/spool`, where spool keeps untracked per-clone state.
pub fn spool_dir(dir: &Path) -> Result<PathBuf> {
    Ok(common_dir(dir)?.join("spool"))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
