//! `spool worker`: runs the engine until interrupted (SIGINT or SIGTERM).

use super::run::{database_path, repo_root, templates};
use super::Ctx;
use crate::engine::{CommandRunner, Engine, EngineConfig, SchedulerConfig};
use crate::store::Durability;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DurabilityArg {
    /// Every commit survives power loss (`synchronous=FULL`).
    Full,
    /// Commits survive a crash of spool, not of the machine (`synchronous=NORMAL`).
    Process,
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    #[arg(long, value_enum, default_value = "full")]
    pub durability: DurabilityArg,
    /// Longest pause (ms) before looking at the inbox and timers again.
    #[arg(long, default_value_t = 50)]
    pub poll_ms: u64,
}

pub fn worker_cmd(ctx: &Ctx, args: &WorkerArgs, db: Option<&Path>) -> Result<i32> {
    let path = database_path(ctx, db)?;
    let attempts = path
        .parent()
        .map(|p| p.join("attempts"))
        .context("the database path has no directory")?;
    let mut config = EngineConfig::new(path.clone());
    config.durability = match args.durability {
        DurabilityArg::Full => Durability::Full,
        DurabilityArg::Process => Durability::Process,
    };
    config.templates = templates(ctx);
    config.poll_interval = Duration::from_millis(args.poll_ms.max(1));
    // `.spool/schedules.toml` of the repository (or the working directory).
    let root = repo_root(&ctx.cwd).unwrap_or_else(|| ctx.cwd.clone());
    let ws = crate::workspace::Workspace::find(&root);
    config.schedules = Some(SchedulerConfig::for_repo(&root, &ctx.actor(ws.as_ref())));
    config.quiet = ctx.global.quiet;
    let config = config.runner("command", Arc::new(CommandRunner::new(attempts)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let engine = Engine::start(config)
            .await
            .with_context(|| format!("starting the engine on {}", path.display()))?;
        if !ctx.global.quiet {
            eprintln!(
                "spool worker: epoch {} on {}",
                engine.epoch(),
                path.display()
            );
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        engine.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(0)
}
