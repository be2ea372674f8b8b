//! Creating a repository and reading its history, for commands that show a repository
//! to a person (`spool demo`).

use std::path::Path;

use super::{Git, GitError, Result};

/// Makes `dir` a new git repository whose unborn branch is `branch`.
///
/// Through the `git` binary: gix's `init` does not take the initial branch name, and a
/// repository made here must look to the user exactly like one `git init` made.
pub fn init_repo(dir: &Path, branch: &str) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| GitError::io(format!("creating {}", dir.display()), e))?;
    Git::new(dir).run([
        "init".as_ref(),
        "--quiet".as_ref(),
        "-b".as_ref(),
        std::ffi::OsStr::new(branch),
    ])?;
    Ok(())
}

/// The newest `n` commits reachable from HEAD, newest first, as `git log --oneline`
/// prints them: abbreviated id and subject line.
pub fn log_oneline(repo_dir: &Path, n: usize) -> Result<Vec<String>> {
    let repo = super::open(repo_dir)?;
    let Some(head) = super::head_commit(repo_dir)? else {
        return Ok(Vec::new());
    };
    let walk = repo
        .rev_walk([head])
        .all()
        .map_err(|e| GitError::gix("walking HEAD", e))?;
    let mut out = Vec::new();
    for info in walk.take(n) {
        let info = info.map_err(|e| GitError::gix("walking HEAD", e))?;
        let commit = info
            .object()
            .map_err(|e| GitError::gix(format!("reading commit {}", info.id), e))?;
        let message = commit
            .message_raw()
            .map_err(|e| GitError::gix(format!("reading commit {}", info.id), e))?;
        let subject = String::from_utf8_lossy(message)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        out.push(format!("{} {subject}", info.id.to_hex_with_len(7)));
    }
    Ok(out)
}
