//! The command-line interface: parsing, the per-invocation context, dispatch.
//!
//! stdout carries data (exactly one JSON document with `--json`), stderr carries messages.

pub mod args;
mod bench;
mod bench_sync;
mod common;
pub mod daemon;
mod demo;
mod doctor;
pub mod edit;
mod hooks;
mod info;
mod init;
pub mod logs;
mod merge;
pub mod output;
mod query;
mod repair;
pub mod run;
pub mod schedule;
mod sync;
mod transfer;
pub mod worker;

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
        Ok(Ctx {
            global,
            cwd,
            now,
            color,
        })
    }

    pub fn workspace(&self) -> Result<Workspace> {
        let env = std::env::var_os("BEADS_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
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
        let root = ws
            .map(|w| w.root.clone())
            .unwrap_or_else(|| self.cwd.clone());
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
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                0
            } else {
                eprintln!("error: {}", format_error(&e));
                1
            }
        }
    };
    bench::record_peak_rss();
    code
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
    use args::{DepCommand, LabelCommand};
    let ctx = Ctx::from_env(cli.global)?;
    match &cli.command {
        Command::Version => {
            if ctx.global.json {
                output::print_json(&serde_json::json!({
                    "version": BD_COMPAT_VERSION,
                    "spool_version": env!("CARGO_PKG_VERSION"),
                }))?;
            } else {
                println!(
                    "spool version {BD_COMPAT_VERSION} (bd-compatible; spool {})",
                    env!("CARGO_PKG_VERSION")
                );
            }
            Ok(0)
        }
        Command::Init(a) => init::run(&ctx, a),
        Command::Create(a) => edit::create_cmd(&ctx, a, false),
        Command::Q(a) => edit::create_cmd(&ctx, a, true),
        Command::Show(a) => query::show_cmd(&ctx, &a.ids),
        Command::List(a) => query::list_cmd(&ctx, a),
        Command::Ready(a) => query::ready_cmd(&ctx, a),
        Command::Blocked(a) => query::blocked_cmd(&ctx, a),
        Command::Update(a) => edit::update_cmd(&ctx, a),
        Command::Close(a) => edit::close_cmd(&ctx, a),
        Command::Reopen(a) => edit::reopen_cmd(&ctx, a),
        Command::Dep(d) => match d {
            DepCommand::Add {
                issue,
                depends_on,
                dep_type,
            } => edit::dep_add(&ctx, issue, depends_on, dep_type),
            DepCommand::Remove { issue, depends_on } => edit::dep_remove(&ctx, issue, depends_on),
            DepCommand::List { issue, direction } => query::dep_list(&ctx, issue, direction),
            DepCommand::Tree {
                issue,
                direction,
                max_depth,
            } => query::dep_tree(&ctx, issue, direction, *max_depth),
            DepCommand::Cycles => query::dep_cycles(&ctx),
        },
        Command::Label(l) => match l {
            LabelCommand::Add { args } => edit::label_change(&ctx, args, true),
            LabelCommand::Remove { args } => edit::label_change(&ctx, args, false),
            LabelCommand::List { id } => query::label_list(&ctx, id),
            LabelCommand::ListAll => query::label_list_all(&ctx),
        },
        Command::Comments(a) => match (a.first.as_str(), a.rest.as_slice()) {
            ("add", [id, text @ ..]) if !text.is_empty() => {
                edit::comment_add(&ctx, id, &text.join(" "))
            }
            ("add", _) => anyhow::bail!("usage: spool comments add ID TEXT"),
            (id, []) => query::comments_list(&ctx, id),
            (_, _) => anyhow::bail!("usage: spool comments ID  |  spool comments add ID TEXT"),
        },
        Command::Comment(a) => edit::comment_add(&ctx, &a.id, &a.text),
        Command::Note(a) => edit::note_add(&ctx, &a.id, &a.text),
        Command::Stats => query::stats_cmd(&ctx),
        Command::Doctor(a) => doctor::run(&ctx, a),
        Command::RepairDeps(a) => repair::repair_deps_cmd(&ctx, a),
        Command::Info(a) => info::info_cmd(&ctx, a),
        Command::Migrate(a) => info::migrate_cmd(&ctx, a),
        Command::Export(a) => transfer::export(&ctx, a),
        Command::Import(a) => transfer::import(&ctx, a),
        Command::Bench(b) => bench::run(&ctx, b),
        Command::Hooks(h) => hooks::run(&ctx, h),
        Command::Merge(a) => merge::merge_cmd(&ctx, a),
        Command::Resolve(a) => merge::resolve_cmd(&ctx, a),
        Command::Sync(a) => sync::sync_cmd(&ctx, a),
        Command::Run { db, command } => run::run_cmd(&ctx, command, db.as_deref()),
        Command::Schedule { db, command } => schedule::schedule_cmd(&ctx, command, db.as_deref()),
        Command::Demo(a) => demo::demo_cmd(&ctx, a),
        Command::DemoAgent(a) => demo::demo_agent_cmd(&ctx, a),
        Command::Up(a) => daemon::up_cmd(&ctx, a),
        Command::Status => daemon::status_cmd(&ctx),
        Command::Down(a) => daemon::down_cmd(&ctx, a),
        Command::Logs(a) => logs::logs_cmd(&ctx, None, a),
        Command::VerifyCommits(a) => daemon::verify_commits_cmd(&ctx, a),
        Command::AgentStep(a) => daemon::agent_step_cmd(&ctx, a),
        Command::Worker { db, args } => worker::worker_cmd(&ctx, args, db.as_deref()),
        Command::Quickstart => {
            print!("{}", QUICKSTART);
            Ok(0)
        }
    }
}

const QUICKSTART: &str = "\
spool keeps the backlog in .beads/issues.jsonl (the Beads format) and answers bd's commands.

Find work:
  spool ready                      open issues with no open blockers, most urgent first
  spool ready --explain            why each issue is or isn't ready
  spool blocked                    what is waiting, and on what
  spool show ID                    everything about one issue (ids may be shortened)

Take and finish work:
  spool update ID --claim          claim it (fails if someone else holds it)
  spool comment ID \"what I found\"
  spool close ID --reason \"done: ...\"

Plan work:
  spool create \"Title\" -t bug -p 1 -d \"details\" -l backend
  spool create \"Step\" --parent EPIC_ID       child issue EPIC_ID.N
  spool create \"Follow-up\" --deps discovered-from:ID
  spool dep add A B                A depends on B (B blocks A)
  spool dep tree ID | spool dep cycles

Every command takes --json for tools (one JSON document on stdout).
";
