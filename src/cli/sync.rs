//! `spool sync`: the command around [`crate::sync`] — options from flags and `[sync]` in
//! `.spool/config.toml`, dedicated-branch setup, and the report for people or `--json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::output::print_json;
use super::Ctx;
use crate::daemon::config::{self, SyncConfig};
use crate::git::backlog_branch::{backlog_worktree_path, DEFAULT_BACKLOG_BRANCH};
use crate::sync::{
    enable_backlog_branch, sync_backlog, SyncMode, SyncOptions, SyncReport, DEFAULT_MAX_ATTEMPTS,
};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The remote to sync with (a configured remote's name). Default: `[sync] remote`,
    /// else the branch's upstream remote, else `origin`.
    #[arg(long)]
    pub remote: Option<String>,
    /// The remote branch (in branch mode: the backlog branch). Default: `[sync] branch`,
    /// else the branch's upstream (branch mode: `spool/backlog`).
    #[arg(long)]
    pub branch: Option<String>,
    /// `in-place` (the backlog is committed on the checked-out branch) or `branch` (on a
    /// dedicated branch in a hidden worktree). Default: `[sync] mode`, else whichever
    /// this clone already uses.
    #[arg(long, value_parser = ["in-place", "branch"])]
    pub mode: Option<String>,
    /// Fetch–merge–push rounds when the push is rejected. Default: `[sync]
    /// max_attempts`, else 5.
    #[arg(long)]
    pub max_attempts: Option<u32>,
}

/// The work tree containing `cwd`, where `.spool/config.toml` is read.
fn checkout_root(cwd: &Path) -> Result<PathBuf> {
    let repo = crate::git::open(cwd)?;
    let dir = repo
        .workdir()
        .map(Path::to_path_buf)
        .with_context(|| format!("{}: spool sync needs a work tree", cwd.display()))?;
    Ok(dir.canonicalize().unwrap_or(dir))
}

fn load_sync_config(root: &Path) -> Result<SyncConfig> {
    let path = root.join(".spool").join("config.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(config::parse(&path.display().to_string(), &text)?.sync),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SyncConfig::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn sync_cmd(ctx: &Ctx, a: &SyncArgs) -> Result<i32> {
    let checkout = checkout_root(&ctx.cwd)?;
    let cfg = load_sync_config(&checkout)?;
    let hidden = backlog_worktree_path(&checkout)?;
    let mode = match a.mode.as_deref().or(cfg.mode.as_deref()) {
        Some(m) => SyncMode::parse(m).with_context(|| format!("unknown sync mode {m:?}"))?,
        None if hidden.exists() => SyncMode::Branch,
        None => SyncMode::InPlace,
    };
    let remote = a.remote.clone().or(cfg.remote.clone());
    let branch = a.branch.clone().or(cfg.branch.clone());
    let max_attempts = a
        .max_attempts
        .or(cfg.max_attempts)
        .unwrap_or(DEFAULT_MAX_ATTEMPTS);
    let (ws, setup, branch) = match mode {
        SyncMode::Branch => {
            let ws_actor = ctx.actor(None);
            let sig = crate::daemon::issues::signature(&ws_actor, ctx.now);
            let backlog_branch = branch.unwrap_or_else(|| DEFAULT_BACKLOG_BRANCH.to_string());
            let (ws, setup) = enable_backlog_branch(
                &checkout,
                remote.as_deref().unwrap_or("origin"),
                Some(&backlog_branch),
                &sig,
            )?;
            (ws, Some(setup), Some(backlog_branch))
        }
        SyncMode::InPlace => {
            if hidden.exists() {
                anyhow::bail!(
                    "this clone keeps its backlog on a dedicated branch ({}); sync it with --mode branch, or remove that worktree (`git worktree remove`) to go back",
                    hidden.display()
                );
            }
            (ctx.workspace()?, None, branch)
        }
    };
    let actor = ctx.actor(Some(&ws));
    let opts = SyncOptions {
        remote,
        branch,
        max_attempts,
        signature: crate::daemon::issues::signature(&actor, ctx.now),
    };
    match sync_backlog(&ws, &opts) {
        Ok(report) => {
            if ctx.global.json {
                print_json(&json!({ "ok": true, "report": report, "branch_setup": setup }))?;
            } else if !ctx.global.quiet {
                print_report(&report);
            }
            Ok(0)
        }
        Err(failure) => {
            if ctx.global.json {
                print_json(&json!({
                    "ok": false,
                    "error": { "kind": failure.error.kind(), "message": failure.error.to_string() },
                    "report": failure.report,
                    "branch_setup": setup,
                }))?;
            }
            eprintln!("error: spool sync: {}", failure.error);
            if let Some(c) = &failure.report.committed {
                eprintln!(
                    "spool sync: the backlog's changes are committed locally ({}); nothing was lost",
                    short(c)
                );
            }
            Ok(1)
        }
    }
}

fn short(oid: &str) -> &str {
    &oid[..oid.len().min(10)]
}

fn print_report(r: &SyncReport) {
    let target = format!("{}/{}", r.remote, r.branch);
    if let Some(c) = &r.committed {
        println!("committed the backlog ({})", short(c));
    }
    match (&r.fetched, r.merge) {
        (None, _) => println!("{target}: no such branch yet"),
        (Some(_), Some(kind)) => println!(
            "{target}: {}",
            match kind {
                crate::git::IntegrationKind::UpToDate => "nothing new",
                crate::git::IntegrationKind::FastForward => "fast-forwarded",
                crate::git::IntegrationKind::Merged => "merged",
            }
        ),
        (Some(_), None) => {}
    }
    for c in &r.backlog.conflicts {
        println!("  conflict decided by rule: {c}");
    }
    match &r.pushed {
        Some(p) => println!("pushed {} to {target}", short(p)),
        None => println!("{target} already has everything"),
    }
    if r.attempts > 1 {
        println!("({} rounds: the remote moved meanwhile)", r.attempts);
    }
}
