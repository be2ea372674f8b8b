//! Registering `spool merge` as git's merge driver for the backlog.
//!
//! Two pieces make git use it: the attribute `.beads/issues.jsonl merge=spool` in the work
//! tree's `.gitattributes` (tracked, so every clone asks for the driver; a bare
//! repository's `info/attributes`), and the driver
//! itself in the repository's own config (`merge.spool.name`, `merge.spool.driver`; git
//! never takes commands from tracked files, so each clone registers it). Without the
//! config, git falls back to its line merge for the file, so a clone that has not run
//! `spool hooks install` still merges, only worse.
//!
//! The config is written with `git config`, whose writer takes git's own `config.lock`,
//! so a concurrent git process never loses its change or ours.

use std::path::{Path, PathBuf};

use super::{Git, GitError, Result};

/// The attribute line spool adds.
pub const ATTRIBUTE_LINE: &str = ".beads/issues.jsonl merge=spool";
/// The driver's human-readable name in git's config.
pub const DRIVER_NAME: &str = "spool: merge the backlog per issue and field";

/// What an install, uninstall or list found and did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DriverReport {
    /// The `.gitattributes` file.
    pub attributes_path: PathBuf,
    /// Whether it carries [`ATTRIBUTE_LINE`].
    pub attribute: bool,
    /// `merge.spool.driver` as configured, if it is.
    pub driver: Option<String>,
    /// Whether `driver` calls the given spool binary (what install would write now).
    pub current: bool,
    /// `added`, `unchanged`, `updated`, `removed`, `absent` or `listed`.
    pub action: &'static str,
}

/// The driver command for `spool_bin`: git runs it with `sh -c`, so the path is quoted.
pub fn driver_command(spool_bin: &Path) -> String {
    format!(
        "{} merge %O %A %B",
        shell_quote(&spool_bin.to_string_lossy())
    )
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Whether `text` (a `.gitattributes`) has the attribute line.
pub fn has_attribute(text: &str) -> bool {
    text.lines().any(|l| l.trim() == ATTRIBUTE_LINE)
}

/// `text` with the attribute line appended; `None` when it is already there.
pub fn add_attribute(text: &str) -> Option<String> {
    if has_attribute(text) {
        return None;
    }
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(ATTRIBUTE_LINE);
    out.push('\n');
    Some(out)
}

/// `text` without the attribute line (every other line byte for byte); `None` when it
/// was not there.
pub fn remove_attribute(text: &str) -> Option<String> {
    if !has_attribute(text) {
        return None;
    }
    Some(
        text.split_inclusive('\n')
            .filter(|l| l.trim() != ATTRIBUTE_LINE)
            .collect(),
    )
}

/// The work tree's `.gitattributes`; in a bare repository, `info/attributes`, which git
/// also reads.
fn attributes_path(repo_dir: &Path) -> Result<PathBuf> {
    let repo = super::open(repo_dir)?;
    let path = match repo.workdir() {
        Some(root) => root.join(".gitattributes"),
        None => repo.git_dir().join("info").join("attributes"),
    };
    Ok(std::path::absolute(&path).unwrap_or(path))
}

fn read_text(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8(b).map(Some).map_err(|_| GitError::Hook {
            path: path.to_path_buf(),
            reason: "is not UTF-8 text; spool leaves it alone".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(GitError::io(format!("reading {}", path.display()), e)),
    }
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    crate::atomic::write_atomic(path, text.as_bytes()).map_err(|e| GitError::Hook {
        path: path.to_path_buf(),
        reason: format!("{e:#}"),
    })
}

fn configured_driver(git: &Git) -> Result<Option<String>> {
    let out = git.output(["config", "--local", "--get", "merge.spool.driver"])?;
    // Exit 1: the key is not set.
    Ok(out
        .success()
        .then(|| out.stdout_str().trim_end_matches('\n').to_string()))
}

/// Adds the attribute line and registers the driver calling `spool_bin`. Running it
/// twice changes nothing.
pub fn install_merge_driver(repo_dir: &Path, spool_bin: &Path) -> Result<DriverReport> {
    let path = attributes_path(repo_dir)?;
    let git = Git::new(repo_dir);
    let want = driver_command(spool_bin);
    let before = configured_driver(&git)?;
    let text = read_text(&path)?;
    let added = match add_attribute(text.as_deref().unwrap_or("")) {
        Some(new) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| GitError::io(format!("creating {}", dir.display()), e))?;
            }
            write_text(&path, &new)?;
            true
        }
        None => false,
    };
    if before.as_deref() != Some(want.as_str()) {
        git.run(["config", "--local", "merge.spool.name", DRIVER_NAME])?;
        git.run(["config", "--local", "merge.spool.driver", &want])?;
    }
    let action = match (added, &before) {
        (false, Some(d)) if *d == want => "unchanged",
        (_, Some(_)) => "updated",
        (_, None) => "added",
    };
    Ok(DriverReport {
        attributes_path: path,
        attribute: true,
        driver: Some(want),
        current: true,
        action,
    })
}

/// Removes the attribute line (deleting `.gitattributes` when nothing else is left in
/// it) and the driver's config section.
pub fn uninstall_merge_driver(repo_dir: &Path) -> Result<DriverReport> {
    let path = attributes_path(repo_dir)?;
    let git = Git::new(repo_dir);
    let mut changed = false;
    if let Some(rest) = read_text(&path)?.as_deref().and_then(remove_attribute) {
        if rest.is_empty() {
            std::fs::remove_file(&path)
                .map_err(|e| GitError::io(format!("deleting {}", path.display()), e))?;
        } else {
            write_text(&path, &rest)?;
        }
        changed = true;
    }
    let has_section = git
        .output(["config", "--local", "--get-regexp", r"^merge\.spool\."])?
        .success();
    if has_section {
        git.run(["config", "--local", "--remove-section", "merge.spool"])?;
        changed = true;
    }
    Ok(DriverReport {
        attributes_path: path,
        attribute: false,
        driver: None,
        current: false,
        action: if changed { "removed" } else { "absent" },
    })
}

/// Where the driver stands, judging "current" against `spool_bin`.
pub fn merge_driver_state(repo_dir: &Path, spool_bin: &Path) -> Result<DriverReport> {
    let path = attributes_path(repo_dir)?;
    let git = Git::new(repo_dir);
    let attribute = read_text(&path)?.as_deref().is_some_and(has_attribute);
    let driver = configured_driver(&git)?;
    let current = attribute && driver.as_deref() == Some(driver_command(spool_bin).as_str());
    Ok(DriverReport {
        attributes_path: path,
        attribute,
        driver,
        current,
        action: "listed",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_line_is_added_once_and_removed_exactly() {
        let user = "*.png binary\r\n# comment";
        let added = add_attribute(user).expect("added");
        assert_eq!(
            added,
            "*.png binary\r\n# comment\n.beads/issues.jsonl merge=spool\n"
        );
        assert_eq!(add_attribute(&added), None);
        assert_eq!(
            remove_attribute(&added).as_deref(),
            Some("*.png binary\r\n# comment\n")
        );
        assert_eq!(remove_attribute(user), None);
        assert_eq!(
            add_attribute("").as_deref(),
            Some(".beads/issues.jsonl merge=spool\n")
        );
        assert_eq!(
            remove_attribute(".beads/issues.jsonl merge=spool\n").as_deref(),
            Some("")
        );
    }

    #[test]
    fn driver_path_is_quoted_for_the_shell() {
        assert_eq!(
            driver_command(Path::new("/usr/bin/spool")),
            "/usr/bin/spool merge %O %A %B"
        );
        assert_eq!(
            driver_command(Path::new("/home/a b/it's/spool")),
            r"'/home/a b/it'\''s/spool' merge %O %A %B"
        );
    }
}
