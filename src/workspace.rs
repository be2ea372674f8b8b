//! Finding the backlog: the `.beads/` directory a command works on.
//!
//! Order: `BEADS_DIR` (what bd and its MCP server set), then `.beads/` in the start
//! directory or any parent, then — from a linked git worktree that has no `.beads/` of
//! its own — the main checkout's `.beads/` (found through the worktree's common dir, so
//! every worktree of a clone shares one backlog). A clone in dedicated-branch mode (a
//! hidden backlog worktree under the git common dir) uses that worktree's `.beads/`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The files of one backlog.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The `.beads` directory.
    pub beads_dir: PathBuf,
    /// The directory holding `.beads` (the repository root, usually).
    pub root: PathBuf,
}

impl Workspace {
    pub fn issues_path(&self) -> PathBuf {
        self.beads_dir.join("issues.jsonl")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.beads_dir.join("issues.jsonl.lock")
    }

    pub fn config_path(&self) -> PathBuf {
        self.beads_dir.join("config.yaml")
    }

    /// Where spool keeps derived, untracked state (caches): under git's common dir when
    /// there is one (shared by all worktrees, never tracked), else inside `.beads/`.
    pub fn state_dir(&self) -> PathBuf {
        match git_common_dir(&self.root) {
            Some(common) => common.join("spool"),
            None => self.beads_dir.join(".spool"),
        }
    }

    /// The name bd would use as a prefix when nothing else decides it.
    pub fn dir_name(&self) -> String {
        self.root
            .canonicalize()
            .unwrap_or_else(|_| self.root.clone())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bd".to_string())
    }

    /// Finds the workspace for `start`, honouring `BEADS_DIR` when `beads_dir_env` is set.
    pub fn discover(start: &Path, beads_dir_env: Option<&Path>) -> Result<Workspace> {
        if let Some(dir) = beads_dir_env {
            let dir = if dir.is_absolute() {
                dir.to_path_buf()
            } else {
                start.join(dir)
            };
            if !dir.is_dir() {
                bail!("BEADS_DIR {} is not a directory", dir.display());
            }
            let root = dir
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| dir.clone());
            return Ok(Workspace {
                beads_dir: dir,
                root,
            });
        }
        if let Some(ws) = Self::find(start) {
            return Ok(ws);
        }
        bail!(
            "no .beads directory found in {} or any parent; run `spool init` to create one",
            start.display()
        )
    }

    /// Like [`Workspace::discover`] without `BEADS_DIR`, returning `None` when nothing is
    /// found.
    pub fn find(start: &Path) -> Option<Workspace> {
        let start = start.canonicalize().unwrap_or_else(|_| start.to_path_buf());
        if let Some(ws) = Self::backlog_branch_workspace(&start) {
            return Some(ws);
        }
        let mut dir = Some(start.as_path());
        while let Some(d) = dir {
            let beads = d.join(".beads");
            if beads.is_dir() {
                return Some(Workspace {
                    beads_dir: beads,
                    root: d.to_path_buf(),
                });
            }
            // A linked worktree: its `.git` is a file pointing into the main repository.
            if d.join(".git").is_file() {
                if let Some(main_root) = main_worktree_root(d) {
                    let beads = main_root.join(".beads");
                    if beads.is_dir() {
                        return Some(Workspace {
                            beads_dir: beads,
                            root: main_root,
                        });
                    }
                }
            }
            dir = d.parent();
        }
        None
    }

    /// In dedicated-branch mode (`spool sync`, docs/sync.md) the backlog of every work
    /// tree of the clone is the one in the hidden worktree
    /// `<git common dir>/spool/backlog-worktree`: once that worktree exists, reads,
    /// writes, locks and commits all go there, and the checkout's `.beads/issues.jsonl`
    /// is only a view of it.
    fn backlog_branch_workspace(start: &Path) -> Option<Workspace> {
        let root = start.ancestors().find(|d| d.join(".git").exists())?;
        let hidden = git_common_dir(root)?.join("spool").join("backlog-worktree");
        let beads = hidden.join(".beads");
        beads.is_dir().then_some(Workspace {
            beads_dir: beads,
            root: hidden,
        })
    }

    /// The directory `spool init` should create `.beads` in: the enclosing git work tree's
    /// root, else `start` itself.
    pub fn init_root(start: &Path) -> PathBuf {
        let start = start.canonicalize().unwrap_or_else(|_| start.to_path_buf());
        let mut dir = Some(start.as_path());
        while let Some(d) = dir {
            if d.join(".git").exists() {
                return d.to_path_buf();
            }
            dir = d.parent();
        }
        start
    }
}

/// Git's common directory for the work tree at `root`: `root/.git` for a normal checkout,
/// the main repository's `.git` for a linked worktree.
pub fn git_common_dir(root: &Path) -> Option<PathBuf> {
    let dot_git = root.join(".git");
    if dot_git.is_dir() {
        return Some(dot_git);
    }
    let gitdir = read_gitdir_file(&dot_git)?;
    // `<common>/worktrees/<name>` holds a `commondir` file with the path to `<common>`.
    let common = std::fs::read_to_string(gitdir.join("commondir")).ok()?;
    let common = common.trim();
    let common = if Path::new(common).is_absolute() {
        PathBuf::from(common)
    } else {
        gitdir.join(common)
    };
    common.canonicalize().ok()
}

fn read_gitdir_file(dot_git: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(dot_git).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("gitdir:"))?.trim();
    let base = dot_git.parent()?;
    let p = if Path::new(path).is_absolute() {
        PathBuf::from(path)
    } else {
        base.join(path)
    };
    p.canonicalize().ok()
}

/// The main checkout of the repository a linked worktree at `root` belongs to.
fn main_worktree_root(root: &Path) -> Option<PathBuf> {
    let common = git_common_dir(root)?;
    if common.file_name()? == ".git" {
        common.parent().map(Path::to_path_buf)
    } else {
        // A bare repository with worktrees: no main checkout holds `.beads`.
        None
    }
}

/// Reads `.beads/config.yaml` keys spool understands. The file is YAML written by bd
/// (`key: value` lines, comments, nested sections we ignore); only top-level scalars are
/// read, which is all bd's own loader needs for these keys.
#[derive(Debug, Default, Clone)]
pub struct BeadsConfig {
    pub issue_prefix: Option<String>,
    pub actor: Option<String>,
}

impl BeadsConfig {
    pub fn load(path: &Path) -> Result<BeadsConfig> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BeadsConfig::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn parse(text: &str) -> BeadsConfig {
        let mut cfg = BeadsConfig::default();
        for line in text.lines() {
            if line.starts_with([' ', '\t', '#', '-']) {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = unquote(strip_comment(value).trim());
            if value.is_empty() {
                continue;
            }
            match key.trim() {
                // bd reads both spellings; `issue-prefix` is the documented one.
                "issue-prefix" => cfg.issue_prefix = Some(value),
                "issue_prefix" => {
                    cfg.issue_prefix.get_or_insert(value);
                }
                "actor" => cfg.actor = Some(value),
                _ => {}
            }
        }
        cfg
    }
}

fn strip_comment(v: &str) -> &str {
    let v = v.trim_start();
    if v.starts_with('"') || v.starts_with('\'') {
        return v;
    }
    match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    }
}

fn unquote(v: &str) -> String {
    let bytes = v.as_bytes();
    if bytes.len() >= 2 && (bytes[0] == b'"' || bytes[0] == b'\'') {
        let q = bytes[0] as char;
        if let Some(end) = v[1..].find(q) {
            return v[1..1 + end].to_string();
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_both_prefix_spellings_with_dash_winning() {
        let c =
            BeadsConfig::parse("# c\nissue_prefix: a\nissue-prefix: \"b\" \nsync:\n  branch: x\n");
        assert_eq!(c.issue_prefix.as_deref(), Some("b"));
        let c = BeadsConfig::parse("issue_prefix: a # note\n");
        assert_eq!(c.issue_prefix.as_deref(), Some("a"));
        let c = BeadsConfig::parse("# issue-prefix: nope\nactor: 'me'\n");
        assert_eq!(c.issue_prefix, None);
        assert_eq!(c.actor.as_deref(), Some("me"));
    }

    #[test]
    fn finds_beads_in_parent_and_through_linked_worktree() {
        let t = tempfile::tempdir().expect("tempdir");
        let main = t.path().join("main");
        std::fs::create_dir_all(main.join(".beads")).expect("mkdir");
        std::fs::create_dir_all(main.join("sub/deeper")).expect("mkdir");
        let ws = Workspace::find(&main.join("sub/deeper")).expect("found");
        assert_eq!(
            ws.beads_dir,
            main.join(".beads").canonicalize().expect("canon")
        );

        // Fake the layout git makes for `git worktree add ../wt`.
        let gitdir = main.join(".git/worktrees/wt");
        std::fs::create_dir_all(&gitdir).expect("mkdir");
        std::fs::write(gitdir.join("commondir"), "../..\n").expect("write");
        let wt = t.path().join("wt");
        std::fs::create_dir_all(&wt).expect("mkdir");
        std::fs::write(wt.join(".git"), format!("gitdir: {}\n", gitdir.display())).expect("write");
        let ws = Workspace::find(&wt).expect("found through worktree");
        assert_eq!(ws.root, main.canonicalize().expect("canon"));
        assert_eq!(
            ws.state_dir(),
            main.join(".git")
                .canonicalize()
                .expect("canon")
                .join("spool")
        );
    }
}
