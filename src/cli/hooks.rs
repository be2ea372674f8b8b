//! `spool hooks install|uninstall|list`: spool's section in the repository's git hooks.

use anyhow::{Context, Result};
use clap::Subcommand;

use super::output::print_json;
use super::Ctx;
use crate::git::{self, HookReport, HookState};

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Add spool's section to pre-commit, post-merge, post-checkout and post-rewrite
    /// (in core.hooksPath if set), keeping any hook already there.
    Install,
    /// Remove spool's section, leaving the rest of each hook file as it was.
    Uninstall,
    /// Show each hook's state.
    List,
}

pub fn run(ctx: &Ctx, cmd: &HooksCommand) -> Result<i32> {
    // The hooks call the binary that installed them, so they keep working when `spool`
    // is not on the PATH git hooks run with.
    let bin = std::env::current_exe().context("locating the spool binary")?;
    let reports = match cmd {
        HooksCommand::Install => git::install_hooks(&ctx.cwd, &bin)?,
        HooksCommand::Uninstall => git::uninstall_hooks(&ctx.cwd)?,
        HooksCommand::List => git::list_hooks(&ctx.cwd, &bin)?,
    };
    if ctx.global.json {
        print_json(&reports)?;
    } else if !ctx.global.quiet || matches!(cmd, HooksCommand::List) {
        for r in &reports {
            println!("{:<14} {:<34} {}", r.name, describe(r), r.path.display());
        }
    }
    Ok(0)
}

fn describe(r: &HookReport) -> String {
    let state = match &r.state {
        HookState::Absent => "not installed".to_string(),
        HookState::UserOnly => "not installed (other hook present)".to_string(),
        HookState::Installed { current, shared } => {
            let mut s = "installed".to_string();
            if *shared {
                s.push_str(", with other hook");
            }
            if !*current {
                s.push_str(", outdated");
            }
            s
        }
    };
    match r.action {
        "listed" | "unchanged" | "absent" => state,
        action => format!("{action}: {state}"),
    }
}
