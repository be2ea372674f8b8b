//! Path-limited commits: record the work-tree contents of a few paths (the backlog) on
//! top of HEAD without touching anything else the user has.
//!
//! `git add f && git commit` would sweep the user's other staged changes into our commit,
//! and `git commit -- f` still rewrites the whole index. bd's sync reverting unrelated
//! files (beads #1258) is what happens when a tool treats the index as its own. So the
//! commit is built from HEAD's tree with only our paths replaced (gix: blob → tree edit →
//! `commit_as`), and afterwards only our paths' index entries are set to what was
//! committed, under git's own `index.lock`. Other staged changes stay staged and out of
//! the commit, unstaged changes stay unstaged, untracked files stay untouched.
//!
//! The branch update is a compare-and-swap on its previous tip: if someone commits
//! between our read and our write, the commit is rebuilt on the new tip and retried.
//!
//! Contents are committed byte for byte: clean filters and `eol` conversion configured
//! for these paths are not applied (the backlog is LF-only JSONL).

use std::path::{Component, Path};
use std::time::Duration;

use chrono::{DateTime, Utc};
use gix::bstr::{BString, ByteSlice};
use gix::objs::tree::EntryKind;
use gix::ObjectId;

use super::{GitError, Result};

/// How often a commit is rebuilt on a moved branch before giving up.
pub const MAX_ATTEMPTS: u32 = 8;

/// How long to wait for another process's `index.lock` before giving up.
const INDEX_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Author and committer of spool's commits (e.g. `spool <spool@host>`), with the commit
/// time as an argument so callers decide what "now" is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub email: String,
    pub time: DateTime<Utc>,
}

/// What [`commit_paths`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// A commit was made on `branch` (full ref name).
    Committed {
        commit: ObjectId,
        branch: String,
        /// 1 unless the branch moved under us and the commit was rebuilt.
        attempts: u32,
    },
    /// Every path already matched HEAD; nothing was committed.
    Unchanged,
}

/// Commits exactly the current work-tree contents of `paths` onto the checked-out branch
/// of the repository containing `repo_dir`, leaving the rest of the index and the work
/// tree as they were.
///
/// `paths` are relative to the work tree root (or absolute inside it). Refuses a detached
/// HEAD (spool's commits belong on a branch), paths that are not regular files, and paths
/// with unresolved conflicts. On an unborn branch it makes the first commit. Works from a
/// linked worktree: the commit goes to that worktree's branch and index.
pub fn commit_paths(
    repo_dir: &Path,
    paths: &[&Path],
    message: &str,
    signature: &Signature,
) -> Result<CommitOutcome> {
    commit_paths_inner(repo_dir, paths, message, signature, &mut |_| {})
}

/// One path to commit: where it is in the tree and what the work tree holds.
struct Staged {
    rela: BString,
    blob: ObjectId,
    kind: EntryKind,
    stat: gix::index::entry::Stat,
}

/// [`commit_paths`] with a seam run after the commit is built and before the branch is
/// moved, so tests can move the branch at exactly the wrong moment.
fn commit_paths_inner(
    repo_dir: &Path,
    paths: &[&Path],
    message: &str,
    signature: &Signature,
    before_ref_update: &mut dyn FnMut(u32),
) -> Result<CommitOutcome> {
    let repo = super::open(repo_dir)?;
    let workdir = repo
        .workdir()
        .map(Path::to_path_buf)
        .ok_or_else(|| GitError::Bare(repo_dir.to_path_buf()))?;
    let workdir = std::path::absolute(&workdir).unwrap_or(workdir);
    let mut rela_paths = Vec::with_capacity(paths.len());
    for p in paths {
        let rela = relative_path(&workdir, p)?;
        if !rela_paths.contains(&rela) {
            rela_paths.push(rela);
        }
    }
    if rela_paths.is_empty() {
        return Ok(CommitOutcome::Unchanged);
    }
    let sig = to_gix_signature(signature);
    let mut time_buf = gix::date::parse::TimeBuf::default();
    let sig_ref = sig.to_ref(&mut time_buf);

    for attempt in 1..=MAX_ATTEMPTS {
        // Held from reading HEAD until the index is written, as `git commit` does: a
        // concurrent `git commit` or `git add` waits for us (or we for it) instead of
        // committing from an index that no longer matches the branch.
        let lock = lock_index(&repo)?;
        let index = read_index(&repo)?;
        refuse_conflicts(&index, &workdir, &rela_paths)?;
        let (branch, parent) = current_branch(&repo)?;
        let base_tree = match parent {
            Some(p) => repo
                .find_commit(p)
                .and_then(|c| c.tree_id().map(|t| t.detach()))
                .map_err(|e| GitError::gix(format!("reading commit {p}"), e))?,
            None => ObjectId::empty_tree(repo.object_hash()),
        };
        let staged = rela_paths
            .iter()
            .map(|rela| stage_path(&repo, &workdir, rela))
            .collect::<Result<Vec<_>>>()?;

        let base = repo
            .find_tree(base_tree)
            .map_err(|e| GitError::gix("reading HEAD's tree", e))?;
        let mut editor = base
            .clone()
            .edit()
            .map_err(|e| GitError::gix("reading HEAD's tree", e))?;
        let mut changed = false;
        for s in &staged {
            let current = base
                .lookup_entry_by_path(s.rela.to_str_lossy().as_ref())
                .map_err(|e| GitError::gix(format!("looking up {} in HEAD", s.rela), e))?
                .map(|e| (e.object_id(), e.mode().kind()));
            if current != Some((s.blob, s.kind)) {
                changed = true;
                editor
                    .upsert(s.rela.to_str_lossy().as_ref(), s.kind, s.blob)
                    .map_err(|e| GitError::gix(format!("placing {} in the tree", s.rela), e))?;
            }
        }
        if !changed {
            return Ok(CommitOutcome::Unchanged);
        }
        let tree = editor
            .write()
            .map_err(|e| GitError::gix("writing the tree", e))?
            .detach();

        before_ref_update(attempt);
        match repo.commit_as(sig_ref, sig_ref, branch.as_ref(), message, tree, parent) {
            Ok(id) => {
                let commit = id.detach();
                write_index(&repo, index, lock, &staged)?;
                return Ok(CommitOutcome::Committed {
                    commit,
                    branch: branch.as_bstr().to_string(),
                    attempts: attempt,
                });
            }
            Err(err) => {
                // A moved branch is the expected failure: rebuild on its new tip. Anything
                // else (permissions, a corrupt ref) is reported as is.
                if branch_tip(&repo, &branch)? == parent {
                    return Err(GitError::gix(
                        format!("committing to {}", branch.as_bstr()),
                        err,
                    ));
                }
            }
        }
    }
    Err(GitError::Contended {
        branch: current_branch(&repo)?.0.as_bstr().to_string(),
        attempts: MAX_ATTEMPTS,
    })
}

pub(crate) fn to_gix_signature(s: &Signature) -> gix::actor::Signature {
    gix::actor::Signature {
        name: s.name.as_str().into(),
        email: s.email.as_str().into(),
        time: gix::date::Time::new(s.time.timestamp(), 0),
    }
}

/// The branch HEAD points at and its tip (`None` on an unborn branch).
fn current_branch(repo: &gix::Repository) -> Result<(gix::refs::FullName, Option<ObjectId>)> {
    let head = repo.head().map_err(|e| GitError::gix("reading HEAD", e))?;
    match head.kind {
        gix::head::Kind::Symbolic(r) => {
            let tip = r.target.try_id().map(|id| id.to_owned());
            Ok((r.name, tip))
        }
        gix::head::Kind::Unborn(name) => Ok((name, None)),
        gix::head::Kind::Detached { .. } => Err(GitError::DetachedHead),
    }
}

/// Where `branch` points right now (`None` if it does not exist).
fn branch_tip(repo: &gix::Repository, branch: &gix::refs::FullName) -> Result<Option<ObjectId>> {
    let found = repo
        .try_find_reference(branch.as_ref())
        .map_err(|e| GitError::gix(format!("reading {}", branch.as_bstr()), e))?;
    Ok(found.and_then(|r| r.target().try_id().map(|id| id.to_owned())))
}

/// `p` as a slash-separated path relative to the work tree, refusing anything that would
/// leave it or name the `.git` directory.
fn relative_path(workdir: &Path, p: &Path) -> Result<BString> {
    let rel = if p.is_absolute() {
        p.strip_prefix(workdir).map_err(|_| GitError::BadPath {
            path: p.to_path_buf(),
            reason: "is outside the work tree",
        })?
    } else {
        p
    };
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => {
                let s = s.to_str().ok_or(GitError::BadPath {
                    path: p.to_path_buf(),
                    reason: "is not valid UTF-8",
                })?;
                if s.eq_ignore_ascii_case(".git") {
                    return Err(GitError::BadPath {
                        path: p.to_path_buf(),
                        reason: "is inside .git",
                    });
                }
                parts.push(s);
            }
            Component::CurDir => {}
            _ => {
                return Err(GitError::BadPath {
                    path: p.to_path_buf(),
                    reason: "must stay inside the work tree (no `..`)",
                })
            }
        }
    }
    if parts.is_empty() {
        return Err(GitError::BadPath {
            path: p.to_path_buf(),
            reason: "names no file",
        });
    }
    Ok(parts.join("/").into())
}

/// Refuses to commit a path that has conflict stages in the index: its content is a
/// merge in progress, not something spool should record.
fn refuse_conflicts(index: &gix::index::File, workdir: &Path, rela: &[BString]) -> Result<()> {
    for r in rela {
        let conflicted = [1, 2, 3].into_iter().any(|stage| {
            let stage = match stage {
                1 => gix::index::entry::Stage::Base,
                2 => gix::index::entry::Stage::Ours,
                _ => gix::index::entry::Stage::Theirs,
            };
            index
                .entry_index_by_path_and_stage(r.as_bstr(), stage)
                .is_some()
        });
        if conflicted {
            return Err(GitError::Conflicted {
                path: workdir.join(r.to_str_lossy().as_ref()),
            });
        }
    }
    Ok(())
}

fn read_index(repo: &gix::Repository) -> Result<gix::index::File> {
    gix::index::File::at_or_default(
        repo.index_path(),
        repo.object_hash(),
        false,
        Default::default(),
    )
    .map_err(|e| {
        GitError::gix(
            format!("{}: reading the index", repo.index_path().display()),
            e,
        )
    })
}

/// Writes the work-tree file at `rela` as a blob and remembers the stat it had, so the
/// index entry can later claim exactly the content that was committed.
fn stage_path(repo: &gix::Repository, workdir: &Path, rela: &BString) -> Result<Staged> {
    let abs = workdir.join(rela.to_str_lossy().as_ref());
    // A file rewritten while we read it would pair new content with an old stat (or the
    // reverse); re-read until the stat is the same before and after.
    for _ in 0..5 {
        let before = lstat(&abs)?;
        let data = std::fs::read(&abs)
            .map_err(|e| GitError::io(format!("reading {}", abs.display()), e))?;
        let after = lstat(&abs)?;
        if before.1 != after.1 {
            continue;
        }
        let blob = repo
            .write_blob(&data)
            .map_err(|e| GitError::gix(format!("storing {}", abs.display()), e))?
            .detach();
        let kind = if before.0 {
            EntryKind::BlobExecutable
        } else {
            EntryKind::Blob
        };
        return Ok(Staged {
            rela: rela.clone(),
            blob,
            kind,
            stat: after.1,
        });
    }
    Err(GitError::BadPath {
        path: abs,
        reason: "kept changing while being read",
    })
}

/// (executable, index stat) of a regular file, refusing symlinks, directories, absence.
fn lstat(abs: &Path) -> Result<(bool, gix::index::entry::Stat)> {
    let meta = std::fs::symlink_metadata(abs)
        .map_err(|e| GitError::io(format!("reading {}", abs.display()), e))?;
    if !meta.file_type().is_file() {
        return Err(GitError::BadPath {
            path: abs.to_path_buf(),
            reason: "is not a regular file",
        });
    }
    #[cfg(unix)]
    let executable = {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    };
    #[cfg(not(unix))]
    let executable = false;
    let fs_meta = gix::index::fs::Metadata::from_path_no_follow(abs)
        .map_err(|e| GitError::io(format!("reading {}", abs.display()), e))?;
    let stat = gix::index::entry::Stat::from_fs(&fs_meta)
        .map_err(|e| GitError::gix(format!("{}: file time", abs.display()), e))?;
    Ok((executable, stat))
}

/// Takes git's `index.lock`, waiting a little for another git process to finish.
fn lock_index(repo: &gix::Repository) -> Result<gix::lock::File> {
    let index_path = repo.index_path();
    gix::lock::File::acquire_to_update_resource(
        &index_path,
        gix::lock::acquire::Fail::AfterDurationWithBackoff(INDEX_LOCK_WAIT),
        None,
        0,
    )
    .map_err(|e| GitError::IndexLocked {
        path: index_path.clone(),
        source: e.into(),
    })
}

/// Points the committed paths' index entries at what was committed, so `git status`
/// shows them clean, and leaves every other entry as it is. `index` was read under
/// `lock`, so no other writer's change can be lost.
fn write_index(
    repo: &gix::Repository,
    mut index: gix::index::File,
    lock: gix::lock::File,
    staged: &[Staged],
) -> Result<()> {
    let index_path = repo.index_path();
    let mut pushed = false;
    for s in staged {
        let mode = match s.kind {
            EntryKind::BlobExecutable => gix::index::entry::Mode::FILE_EXECUTABLE,
            _ => gix::index::entry::Mode::FILE,
        };
        // The stat the committed content was read with: if the file changed since, git
        // sees another stat, re-hashes the file and shows the change, which is the truth.
        match index
            .entry_mut_by_path_and_stage(s.rela.as_bstr(), gix::index::entry::Stage::Unconflicted)
        {
            Some(entry) => {
                entry.id = s.blob;
                entry.stat = s.stat;
                entry.mode = mode;
            }
            None => {
                index.dangerously_push_entry(
                    s.stat,
                    s.blob,
                    gix::index::entry::Flags::empty(),
                    mode,
                    s.rela.as_bstr(),
                );
                pushed = true;
            }
        }
    }
    if pushed {
        index.sort_entries();
    }
    // The cached tree extension would still describe the old tree for our paths' parent
    // directories; git rebuilds it when missing.
    index.remove_tree();
    let mut writer = std::io::BufWriter::new(lock);
    index
        .write_to(&mut writer, Default::default())
        .map_err(|e| GitError::gix(format!("{}: writing the index", index_path.display()), e))?;
    let lock = writer.into_inner().map_err(|e| {
        GitError::io(
            format!("{}: writing the index", index_path.display()),
            e.into_error(),
        )
    })?;
    lock.commit().map_err(|e| {
        GitError::gix(
            format!("{}: replacing the index", index_path.display()),
            e.error,
        )
    })?;
    Ok(())
}

/// The content of `path` in HEAD's tree (`None` if absent or the branch is unborn): what
/// is committed, to compare with the work tree before writing (a human may be editing).
pub fn head_blob(repo_dir: &Path, path: &Path) -> Result<Option<Vec<u8>>> {
    match super::worktree::head_commit(repo_dir)? {
        Some(tip) => blob_at(repo_dir, tip, path),
        None => Ok(None),
    }
}

/// The content of the work-tree file `path` as committed in `commit` (`None` if absent):
/// e.g. a fetched remote tip's backlog, read before merging it.
pub fn blob_at(repo_dir: &Path, commit: ObjectId, path: &Path) -> Result<Option<Vec<u8>>> {
    let repo = super::open(repo_dir)?;
    let workdir = repo
        .workdir()
        .map(Path::to_path_buf)
        .ok_or_else(|| GitError::Bare(repo_dir.to_path_buf()))?;
    let rela = relative_path(&std::path::absolute(&workdir).unwrap_or(workdir), path)?;
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(|e| GitError::gix(format!("reading the tree of {commit}"), e))?;
    let entry = tree
        .lookup_entry_by_path(rela.to_str_lossy().as_ref())
        .map_err(|e| GitError::gix(format!("looking up {rela}"), e))?;
    match entry {
        Some(e) => {
            let obj = e
                .object()
                .map_err(|e| GitError::gix(format!("reading {rela}"), e))?;
            Ok(Some(obj.data.clone()))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "User")
            .env("GIT_AUTHOR_EMAIL", "user@example.com")
            .env("GIT_COMMITTER_NAME", "User")
            .env("GIT_COMMITTER_EMAIL", "user@example.com")
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn git_stdin(dir: &Path, args: &[&str], input: &str) -> String {
        use std::io::Write;
        let mut child = Command::new("git")
            .args(args)
            .current_dir(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run git");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait git");
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn sig() -> Signature {
        Signature {
            name: "spool".into(),
            email: "spool@test".into(),
            time: DateTime::from_timestamp(1_700_000_000, 0).expect("valid time"),
        }
    }

    #[test]
    fn a_branch_moved_between_read_and_write_is_retried_on_the_new_tip() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        git(dir, &["init", "-q", "-b", "main"]);
        std::fs::create_dir_all(dir.join(".beads")).expect("mkdir");
        std::fs::write(dir.join(".beads/issues.jsonl"), "{}\n").expect("write");
        std::fs::write(dir.join("other.txt"), "a\n").expect("write");
        git(dir, &["add", "."]);
        git(dir, &["commit", "-q", "-m", "init"]);
        std::fs::write(dir.join(".beads/issues.jsonl"), "{}\n{\"id\":\"x\"}\n").expect("write");

        let mut moved = false;
        let outcome = commit_paths_inner(
            dir,
            &[Path::new(".beads/issues.jsonl")],
            "spool: progress",
            &sig(),
            &mut |attempt| {
                if attempt == 1 {
                    // `git commit` cannot run now: spool holds index.lock, as git would.
                    let out = Command::new("git")
                        .args(["commit", "-q", "--allow-empty", "-m", "blocked"])
                        .current_dir(dir)
                        .output()
                        .expect("run git");
                    assert!(!out.status.success());
                    assert!(String::from_utf8_lossy(&out.stderr).contains("index.lock"));
                    // Something that moves the branch without the index (a fetch into the
                    // checked-out branch, `git update-ref`): a commit whose other.txt differs.
                    let blob = git_stdin(dir, &["hash-object", "-w", "--stdin"], "b\n");
                    let listing = format!("100644 blob {}\tother.txt\n", blob.trim());
                    let tree = git_stdin(dir, &["mktree"], &listing);
                    let head = git(dir, &["rev-parse", "HEAD"]);
                    let commit = git(
                        dir,
                        &[
                            "commit-tree",
                            tree.trim(),
                            "-p",
                            head.trim(),
                            "-m",
                            "concurrent",
                        ],
                    );
                    git(dir, &["update-ref", "refs/heads/main", commit.trim()]);
                    moved = true;
                }
            },
        )
        .expect("commit");
        assert!(moved);
        let CommitOutcome::Committed {
            attempts, commit, ..
        } = outcome
        else {
            panic!("expected a commit, got {outcome:?}");
        };
        assert_eq!(attempts, 2);
        let log = git(dir, &["log", "--format=%s", "main"]);
        assert_eq!(log, "spool: progress\nconcurrent\ninit\n");
        assert_eq!(git(dir, &["rev-parse", "main"]).trim(), commit.to_string());
        // Built on the new tip: that tip's tree plus the backlog, nothing reverted.
        assert_eq!(git(dir, &["show", "main:other.txt"]), "b\n");
        assert_eq!(
            git(dir, &["diff", "--name-only", "main~1", "main"]),
            ".beads/issues.jsonl\n"
        );
        assert_eq!(
            git(dir, &["ls-tree", "--name-only", "-r", "main~1"]),
            "other.txt\n"
        );
    }

    #[test]
    fn paths_outside_the_work_tree_are_refused() {
        let w = Path::new("/repo");
        assert!(relative_path(w, Path::new("../x")).is_err());
        assert!(relative_path(w, Path::new("/elsewhere/x")).is_err());
        assert!(relative_path(w, Path::new(".git/config")).is_err());
        assert_eq!(
            relative_path(w, Path::new("/repo/.beads/issues.jsonl")).expect("inside"),
            BString::from(".beads/issues.jsonl")
        );
        assert_eq!(
            relative_path(w, Path::new("./.beads/issues.jsonl")).expect("inside"),
            BString::from(".beads/issues.jsonl")
        );
    }
}
