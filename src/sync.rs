//! `spool sync`: share the backlog through a git remote — commit it, fetch, merge per
//! issue and field, push, and on a rejected push do it again.
//!
//! The building blocks are public so the daemon can confirm a claim by pushing it:
//! [`sync_backlog`] does one whole round and says what was committed, fetched, merged and
//! pushed, and its error tells an unreachable remote ([`SyncError::Unreachable`]) from a
//! remote that kept moving ([`SyncError::PushRejected`]).
//!
//! What is synced is the checked-out branch of the work tree holding the backlog
//! (`ws.root`): the user's own branch, or — in dedicated-branch mode, where the workspace
//! is the hidden worktree ([`git::backlog_branch`]) — the backlog branch. Only the
//! backlog is ever committed; the merge of the upstream changes other files only as a
//! `git merge` of it would, and never when one of them has uncommitted changes (see
//! [`git::integrate`]). Nothing is stashed, reset or reverted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gix::ObjectId;
use serde::Serialize;

use crate::atomic::FileLock;
use crate::git::backlog_branch::{
    backlog_worktree_path, ensure_backlog_worktree, ensure_view, ViewState, WorktreeSetup,
    BACKLOG_PATH, DEFAULT_BACKLOG_BRANCH,
};
use crate::git::{
    self, commit_paths, integrate, BacklogMerge, CommitOutcome, GitCommandError, GitError,
    IntegrationKind, PushOutcome, Signature,
};
use crate::workspace::Workspace;

/// Pushes tried before giving up on a remote that keeps moving.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// How long a sync waits for another spool process's backlog write.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// Where the backlog's commits go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    /// On the branch checked out where `.beads/` is (the code branch).
    InPlace,
    /// On a dedicated branch in a hidden worktree.
    Branch,
}

impl SyncMode {
    pub fn parse(s: &str) -> Option<SyncMode> {
        match s {
            "in-place" => Some(SyncMode::InPlace),
            "branch" => Some(SyncMode::Branch),
            _ => None,
        }
    }
}

/// What to sync with and how hard to try.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// A configured remote's name; default: the branch's upstream remote, else `origin`.
    pub remote: Option<String>,
    /// The remote branch; default: the branch's upstream, else its own name.
    pub branch: Option<String>,
    /// Fetch–merge–push rounds before a still-rejected push is an error (at least 1).
    pub max_attempts: u32,
    /// Author and committer of the backlog and merge commits.
    pub signature: Signature,
}

/// What a sync did (also what it had done when it failed).
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub mode: SyncMode,
    /// The work tree whose branch was synced.
    pub worktree: PathBuf,
    pub remote: String,
    /// The local branch (short name) and the remote branch it syncs with.
    pub local_branch: String,
    pub branch: String,
    /// The commit of the backlog's uncommitted changes, if there were any.
    pub committed: Option<String>,
    /// The remote branch's tip as last fetched; `None` when the remote has no such
    /// branch yet (the push creates it).
    pub fetched: Option<String>,
    /// What the last merge of the upstream did.
    pub merge: Option<IntegrationKind>,
    /// Per-issue merge findings of every round.
    pub backlog: BacklogMerge,
    /// The commit the remote branch now points at, when this sync pushed it.
    pub pushed: Option<String>,
    /// Fetch–merge–push rounds used.
    pub attempts: u32,
}

/// Why a sync stopped. Every variant leaves the local branch, index and work tree
/// consistent: at most the backlog was committed and a complete merge applied.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The remote could not be reached (or is not a repository); try again later.
    #[error("remote {remote} is unreachable: {message}")]
    Unreachable { remote: String, message: String },
    /// Every push was rejected because the remote moved on in between.
    #[error("push to {remote} {branch} was rejected {attempts} times (the remote kept moving): {reason}")]
    PushRejected {
        remote: String,
        branch: String,
        attempts: u32,
        reason: String,
    },
    /// The remote refused the push for another reason (a hook, permissions).
    #[error("remote {remote} refused the push: {message}")]
    PushRefused { remote: String, message: String },
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

impl SyncError {
    /// A short stable name for `--json` output and callers that branch on the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            SyncError::Unreachable { .. } => "unreachable",
            SyncError::PushRejected { .. } => "push-rejected",
            SyncError::PushRefused { .. } => "push-refused",
            SyncError::Git(GitError::LocalChanges { .. }) => "local-changes",
            SyncError::Git(GitError::MergeConflict { .. }) => "merge-conflict",
            SyncError::Git(_) => "git",
            SyncError::Other(_) => "error",
        }
    }
}

/// A failed sync: the error and what had been done before it.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct SyncFailure {
    #[source]
    pub error: SyncError,
    pub report: Box<SyncReport>,
}

/// One whole sync of the backlog of `ws` (see the module docs).
pub fn sync_backlog(ws: &Workspace, opts: &SyncOptions) -> Result<SyncReport, SyncFailure> {
    sync_backlog_guarded(ws, opts, &mut |_| Ok(()))
}

/// Called with the backlog of each fetched remote tip (`None` when the remote has no
/// branch or no backlog yet) before it is merged, outside the backlog lock: a daemon
/// gives up a claim here that a teammate pushed first, so the merge never decides it.
pub type BeforeMerge<'a> = dyn FnMut(Option<&[u8]>) -> Result<(), SyncError> + 'a;

/// [`sync_backlog`] with a look at what is about to be merged.
pub fn sync_backlog_guarded(
    ws: &Workspace,
    opts: &SyncOptions,
    before_merge: &mut BeforeMerge<'_>,
) -> Result<SyncReport, SyncFailure> {
    let worktree = ws.root.clone();
    let mode = if is_backlog_worktree(&worktree) {
        SyncMode::Branch
    } else {
        SyncMode::InPlace
    };
    let mut report = SyncReport {
        mode,
        worktree: worktree.clone(),
        remote: String::new(),
        local_branch: String::new(),
        branch: String::new(),
        committed: None,
        fetched: None,
        merge: None,
        backlog: BacklogMerge::default(),
        pushed: None,
        attempts: 0,
    };
    match run(ws, opts, &mut report, before_merge) {
        Ok(()) => Ok(report),
        Err(error) => Err(SyncFailure {
            error,
            report: Box::new(report),
        }),
    }
}

fn run(
    ws: &Workspace,
    opts: &SyncOptions,
    report: &mut SyncReport,
    before_merge: &mut BeforeMerge<'_>,
) -> Result<(), SyncError> {
    let dir = ws.root.as_path();
    let local = local_branch(dir)?;
    let (remote, branch) = resolve_target(dir, &local, opts)?;
    report.local_branch = local;
    report.remote = remote.clone();
    report.branch = branch.clone();
    let backlog_rel = backlog_relative(ws)?;

    {
        let _lock = FileLock::acquire(&ws.lock_path(), LOCK_WAIT)?;
        if let Some(c) = commit_backlog(ws, &opts.signature)? {
            report.committed = Some(c.to_string());
        }
    }
    let max = opts.max_attempts.max(1);
    let mut last_reason = String::new();
    for attempt in 1..=max {
        report.attempts = attempt;
        let tip = fetch_tip(dir, &remote, &branch)?;
        report.fetched = tip.map(|t| t.to_string());
        let theirs = match tip {
            Some(t) => git::blob_at(dir, t, &ws.issues_path())?,
            None => None,
        };
        before_merge(theirs.as_deref())?;
        {
            let _lock = FileLock::acquire(&ws.lock_path(), LOCK_WAIT)?;
            // A spool write since the first commit is committed too, so the merge never
            // meets an uncommitted backlog.
            if let Some(c) = commit_backlog(ws, &opts.signature)? {
                report.committed = Some(c.to_string());
            }
            if let Some(tip) = tip {
                let message = format!("spool sync: merge {remote}/{branch}");
                let merged = match integrate(dir, tip, &backlog_rel, &message, &opts.signature) {
                    Ok(m) => m,
                    // Someone committed (a `git commit`, a daemon's progress) while the
                    // merge was built; nothing was changed, so build it again.
                    Err(GitError::BranchMoved) if attempt < max => continue,
                    Err(e) => return Err(e.into()),
                };
                report.merge = Some(merged.kind);
                report.backlog.merged |= merged.backlog.merged;
                report.backlog.conflicts.extend(merged.backlog.conflicts);
                report.backlog.notes.extend(merged.backlog.notes);
                crate::write_index::forget(ws);
            }
        }
        let head = git::head_commit(dir)?.ok_or_else(|| {
            SyncError::Other(anyhow::anyhow!(
                "{}: the branch has no commits and the remote has none to merge",
                dir.display()
            ))
        })?;
        if tip == Some(head) {
            return Ok(());
        }
        let refspec = format!("{head}:refs/heads/{branch}");
        match git::push(dir, &remote, &refspec)? {
            PushOutcome::Ok => {
                report.pushed = Some(head.to_string());
                return Ok(());
            }
            PushOutcome::Rejected { reason } => {
                last_reason = reason;
                if attempt < max {
                    std::thread::sleep(backoff(attempt));
                }
            }
            PushOutcome::Error { message } => {
                return Err(if looks_unreachable(&message) {
                    SyncError::Unreachable { remote, message }
                } else {
                    SyncError::PushRefused { remote, message }
                });
            }
        }
    }
    Err(SyncError::PushRejected {
        remote,
        branch,
        attempts: max,
        reason: last_reason,
    })
}

/// The wait before round `attempt + 1`: doubling from 100 ms up to 2 s, plus up to
/// 100 ms that differs between processes, so daemons that collided do not collide again
/// in step.
pub fn backoff(attempt: u32) -> Duration {
    let base = 100u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(5))
        .min(2000);
    let spread = (u64::from(std::process::id()).wrapping_mul(2_654_435_761) >> 7) % 100;
    Duration::from_millis(base + spread)
}

/// Commits the backlog file alone if it differs from HEAD; returns the new commit.
fn commit_backlog(ws: &Workspace, sig: &Signature) -> Result<Option<ObjectId>, SyncError> {
    let path = ws.issues_path();
    if !path.is_file() {
        return Ok(None);
    }
    match commit_paths(&ws.root, &[path.as_path()], "spool sync: backlog", sig)? {
        CommitOutcome::Committed { commit, .. } => Ok(Some(commit)),
        CommitOutcome::Unchanged => Ok(None),
    }
}

/// The backlog's path relative to its work tree, with `/` separators.
fn backlog_relative(ws: &Workspace) -> Result<String, SyncError> {
    let repo = git::open(&ws.root)?;
    let workdir = repo
        .workdir()
        .map(Path::to_path_buf)
        .ok_or_else(|| GitError::Bare(ws.root.clone()))?;
    let workdir = workdir.canonicalize().unwrap_or(workdir);
    let issues = ws.issues_path();
    let issues = issues
        .parent()
        .and_then(|p| p.canonicalize().ok())
        .map(|p| p.join("issues.jsonl"))
        .unwrap_or(issues);
    let rel = issues.strip_prefix(&workdir).map_err(|_| {
        SyncError::Other(anyhow::anyhow!(
            "{} is not inside the work tree {}",
            issues.display(),
            workdir.display()
        ))
    })?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Ok(parts.join("/"))
}

/// The short name of the branch checked out in `dir`.
fn local_branch(dir: &Path) -> Result<String, SyncError> {
    let repo = git::open(dir)?;
    let name = repo
        .head_name()
        .map_err(|e| SyncError::Other(anyhow::anyhow!("reading HEAD: {e}")))?
        .ok_or(GitError::DetachedHead)?;
    Ok(name.shorten().to_string())
}

/// The remote and remote branch: options first, then the branch's upstream
/// (`branch.<name>.remote` / `.merge`), then `origin` and the branch's own name.
fn resolve_target(
    dir: &Path,
    local: &str,
    opts: &SyncOptions,
) -> Result<(String, String), SyncError> {
    let repo = git::open(dir)?;
    let config = repo.config_snapshot();
    let upstream_remote = config
        .string(format!("branch.{local}.remote").as_str())
        .map(|s| s.to_string())
        .filter(|s| s != ".");
    let upstream_branch = config
        .string(format!("branch.{local}.merge").as_str())
        .map(|s| s.to_string())
        .map(|s| s.strip_prefix("refs/heads/").unwrap_or(&s).to_string());
    let remote = opts
        .remote
        .clone()
        .or(upstream_remote)
        .unwrap_or_else(|| "origin".to_string());
    let branch = opts
        .branch
        .clone()
        .or(upstream_branch)
        .unwrap_or_else(|| local.to_string());
    Ok((remote, branch))
}

/// Fetches the remote branch; `None` when the remote is reachable but has no such branch.
fn fetch_tip(dir: &Path, remote: &str, branch: &str) -> Result<Option<ObjectId>, SyncError> {
    match git::fetch(dir, remote, branch) {
        Ok(tip) => Ok(Some(tip)),
        Err(GitError::Command(GitCommandError::Failed { stderr, .. }))
            if stderr.contains("couldn't find remote ref") =>
        {
            Ok(None)
        }
        Err(GitError::Command(GitCommandError::Failed { stderr, .. })) => {
            Err(SyncError::Unreachable {
                remote: remote.to_string(),
                message: stderr,
            })
        }
        Err(GitError::Command(e @ GitCommandError::Timeout { .. })) => {
            Err(SyncError::Unreachable {
                remote: remote.to_string(),
                message: e.to_string(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Transport failures, as git words them, versus a remote that answered and refused.
fn looks_unreachable(message: &str) -> bool {
    [
        "does not appear to be a git repository",
        "Could not read from remote repository",
        "unable to access",
        "Connection refused",
        "Could not resolve host",
        "No such file or directory",
        "unable to connect",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// Whether `dir` is this clone's hidden backlog worktree.
pub fn is_backlog_worktree(dir: &Path) -> bool {
    match backlog_worktree_path(dir) {
        Ok(p) => match (p.canonicalize(), dir.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        },
        Err(_) => false,
    }
}

/// What switching a clone to dedicated-branch mode did.
#[derive(Debug, Clone, Serialize)]
pub struct BranchSetup {
    pub worktree: PathBuf,
    pub branch: String,
    pub setup: WorktreeSetup,
    /// The checkout's `.beads/issues.jsonl`: a symlink to the hidden file, or left alone.
    pub view: ViewState,
}

/// Makes sure the clone of `checkout` keeps its backlog on `branch` (default
/// `spool/backlog`) in the hidden worktree, and returns the workspace there.
///
/// A new branch starts from the remote's branch when it has one (an unreachable remote
/// is an error: starting a second history would fork the team's backlog), else from the
/// checkout's current `.beads/issues.jsonl`, so nothing is lost by switching.
pub fn enable_backlog_branch(
    checkout: &Path,
    remote: &str,
    branch: Option<&str>,
    signature: &Signature,
) -> Result<(Workspace, BranchSetup), SyncError> {
    let branch = branch.unwrap_or(DEFAULT_BACKLOG_BRANCH).to_string();
    let path = backlog_worktree_path(checkout)?;
    let remote_tip = if path.exists() {
        None
    } else {
        fetch_tip(checkout, remote, &branch)?
    };
    let seed = seed_files(checkout)?;
    let (worktree, setup) =
        ensure_backlog_worktree(checkout, &branch, remote_tip, &seed, signature)?;
    let target = worktree.join(BACKLOG_PATH);
    let view = ensure_view(checkout, &target)?;
    let ws = Workspace {
        beads_dir: worktree.join(".beads"),
        root: worktree.clone(),
    };
    Ok((
        ws,
        BranchSetup {
            worktree,
            branch,
            setup,
            view,
        },
    ))
}

/// What a new backlog branch starts with: the checkout's backlog (empty if it has none),
/// its `.beads/config.yaml` (else one naming the checkout's directory as the issue
/// prefix: the hidden worktree's own name would make a poor one) and its
/// `.beads/.gitignore` (else one ignoring the lock file).
fn seed_files(checkout: &Path) -> Result<Vec<(&'static str, Vec<u8>)>, SyncError> {
    let read = |rel: &str| -> Result<Option<Vec<u8>>, SyncError> {
        let p = checkout.join(rel);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() => std::fs::read(&p)
                .map(Some)
                .map_err(|e| SyncError::Other(anyhow::anyhow!("reading {}: {e}", p.display()))),
            _ => Ok(None),
        }
    };
    let issues = read(BACKLOG_PATH)?.unwrap_or_default();
    let config = match read(CONFIG_PATH)? {
        Some(c) => c,
        None => {
            let ws = Workspace {
                beads_dir: checkout.join(".beads"),
                root: checkout.to_path_buf(),
            };
            format!("issue-prefix: {}\n", ws.dir_name()).into_bytes()
        }
    };
    // The write lock lives next to the backlog; ignored, it never makes the hidden
    // worktree look dirty (which would make `git worktree remove` refuse).
    let ignore = read(IGNORE_PATH)?.unwrap_or_else(|| b"*.lock\n".to_vec());
    Ok(vec![
        (BACKLOG_PATH, issues),
        (CONFIG_PATH, config),
        (IGNORE_PATH, ignore),
    ])
}

const IGNORE_PATH: &str = ".beads/.gitignore";

const CONFIG_PATH: &str = ".beads/config.yaml";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_bounded() {
        let spread = backoff(1).as_millis() - 100;
        assert!(spread < 100);
        assert_eq!(backoff(2).as_millis(), 200 + spread);
        assert_eq!(backoff(3).as_millis(), 400 + spread);
        assert_eq!(backoff(30).as_millis(), 2000 + spread);
    }

    #[test]
    fn transport_failures_are_told_from_refusals() {
        assert!(looks_unreachable(
            "fatal: '/nope' does not appear to be a git repository\nfatal: Could not read from remote repository."
        ));
        assert!(!looks_unreachable(
            "refs/heads/main: [remote rejected] (pre-receive hook declined)"
        ));
    }
}
