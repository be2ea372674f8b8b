//! `spool merge` (git's merge driver for the backlog) and `spool resolve` (a backlog that
//! already holds conflict markers). The merge itself is `spool_core::beads::merge`; this
//! is the file handling around it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use spool_core::beads::merge::{merge, resolve, Finding, MergeOutcome};

use super::output::print_json;
use super::Ctx;
use crate::atomic::{write_atomic, FileLock};

/// Exit code for inputs that could not be read or written (git treats any non-zero exit
/// as "conflict" and keeps the file as it was).
const EXIT_ERROR: i32 = 2;

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The common ancestor's version (git's `%O`).
    pub base: PathBuf,
    /// Our version (git's `%A`); the result replaces it.
    pub ours: PathBuf,
    /// Their version (git's `%B`).
    pub theirs: PathBuf,
    /// Accepted and ignored: git's conflict-marker size (`%L`); no markers are written.
    pub marker_size: Option<String>,
    /// The file's path in the repository (git's `%P`), named in messages.
    pub path: Option<String>,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The file with conflict markers (default: this repository's `.beads/issues.jsonl`).
    pub path: Option<PathBuf>,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn print_findings(prefix: &str, out: &MergeOutcome, quiet: bool) {
    for c in &out.conflicts {
        eprintln!("{prefix}: conflict: {c}");
    }
    if !quiet {
        for n in &out.notes {
            eprintln!("{prefix}: {n}");
        }
    }
}

fn findings_json(f: &[Finding]) -> serde_json::Value {
    serde_json::to_value(f).unwrap_or_default()
}

/// Merges the three files and writes the result over `ours`: exit 0 when clean, 1 when a
/// conflict remains (the file then holds the rule's choice for each), 2 when an input
/// could not be read or the result not written (nothing is written then).
pub fn merge_cmd(ctx: &Ctx, a: &MergeArgs) -> Result<i32> {
    let abs = |p: &Path| ctx.cwd.join(p);
    let (base, ours, theirs) = (abs(&a.base), abs(&a.ours), abs(&a.theirs));
    let name = a.path.clone().unwrap_or_else(|| ours.display().to_string());
    let inputs = (|| Ok::<_, anyhow::Error>((read(&base)?, read(&ours)?, read(&theirs)?)))();
    let (b, o, t) = match inputs {
        Ok(i) => i,
        Err(e) => {
            eprintln!("spool merge: error: {e:#}; nothing was written");
            return Ok(EXIT_ERROR);
        }
    };
    let out = merge(&b, &o, &t);
    let written = out.text != o;
    if written {
        if let Err(e) = write_atomic(&ours, &out.text) {
            eprintln!("spool merge: error: {e:#}");
            return Ok(EXIT_ERROR);
        }
    }
    if ctx.global.json {
        print_json(&json!({
            "path": name,
            "written": written,
            "clean": out.is_clean(),
            "conflicts": findings_json(&out.conflicts),
            "notes": findings_json(&out.notes),
        }))?;
    }
    print_findings(&format!("spool merge: {name}"), &out, ctx.global.quiet);
    Ok(if out.is_clean() { 0 } else { 1 })
}

/// Rewrites a file with conflict markers as the merge of its sides: exit 0 when clean,
/// 1 when a conflict remains (decided by the rules and reported).
pub fn resolve_cmd(ctx: &Ctx, a: &ResolveArgs) -> Result<i32> {
    let ws = ctx.workspace().ok();
    let path = match (&a.path, &ws) {
        (Some(p), _) => ctx.cwd.join(p),
        (None, Some(ws)) => ws.issues_path(),
        (None, None) => anyhow::bail!(
            "no .beads/ directory here or above {}; name the file to resolve",
            ctx.cwd.display()
        ),
    };
    // The repository's backlog is written under its write lock, like every backlog write.
    let backlog_ws = ws.filter(|ws| same_file(&ws.issues_path(), &path));
    let _lock = match &backlog_ws {
        Some(ws) => Some(FileLock::acquire(
            &ws.lock_path(),
            std::time::Duration::from_secs(30),
        )?),
        None => None,
    };
    let bytes = read(&path)?;
    let resolved = resolve(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let out = &resolved.outcome;
    let written = resolved.hunks > 0 && out.text != bytes;
    if written {
        if let Some(ws) = &backlog_ws {
            crate::write_index::forget(ws);
        }
        write_atomic(&path, &out.text)?;
    }
    print_findings(
        &format!("spool resolve: {}", path.display()),
        out,
        ctx.global.quiet,
    );
    if ctx.global.json {
        print_json(&json!({
            "path": path.display().to_string(),
            "hunks": resolved.hunks,
            "hunks_with_base": resolved.hunks_with_base,
            "written": written,
            "clean": out.is_clean(),
            "conflicts": findings_json(&out.conflicts),
            "notes": findings_json(&out.notes),
        }))?;
    } else if !ctx.global.quiet {
        if resolved.hunks == 0 {
            println!("{}: no conflict markers; nothing to do", path.display());
        } else {
            println!(
                "{}: merged {} conflict hunk{} ({} with a base section){}",
                path.display(),
                resolved.hunks,
                if resolved.hunks == 1 { "" } else { "s" },
                resolved.hunks_with_base,
                if out.is_clean() {
                    String::new()
                } else {
                    format!(
                        "; {} conflict(s) decided by rule, listed above",
                        out.conflicts.len()
                    )
                }
            );
        }
    }
    Ok(if out.is_clean() { 0 } else { 1 })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}
