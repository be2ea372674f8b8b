//! Installing spool's git hooks as a marked section inside the repository's hook files.
//!
//! Hook files often belong to someone else already (husky, pre-commit, a team script), so
//! spool never replaces one: it inserts a section between `# >>> spool hook >>>` and
//! `# <<< spool hook <<<` right after the shebang, and uninstalling cuts exactly those
//! lines out again, leaving the user's file byte for byte as it was. The section runs
//! first, in a subshell with stdin closed, so it cannot exit the user's script early,
//! change its variables or eat its input (post-rewrite reads stdin).
//!
//! The section bodies are the shipped scripts in `hooks/` (each is also a complete hook
//! that works when copied by hand); install fills in the absolute path of the installing
//! `spool` binary, with `spool` on `PATH` as the fallback.

use std::path::{Path, PathBuf};

use super::{GitError, Result};

/// The hooks spool installs.
pub const HOOK_NAMES: [&str; 4] = ["pre-commit", "post-merge", "post-checkout", "post-rewrite"];

pub const BEGIN_MARKER: &str = "# >>> spool hook >>>";
pub const END_MARKER: &str = "# <<< spool hook <<<";
/// In the section of a hook file spool created, so uninstall knows it may delete it.
const CREATED_LINE: &str = "# (this file was created by `spool hooks install`)";
/// The shebang of hook files spool creates.
const NEW_FILE_SHEBANG: &str = "#!/bin/sh\n";
const BIN_PLACEHOLDER: &str = "@SPOOL_BIN@";

fn template(name: &str) -> Option<&'static str> {
    match name {
        "pre-commit" => Some(include_str!("../../hooks/pre-commit")),
        "post-merge" => Some(include_str!("../../hooks/post-merge")),
        "post-checkout" => Some(include_str!("../../hooks/post-checkout")),
        "post-rewrite" => Some(include_str!("../../hooks/post-rewrite")),
        _ => None,
    }
}

/// Where a hook file stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookState {
    /// No hook file.
    Absent,
    /// A hook file without spool's section.
    UserOnly,
    /// spool's section is there; `current` says whether it matches what install would write
    /// now, `shared` whether the file also holds someone else's hook.
    Installed { current: bool, shared: bool },
}

/// One hook after install, uninstall or list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HookReport {
    pub name: &'static str,
    pub path: PathBuf,
    pub state: HookState,
    /// What this call did: `created`, `added`, `updated`, `unchanged`, `removed`,
    /// `deleted`, `absent` or `listed`.
    pub action: &'static str,
}

/// The directory git runs hooks from: `core.hooksPath` if set (relative to the work tree
/// root, as git resolves it), else `<common-dir>/hooks`, shared by linked worktrees.
pub fn hooks_dir(repo_dir: &Path) -> Result<PathBuf> {
    let repo = super::open(repo_dir)?;
    let configured = repo
        .config_snapshot()
        .trusted_path("core.hooksPath")
        .map_err(|e| GitError::gix("reading core.hooksPath", e))?;
    let dir = match configured {
        Some(p) if p.is_absolute() => p,
        Some(p) => match repo.workdir() {
            Some(w) => w.join(p),
            None => repo.git_dir().join(p),
        },
        None => repo.common_dir().join("hooks"),
    };
    Ok(std::path::absolute(&dir).unwrap_or(dir))
}

/// The file a running daemon watches; the post-* hooks touch it after git changed the
/// checkout, so the daemon rescans without waiting for its slow poll.
pub fn rescan_path(repo_dir: &Path) -> Result<PathBuf> {
    Ok(super::spool_dir(repo_dir)?.join("rescan"))
}

/// Installs (or refreshes) spool's section in every hook of [`HOOK_NAMES`], calling
/// `spool_bin` (normally the running binary). Running it twice changes nothing. Every
/// hook is planned before any is written, so a hook spool cannot edit (another language,
/// a damaged section) leaves all of them untouched.
pub fn install_hooks(repo_dir: &Path, spool_bin: &Path) -> Result<Vec<HookReport>> {
    let dir = hooks_dir(repo_dir)?;
    let mut plans = Vec::new();
    for name in HOOK_NAMES {
        let path = dir.join(name);
        let existing = read_existing(&path)?;
        let at = |reason: String| GitError::Hook {
            path: path.clone(),
            reason,
        };
        let (text, action) = match &existing {
            None => (new_hook_file(&section(name, spool_bin, true)?), "created"),
            Some(old) => {
                let found = find_section(old).map_err(at)?;
                let created = found.is_some_and(|(s, e)| old[s..e].contains(CREATED_LINE));
                let new = insert_section(old, &section(name, spool_bin, created)?).map_err(at)?;
                let action = if &new == old {
                    "unchanged"
                } else if found.is_some() {
                    "updated"
                } else {
                    "added"
                };
                (new, action)
            }
        };
        plans.push((name, path, existing, text, action));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| GitError::io(format!("creating {}", dir.display()), e))?;
    let mut reports = Vec::new();
    for (name, path, existing, text, action) in plans {
        if existing.as_deref() != Some(text.as_str()) {
            write_hook(&path, &text)?;
        }
        ensure_executable(&path)?;
        reports.push(HookReport {
            name,
            state: state_of(Some(&text), name, spool_bin, &path)?,
            path,
            action,
        });
    }
    Ok(reports)
}

/// Removes spool's section from every hook, deleting a hook file only if spool created it
/// and nothing else was added since.
pub fn uninstall_hooks(repo_dir: &Path) -> Result<Vec<HookReport>> {
    let dir = hooks_dir(repo_dir)?;
    let mut reports = Vec::new();
    for name in HOOK_NAMES {
        let path = dir.join(name);
        let existing = read_existing(&path)?;
        let (state, action) = match existing {
            None => (HookState::Absent, "absent"),
            Some(old) => match remove_section(&old).map_err(|reason| GitError::Hook {
                path: path.clone(),
                reason,
            })? {
                Removal::NotThere => (HookState::UserOnly, "unchanged"),
                Removal::DeleteFile => {
                    std::fs::remove_file(&path)
                        .map_err(|e| GitError::io(format!("deleting {}", path.display()), e))?;
                    (HookState::Absent, "deleted")
                }
                Removal::Keep(rest) => {
                    write_hook(&path, &rest)?;
                    (HookState::UserOnly, "removed")
                }
            },
        };
        reports.push(HookReport {
            name,
            path,
            state,
            action,
        });
    }
    Ok(reports)
}

/// Reports each hook's state, judging "current" against what installing `spool_bin`
/// would write.
pub fn list_hooks(repo_dir: &Path, spool_bin: &Path) -> Result<Vec<HookReport>> {
    let dir = hooks_dir(repo_dir)?;
    let mut reports = Vec::new();
    for name in HOOK_NAMES {
        let path = dir.join(name);
        let existing = read_existing(&path)?;
        reports.push(HookReport {
            name,
            state: state_of(existing.as_deref(), name, spool_bin, &path)?,
            path,
            action: "listed",
        });
    }
    Ok(reports)
}

fn state_of(text: Option<&str>, name: &str, spool_bin: &Path, path: &Path) -> Result<HookState> {
    let Some(text) = text else {
        return Ok(HookState::Absent);
    };
    let found = find_section(text).map_err(|reason| GitError::Hook {
        path: path.to_path_buf(),
        reason,
    })?;
    let Some((start, end)) = found else {
        return Ok(HookState::UserOnly);
    };
    let created = text[start..end].contains(CREATED_LINE);
    let current = text[start..end] == section(name, spool_bin, created)?;
    let rest = format!("{}{}", &text[..start], &text[end..]);
    let shared = !(created && rest == NEW_FILE_SHEBANG);
    Ok(HookState::Installed { current, shared })
}

/// spool's section for hook `name`, calling `spool_bin`.
pub fn section(name: &str, spool_bin: &Path, created: bool) -> Result<String> {
    let problem = |reason: &str| GitError::Hook {
        path: name.into(),
        reason: reason.to_string(),
    };
    let tpl = template(name).ok_or_else(|| problem("is not a hook spool installs"))?;
    let (start, end) = find_section(tpl)
        .map_err(|r| problem(&r))?
        .ok_or_else(|| problem("shipped hook template has no spool section"))?;
    let bin = spool_bin.to_str().ok_or_else(|| GitError::BadPath {
        path: spool_bin.to_path_buf(),
        reason: "spool's path is not valid UTF-8; hooks cannot name it",
    })?;
    let mut body = tpl[start..end].replace(BIN_PLACEHOLDER, &shell_quote(bin));
    if created {
        let after_begin = BEGIN_MARKER.len() + 1;
        body.insert_str(after_begin, &format!("{CREATED_LINE}\n"));
    }
    Ok(body)
}

fn new_hook_file(section: &str) -> String {
    format!("{NEW_FILE_SHEBANG}{section}")
}

/// `s` in single quotes, safe to paste into a shell script.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Byte range of spool's section in `text`: from the start of the begin-marker line to
/// just after the end-marker line's newline.
pub fn find_section(text: &str) -> std::result::Result<Option<(usize, usize)>, String> {
    let mut start = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == BEGIN_MARKER {
            if start.is_some() {
                return Err(damaged("has two spool begin markers"));
            }
            start = Some(offset);
        } else if bare == END_MARKER {
            let Some(s) = start else {
                return Err(damaged("has a spool end marker without a begin marker"));
            };
            return Ok(Some((s, offset + line.len())));
        }
        offset += line.len();
    }
    match start {
        Some(_) => Err(damaged("has a spool begin marker without an end marker")),
        None => Ok(None),
    }
}

fn damaged(reason: &str) -> String {
    format!("{reason}; fix or remove spool's section by hand")
}

/// `existing` with `section` in place: replacing spool's old section where it is, or
/// inserted right after the shebang line. Refuses hooks in other languages, where shell
/// lines would break the user's script.
pub fn insert_section(existing: &str, section: &str) -> std::result::Result<String, String> {
    if let Some((s, e)) = find_section(existing)? {
        return Ok(format!("{}{section}{}", &existing[..s], &existing[e..]));
    }
    if !existing.starts_with("#!") {
        // No shebang: git runs it with the shell.
        return Ok(format!("{section}{existing}"));
    }
    let first_line_end = existing.find('\n').map(|i| i + 1);
    let shebang = &existing[..first_line_end.unwrap_or(existing.len())];
    if !is_shell_shebang(shebang) {
        return Err(format!(
            "runs {:?}, not a shell; add spool's hook to it by hand (see `hooks/` in spool's sources)",
            shebang.trim()
        ));
    }
    match first_line_end {
        Some(i) => Ok(format!("{}{section}{}", &existing[..i], &existing[i..])),
        None => Err("is a shebang line without a newline; add one and install again".into()),
    }
}

/// Whether a `#!` line runs a POSIX-compatible shell (directly or through `env`).
fn is_shell_shebang(line: &str) -> bool {
    let mut words = line.trim_start_matches("#!").split_whitespace();
    let Some(program) = words.next() else {
        return false;
    };
    let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
    let mut interpreter = base(program);
    if interpreter == "env" {
        match words.find(|w| !w.starts_with('-')) {
            Some(w) => interpreter = base(w),
            None => return false,
        }
    }
    matches!(
        interpreter.as_str(),
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "ash" | "busybox"
    )
}

/// What uninstalling does to a hook file.
#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    /// No spool section.
    NotThere,
    /// spool created the file and nothing else is in it.
    DeleteFile,
    /// The file without spool's section.
    Keep(String),
}

/// `text` without spool's section (see [`Removal`]).
pub fn remove_section(text: &str) -> std::result::Result<Removal, String> {
    let Some((s, e)) = find_section(text)? else {
        return Ok(Removal::NotThere);
    };
    let created = text[s..e].contains(CREATED_LINE);
    let rest = format!("{}{}", &text[..s], &text[e..]);
    if created && rest == NEW_FILE_SHEBANG {
        return Ok(Removal::DeleteFile);
    }
    Ok(Removal::Keep(rest))
}

fn read_existing(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| GitError::BadPath {
                path: path.to_path_buf(),
                reason: "is not UTF-8 text; not editing it",
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(GitError::io(format!("reading {}", path.display()), e)),
    }
}

fn write_hook(path: &Path, text: &str) -> Result<()> {
    crate::atomic::write_atomic(path, text.as_bytes()).map_err(|e| GitError::Gix {
        what: format!("writing {}", path.display()),
        source: e.into(),
    })
}

/// Git skips hooks that are not executable; keep the user's other permission bits.
fn ensure_executable(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| GitError::io(format!("reading {}", path.display()), e))?;
        let mode = meta.permissions().mode();
        let wanted = mode | ((mode & 0o444) >> 2) | 0o100;
        if wanted != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))
                .map_err(|e| GitError::io(format!("making {} executable", path.display()), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIN: &str = "/opt/spool's bin/spool";

    #[test]
    fn inserting_then_removing_restores_the_file_byte_for_byte() {
        let user = "#!/usr/bin/env bash\nset -e\nnpm test\nexit 0\n";
        let sec = section("pre-commit", Path::new(BIN), false).expect("section");
        let with = insert_section(user, &sec).expect("insert");
        assert!(with.starts_with("#!/usr/bin/env bash\n# >>> spool hook >>>\n"));
        assert!(with.ends_with("# <<< spool hook <<<\nset -e\nnpm test\nexit 0\n"));
        assert_eq!(
            insert_section(&with, &sec).expect("again"),
            with,
            "idempotent"
        );
        assert_eq!(
            remove_section(&with).expect("remove"),
            Removal::Keep(user.to_string())
        );
        assert_eq!(remove_section(user).expect("remove"), Removal::NotThere);
    }

    #[test]
    fn the_binary_path_is_shell_quoted() {
        let sec = section("pre-commit", Path::new(BIN), false).expect("section");
        assert!(
            sec.contains(r"spool_bin='/opt/spool'\''s bin/spool'"),
            "{sec}"
        );
        assert!(!sec.contains(BIN_PLACEHOLDER));
    }

    #[test]
    fn a_created_file_is_deleted_only_while_it_holds_nothing_else() {
        let sec = section("post-merge", Path::new(BIN), true).expect("section");
        let file = new_hook_file(&sec);
        assert_eq!(remove_section(&file).expect("remove"), Removal::DeleteFile);
        let edited = format!("{file}echo mine\n");
        assert_eq!(
            remove_section(&edited).expect("remove"),
            Removal::Keep("#!/bin/sh\necho mine\n".into())
        );
    }

    #[test]
    fn hooks_in_other_languages_and_damaged_sections_are_refused() {
        let sec = section("pre-commit", Path::new(BIN), false).expect("section");
        assert!(insert_section("#!/usr/bin/env python3\nprint(1)\n", &sec).is_err());
        assert!(insert_section("#!/usr/bin/node\n", &sec).is_err());
        assert!(insert_section("#!/bin/sh -e\nx\n", &sec).is_ok());
        assert!(insert_section("echo no shebang\n", &sec)
            .expect("ok")
            .starts_with(BEGIN_MARKER));
        let half = format!("#!/bin/sh\n{BEGIN_MARKER}\necho\n");
        assert!(insert_section(&half, &sec).is_err());
        assert!(remove_section(&half).is_err());
    }
}
