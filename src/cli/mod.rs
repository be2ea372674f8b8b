//! The command-line interface: parsing, the per-invocation context, dispatch.
//!
//! stdout carries data (exactly one JSON document with `--json`), stderr carries messages.

pub mod args;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Parser;

use crate::workspace::{BeadsConfig, Workspace};
use args::{Cli, Command, GlobalArgs};

/// The bd release whose command line and JSON spool answers to. Tools that check `bd
/// version` (the beads MCP server requires ≥ 0.9.0) read the first version number printed.
pub const BD_COMPAT_VERSION: &str = "1.0.5";

/// Everything a command needs from its environment, read once.
pub struct Ctx {
    pub global: GlobalArgs,
    pub cwd: PathBuf,
    /// The current time; `SPOOL_NOW` (RFC3339) fixes it for reproducible runs.
    pub now: DateTime<Utc>,
    /// Colors and symbols for people (stdout is a terminal, `NO_COLOR` unset).
    pub color: bool,
}

impl Ctx {
    pub fn from_env(global: GlobalArgs) -> Result<Ctx> {
        let base = std::env::current_dir().context("reading the current directory")?;
        let cwd = match &global.dir {
            Some(d) if d.is_absolute() => d.clone(),
            Some(d) => base.join(d),
            None => base,
        };
        if !cwd.is_dir() {
            anyhow::bail!("-C {}: not a directory", cwd.display());
        }
        let now = match std::env::var("SPOOL_NOW") {
            Ok(s) if !s.is_empty() => DateTime::parse_from_rfc3339(&s)
                .with_context(|| format!("SPOOL_NOW={s:?} is not an RFC3339 time"))?
                .with_timezone(&Utc),
            _ => Utc::now(),
        };
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Ok(Ctx { global, cwd, now, color })
    }

    pub fn workspace(&self) -> Result<Workspace> {
        let env = std::env::var_os("BEADS_DIR").filter(|v| !v.is_empty()).map(PathBuf::from);
        Workspace::discover(&self.cwd, env.as_deref())
    }

    /// The acting user: `--actor`, `BEADS_ACTOR`, `BD_ACTOR`, `.beads/config.yaml` actor,
    /// git `user.name`, `$USER`, else `unknown` — bd's order.
    pub fn actor(&self, ws: Option<&Workspace>) -> String {
        if let Some(a) = self.global.actor.as_deref().filter(|a| !a.is_empty()) {
            return a.to_string();
        }
        for var in ["BEADS_ACTOR", "BD_ACTOR"] {
            if let Ok(v) = std::env::var(var) {
                if !v.is_empty() {
                    return v;
                }
            }
        }
        if let Some(ws) = ws {
            if let Ok(cfg) = BeadsConfig::load(&ws.config_path()) {
                if let Some(a) = cfg.actor {
                    return a;
                }
            }
        }
        let root = ws.map(|w| w.root.clone()).unwrap_or_else(|| self.cwd.clone());
        if let Some(name) = crate::gitconfig::user_name(&root) {
            return name;
        }
        std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "unknown".to_string())
    }
}

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return 0;
            }
            eprintln!("error: {}", format_error(&e));
            1
        }
    }
}

fn format_error(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        out.push_str(": ");
        out.push_str(&cause.to_string());
    }
    out
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<i32> {
    let ctx = Ctx::from_env(cli.global)?;
    match cli.command {
        Command::Version => {
            println!(
                "spool version {BD_COMPAT_VERSION} (bd-compatible; spool {})",
                env!("CARGO_PKG_VERSION")
            );
            Ok(0)
        }
        _ => unreachable_command(),
    }
}

fn unreachable_command() -> Result<i32> {
    anyhow::bail!("command not available")
}
