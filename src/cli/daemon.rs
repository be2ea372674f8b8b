//! `spool up` (the daemon, in the foreground), `spool status` (its runs), and the
//! `verify-commits` check the shipped `implement` template calls.

use super::Ctx;
use crate::daemon::agent::{self, AgentDef};
use crate::daemon::config::{self, Config, DEFAULT_CONFIG};
use crate::daemon::{instance, service};
use crate::store::{Durability, Store};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::json;
use spool_core::workflow::state::AttemptPhase;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Seconds running steps get to finish after Ctrl-C or SIGTERM; then they are stopped
    /// and resumed by the next `spool up`.
    #[arg(long, default_value_t = 10)]
    pub grace_secs: u64,
    /// Milliseconds between safety-net rescans of the backlog.
    #[arg(long, default_value_t = 2000)]
    pub rescan_ms: u64,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyCommitsArgs {
    /// The issue whose run branch (`spool/<id>`) is checked.
    pub id: String,
    /// The commit the run started from.
    pub base: String,
}

#[derive(Debug, Clone, Args)]
pub struct AgentStepArgs {
    /// The agent as JSON (`{"kind": ..., "params": {...}}`), as the daemon passes it.
    pub agent: String,
    /// The template step (plan, implement, test).
    pub step: String,
    /// The prompt.
    pub prompt: String,
}

/// Reads `.spool/config.toml`, writing the commented default first if there is none.
fn load_config(root: &Path) -> Result<(Config, PathBuf)> {
    let path = root.join(".spool").join("config.toml");
    if !path.exists() {
        std::fs::create_dir_all(root.join(".spool"))
            .with_context(|| format!("creating {}", root.join(".spool").display()))?;
        crate::atomic::write_atomic(&path, DEFAULT_CONFIG.as_bytes())?;
        eprintln!("spool up: wrote a default {}", path.display());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let config = config::parse(&path.display().to_string(), &text)?;
    Ok((config, path))
}

fn default_actor() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("spool@{host}")
}

pub fn up_cmd(ctx: &Ctx, args: &UpArgs) -> Result<i32> {
    let ws = ctx.workspace()?;
    let (config, config_path) = load_config(&ws.root)?;
    let lock = instance::acquire(&ws.state_dir())?;
    let actor = config.actor.clone().unwrap_or_else(default_actor);
    let agent = match config.agents.get("default") {
        Some(a) => a.clone(),
        None => match std::env::var("SPOOL_AGENT") {
            Ok(a) if !a.is_empty() => AgentDef::command(&a),
            _ => bail!(
                "no agent: set SPOOL_AGENT to the agent program, or configure [agents.default] in {}",
                ws.root.join(".spool/config.toml").display()
            ),
        },
    };
    let opts = service::Options {
        ws,
        config,
        config_path,
        actor,
        agent,
        spool_exe: std::env::current_exe().context("finding the spool executable")?,
        grace: Duration::from_secs(args.grace_secs),
        rescan: Duration::from_millis(args.rescan_ms.max(10)),
        quiet: ctx.global.quiet,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        let stop = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        service::run(opts, stop).await
    })?;
    drop(lock);
    Ok(0)
}

/// Age in whole seconds from an RFC 3339 time, when it parses.
fn age_secs(created: &str, now: DateTime<Utc>) -> Option<i64> {
    DateTime::parse_from_rfc3339(created)
        .ok()
        .map(|t| (now - t.with_timezone(&Utc)).num_seconds().max(0))
}

pub fn status_cmd(ctx: &Ctx) -> Result<i32> {
    let root = super::run::repo_root(&ctx.cwd).context("not inside a git repository")?;
    let common = crate::workspace::git_common_dir(&root)
        .with_context(|| format!("cannot find git's directory for {}", root.display()))?;
    let db = crate::engine::default_db_path(&common);
    let mut rows = Vec::new();
    if db.exists() {
        let store = Store::open(&db, Durability::Full)
            .with_context(|| format!("opening {}", db.display()))?;
        for r in store.list_runs(None)? {
            let state = store.load_state(&r.run_id)?.map(|(_, s)| s);
            let current: Vec<String> = state
                .as_ref()
                .map(|s| {
                    s.activities
                        .values()
                        .map(|pa| match pa.phase {
                            AttemptPhase::Backoff { .. } => {
                                format!("{} (waiting to retry)", pa.activity_id)
                            }
                            _ => format!("{} (attempt {})", pa.activity_id, pa.attempt),
                        })
                        .collect()
                })
                .unwrap_or_default();
            rows.push(json!({
                "issue": r.workflow_id,
                "run_id": r.run_id,
                "template": r.workflow_type,
                "status": r.status,
                "current": current,
                "age_secs": age_secs(&r.created_at, ctx.now),
                "created_at": r.created_at,
                "closed_at": r.closed_at,
            }));
        }
    }
    if ctx.global.json {
        println!("{}", json!({ "runs": rows }));
        return Ok(0);
    }
    if rows.is_empty() {
        println!("no runs");
    }
    for r in &rows {
        let current: Vec<&str> = r["current"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        println!(
            "{:<16} {:<10} {:<12} {:>6}s  {}",
            r["issue"].as_str().unwrap_or(""),
            r["status"].as_str().unwrap_or(""),
            r["template"].as_str().unwrap_or(""),
            r["age_secs"].as_i64().unwrap_or(0),
            current.join(", ")
        );
    }
    Ok(0)
}

/// Succeeds when the run branch of the issue has a commit `base` does not: the agent
/// committed its work.
pub fn verify_commits_cmd(ctx: &Ctx, args: &VerifyCommitsArgs) -> Result<i32> {
    let base = gix::ObjectId::from_hex(args.base.as_bytes())
        .with_context(|| format!("{:?} is not a commit id", args.base))?;
    if crate::git::worktree_has_new_commits(&ctx.cwd, &args.id, base)? {
        return Ok(0);
    }
    eprintln!(
        "spool/{}: no commit after {} (the agent committed nothing)",
        args.id, args.base
    );
    Ok(1)
}

/// Runs one agent step in the current directory; exits 0 when the agent succeeded (for a
/// `command` agent, with the agent's own exit code otherwise).
pub fn agent_step_cmd(ctx: &Ctx, args: &AgentStepArgs) -> Result<i32> {
    let def = AgentDef::from_json(&args.agent).map_err(anyhow::Error::msg)?;
    let dir = tempfile::tempdir().context("creating the attempt directory")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let relay = cancel.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            relay.cancel();
        });
        agent::run_step(
            &def,
            &args.step,
            &args.prompt,
            &ctx.cwd,
            dir.path(),
            &cancel,
        )
        .await
        .map_err(anyhow::Error::msg)
    })?;
    print!("{}", outcome.stdout);
    eprint!("{}", outcome.stderr);
    if outcome.ok {
        return Ok(0);
    }
    eprintln!("spool agent-step {}: {}", args.step, outcome.message);
    Ok(match outcome.exit_code {
        Some(code) if code != 0 && def.kind == agent::COMMAND_KIND => code,
        _ => 1,
    })
}
