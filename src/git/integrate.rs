//! Bringing a fetched upstream into the checked-out branch for `spool sync`, without ever
//! leaving the user's work tree half-merged.
//!
//! `git merge` writes into the work tree as it goes: a conflict in some file leaves the
//! repository mid-merge, and `git merge --abort` cannot always restore uncommitted
//! changes (bd's sync lost work this way). So the merge is computed first, in memory:
//! `git merge-tree --write-tree` merges everything but the backlog, and the backlog is
//! merged per issue by `spool_core::beads::merge`, its blob put into the merged tree. Only a merge that is
//! complete becomes a commit, and only then does the work tree move — by a fast-forward
//! to that commit (`git merge --ff-only --no-autostash`), a two-way checkout that updates
//! exactly the files the upstream changed and refuses, changing nothing, if one of them
//! has uncommitted changes. Those files are found and named before git is asked.

use std::path::Path;

use gix::bstr::ByteSlice;
use gix::objs::tree::EntryKind;
use gix::ObjectId;
use spool_core::beads::merge::{merge, Finding};

use super::cmd::Git;
use super::commit::{to_gix_signature, Signature};
use super::{GitError, Result};

/// What happened to the checked-out branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntegrationKind {
    /// The upstream had nothing the branch lacked.
    UpToDate,
    /// The branch had nothing the upstream lacked; it now points at the upstream.
    FastForward,
    /// Both had commits; a merge commit joins them.
    Merged,
}

/// The backlog's part of a merge.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BacklogMerge {
    /// Both sides had changed the backlog, so it was merged per issue and field.
    pub merged: bool,
    /// Same-field edits no rule could order; the merge decided each by its fallback.
    pub conflicts: Vec<Finding>,
    /// Rules applied where both sides touched one issue.
    pub notes: Vec<Finding>,
}

/// The result of [`integrate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub kind: IntegrationKind,
    /// The branch's tip afterwards.
    pub head: ObjectId,
    pub backlog: BacklogMerge,
}

/// Merges the commit `upstream` into the checked-out branch of the work tree at `dir`.
///
/// `backlog` is the backlog's path relative to the work tree root (`.beads/issues.jsonl`).
/// Errors leave the branch, index and work tree exactly as they were:
/// [`GitError::LocalChanges`] when files the merge would update have uncommitted changes,
/// [`GitError::MergeConflict`] when files other than the backlog conflict,
/// [`GitError::BranchMoved`] when the branch moved while the merge was being built.
pub fn integrate(
    dir: &Path,
    upstream: ObjectId,
    backlog: &str,
    message: &str,
    signature: &Signature,
) -> Result<Integration> {
    let repo = super::open(dir)?;
    let workdir = repo
        .workdir()
        .map(Path::to_path_buf)
        .ok_or_else(|| GitError::Bare(dir.to_path_buf()))?;
    let git = Git::new(&workdir);
    let head = head_tip(&repo)?;
    let up = upstream.to_string();
    let Some(head) = head else {
        // An unborn branch takes the upstream as it is.
        apply(&git, &workdir, None, upstream)?;
        return Ok(Integration {
            kind: IntegrationKind::FastForward,
            head: upstream,
            backlog: BacklogMerge::default(),
        });
    };
    let ours = head.to_string();
    if head == upstream || is_ancestor(&git, &up, &ours)? {
        return Ok(Integration {
            kind: IntegrationKind::UpToDate,
            head,
            backlog: BacklogMerge::default(),
        });
    }
    if is_ancestor(&git, &ours, &up)? {
        apply(&git, &workdir, Some(head), upstream)?;
        return Ok(Integration {
            kind: IntegrationKind::FastForward,
            head: upstream,
            backlog: BacklogMerge::default(),
        });
    }
    let base = merge_base(&git, &ours, &up)?;
    let entry = |commit: Option<ObjectId>| -> Result<Option<ObjectId>> {
        match commit {
            Some(c) => entry_at(&repo, c, backlog),
            None => Ok(None),
        }
    };
    let (bi, oi, ti) = (entry(base)?, entry(Some(head))?, entry(Some(upstream))?);
    let both_changed = oi != ti && oi != bi && ti != bi;
    let sig = to_gix_signature(signature);
    let mut time_buf = gix::date::parse::TimeBuf::default();
    let sig_ref = sig.to_ref(&mut time_buf);
    // When both sides changed the backlog, git is shown ours with theirs' backlog (a
    // scratch commit on top of ours): the file then changed on one side only, so git
    // leaves its content alone instead of running a content merge on it that would be
    // thrown away.
    let git_ours = if both_changed {
        let head_tree = tree_of(&repo, head)?;
        let tree = tree_with_entry(&repo, head_tree, backlog, ti)?;
        repo.new_commit_as(sig_ref, sig_ref, "spool sync: scratch", tree, [head])
            .map_err(|e| GitError::gix("writing a scratch commit", e))?
            .id
    } else {
        head
    };
    let (tree, conflicted) = merge_tree(&git, &git_ours.to_string(), &up)?;
    let others: Vec<String> = conflicted.into_iter().filter(|p| p != backlog).collect();
    if !others.is_empty() {
        return Err(GitError::MergeConflict { files: others });
    }
    let mut report = BacklogMerge::default();
    let tree = if both_changed {
        let data = |id: Option<ObjectId>| -> Result<Vec<u8>> {
            match id {
                Some(id) => repo
                    .find_object(id)
                    .map(|o| o.data.clone())
                    .map_err(|e| GitError::gix(format!("reading {backlog} ({id})"), e)),
                None => Ok(Vec::new()),
            }
        };
        let out = merge(&data(bi)?, &data(oi)?, &data(ti)?);
        report = BacklogMerge {
            merged: true,
            conflicts: out.conflicts,
            notes: out.notes,
        };
        let blob = repo
            .write_blob(&out.text)
            .map_err(|e| GitError::gix(format!("storing the merged {backlog}"), e))?
            .detach();
        tree_with_entry(&repo, tree, backlog, Some(blob))?
    } else {
        // At most one side changed the backlog; git's merge took that side's file.
        tree
    };
    let commit = repo
        .new_commit_as(sig_ref, sig_ref, message, tree, [head, upstream])
        .map_err(|e| GitError::gix("writing the merge commit", e))?
        .id;
    apply(&git, &workdir, Some(head), commit)?;
    Ok(Integration {
        kind: IntegrationKind::Merged,
        head: commit,
        backlog: report,
    })
}

/// The tip of the checked-out branch (`None` when unborn); a detached HEAD is refused.
fn head_tip(repo: &gix::Repository) -> Result<Option<ObjectId>> {
    let head = repo.head().map_err(|e| GitError::gix("reading HEAD", e))?;
    match head.kind {
        gix::head::Kind::Symbolic(r) => Ok(r.target.try_id().map(|id| id.to_owned())),
        gix::head::Kind::Unborn(_) => Ok(None),
        gix::head::Kind::Detached { .. } => Err(GitError::DetachedHead),
    }
}

fn is_ancestor(git: &Git, ancestor: &str, of: &str) -> Result<bool> {
    let out = git.output(["merge-base", "--is-ancestor", ancestor, of])?;
    match out.code {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(GitError::gix(
            format!("git merge-base --is-ancestor {ancestor} {of}"),
            out.stderr.trim().to_string(),
        )),
    }
}

fn merge_base(git: &Git, a: &str, b: &str) -> Result<Option<ObjectId>> {
    let out = git.output(["merge-base", a, b])?;
    match out.code {
        Some(0) => parse_oid(out.stdout_str().trim()).map(Some),
        Some(1) if out.stderr.trim().is_empty() => Ok(None),
        _ => Err(GitError::gix(
            format!("git merge-base {a} {b}"),
            out.stderr.trim().to_string(),
        )),
    }
}

fn parse_oid(s: &str) -> Result<ObjectId> {
    ObjectId::from_hex(s.as_bytes())
        .map_err(|e| GitError::gix(format!("reading object id {s:?}"), e))
}

/// `git merge-tree --write-tree`: its tree and its conflicted paths. The backlog's driver
/// is made a no-op for the call, in case git merges its content anyway; its result is
/// replaced.
fn merge_tree(git: &Git, ours: &str, theirs: &str) -> Result<(ObjectId, Vec<String>)> {
    let out = git.output([
        "-c",
        "merge.spool.driver=true",
        "merge-tree",
        "--write-tree",
        "-z",
        "--name-only",
        "--no-messages",
        "--allow-unrelated-histories",
        ours,
        theirs,
    ])?;
    if !matches!(out.code, Some(0 | 1)) {
        return Err(GitError::gix(
            format!("git merge-tree {ours} {theirs}"),
            out.stderr.trim().to_string(),
        ));
    }
    let mut fields = out.stdout.split(|b| *b == 0).filter(|f| !f.is_empty());
    let tree = fields
        .next()
        .ok_or_else(|| GitError::gix("git merge-tree", "printed no tree".to_string()))?;
    let tree = parse_oid(&String::from_utf8_lossy(tree))?;
    let mut conflicted: Vec<String> = fields
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    conflicted.dedup();
    Ok((tree, conflicted))
}

fn tree_of(repo: &gix::Repository, commit: ObjectId) -> Result<ObjectId> {
    repo.find_commit(commit)
        .and_then(|c| c.tree_id().map(|t| t.detach()))
        .map_err(|e| GitError::gix(format!("reading commit {commit}"), e))
}

/// The blob at `path` in `commit`'s tree, `None` when absent (or not a file).
fn entry_at(repo: &gix::Repository, commit: ObjectId, path: &str) -> Result<Option<ObjectId>> {
    let tree = repo
        .find_tree(tree_of(repo, commit)?)
        .map_err(|e| GitError::gix(format!("reading the tree of {commit}"), e))?;
    let entry = tree
        .lookup_entry_by_path(path)
        .map_err(|e| GitError::gix(format!("looking up {path} in {commit}"), e))?;
    Ok(entry.filter(|e| e.mode().is_blob()).map(|e| e.object_id()))
}

/// `tree` with `path` set to the blob `blob`, or removed when `None`.
fn tree_with_entry(
    repo: &gix::Repository,
    tree: ObjectId,
    path: &str,
    blob: Option<ObjectId>,
) -> Result<ObjectId> {
    let mut editor = repo
        .find_tree(tree)
        .map_err(|e| GitError::gix("reading a tree", e))?
        .edit()
        .map_err(|e| GitError::gix("reading a tree", e))?;
    match blob {
        Some(id) => editor.upsert(path, EntryKind::Blob, id),
        None => editor.remove(path),
    }
    .map_err(|e| GitError::gix(format!("placing {path} in a tree"), e))?;
    Ok(editor
        .write()
        .map_err(|e| GitError::gix("writing a tree", e))?
        .detach())
}

/// Moves the branch, index and work tree from `from` to `to` (a descendant of `from`),
/// first naming any uncommitted change the move would overwrite.
fn apply(git: &Git, workdir: &Path, from: Option<ObjectId>, to: ObjectId) -> Result<()> {
    let to_s = to.to_string();
    let changed = match from {
        Some(f) => {
            let out = git.run([
                "diff",
                "--name-only",
                "-z",
                "--no-renames",
                "--no-ext-diff",
                &f.to_string(),
                &to_s,
            ])?;
            split_z(&out.stdout)
        }
        None => {
            let out = git.run(["ls-tree", "-r", "-z", "--name-only", &to_s])?;
            split_z(&out.stdout)
        }
    };
    let dirty = dirty_paths(git)?;
    let blocked = overlapping(&changed, &dirty);
    if !blocked.is_empty() {
        return Err(GitError::LocalChanges { files: blocked });
    }
    let out = git.output([
        "merge",
        "--ff-only",
        "--no-autostash",
        "--no-edit",
        "--no-stat",
        "--quiet",
        &to_s,
    ])?;
    if out.success() {
        return Ok(());
    }
    let stderr = out.stderr.trim().to_string();
    if stderr.contains("would be overwritten") || stderr.contains("would be removed") {
        return Err(GitError::LocalChanges {
            files: stderr
                .lines()
                .filter(|l| l.starts_with('\t'))
                .map(|l| l.trim().to_string())
                .collect(),
        });
    }
    if stderr.contains("Not possible to fast-forward") {
        return Err(GitError::BranchMoved);
    }
    Err(GitError::gix(
        format!("{}: git merge --ff-only {to_s}", workdir.display()),
        stderr,
    ))
}

fn split_z(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| f.to_str_lossy().into_owned())
        .collect()
}

/// Paths with uncommitted changes (staged, unstaged, or untracked and not ignored),
/// relative to the work tree root.
pub fn dirty_paths(git: &Git) -> Result<Vec<String>> {
    let out = git.run([
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--no-renames",
    ])?;
    Ok(parse_status_z(&out.stdout))
}

/// `git status --porcelain=v1 -z` entries: `XY path`, NUL-terminated.
fn parse_status_z(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .filter(|e| e.len() > 3)
        .map(|e| e[3..].to_str_lossy().into_owned())
        .collect()
}

/// The dirty paths a change of `changed` would touch: the same path, or one inside a
/// directory the other names (a file replacing a directory or the reverse).
fn overlapping(changed: &[String], dirty: &[String]) -> Vec<String> {
    let inside =
        |a: &str, b: &str| a.len() > b.len() && a.starts_with(b) && a.as_bytes()[b.len()] == b'/';
    let mut out: Vec<String> = dirty
        .iter()
        .filter(|d| {
            changed
                .iter()
                .any(|c| c == *d || inside(d, c) || inside(c, d))
        })
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_entries_and_overlaps_are_read_by_path() {
        let status = b" M src/a.rs\0?? new/file\0A  b.txt\0";
        let dirty = parse_status_z(status);
        assert_eq!(dirty, vec!["src/a.rs", "new/file", "b.txt"]);
        let changed = vec!["src/a.rs".to_string(), "new".to_string(), "c".to_string()];
        assert_eq!(overlapping(&changed, &dirty), vec!["new/file", "src/a.rs"]);
        assert!(overlapping(&["src/ab.rs".to_string()], &dirty).is_empty());
    }
}
