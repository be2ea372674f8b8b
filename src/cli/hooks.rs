//! `spool hooks install|uninstall|list`: spool's section in the repository's git hooks,
//! and the backlog's merge driver (`.gitattributes` + `merge.spool.*` config).

use anyhow::{Context, Result};
use clap::Subcommand;

use super::output::print_json;
use super::Ctx;
use crate::git::{self, DriverReport, HookReport, HookState};

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Add spool's section to pre-commit, post-merge, post-checkout and post-rewrite
    /// (in core.hooksPath if set), keeping any hook already there; register `spool merge`
    /// as the merge driver of `.beads/issues.jsonl`.
    Install,
    /// Remove spool's section, leaving the rest of each hook file as it was, and the
    /// merge driver's attribute line and config.
    Uninstall,
    /// Show each hook's state and the merge driver's.
    List,
}

pub fn run(ctx: &Ctx, cmd: &HooksCommand) -> Result<i32> {
    // The hooks call the binary that installed them, so they keep working when `spool`
    // is not on the PATH git hooks run with.
    let bin = std::env::current_exe().context("locating the spool binary")?;
    let (reports, driver) = match cmd {
        HooksCommand::Install => (
            git::install_hooks(&ctx.cwd, &bin)?,
            git::install_merge_driver(&ctx.cwd, &bin)?,
        ),
        HooksCommand::Uninstall => (
            git::uninstall_hooks(&ctx.cwd)?,
            git::uninstall_merge_driver(&ctx.cwd)?,
        ),
        HooksCommand::List => (
            git::list_hooks(&ctx.cwd, &bin)?,
            git::merge_driver_state(&ctx.cwd, &bin)?,
        ),
    };
    if ctx.global.json {
        print_json(&serde_json::json!({"hooks": reports, "merge_driver": driver}))?;
    } else if !ctx.global.quiet || matches!(cmd, HooksCommand::List) {
        for r in &reports {
            println!("{:<14} {:<34} {}", r.name, describe(r), r.path.display());
        }
        println!(
            "{:<14} {:<34} {}",
            "merge driver",
            describe_driver(&driver),
            driver.attributes_path.display()
        );
    }
    Ok(0)
}

fn describe_driver(d: &DriverReport) -> String {
    let state = match (d.attribute, &d.driver) {
        (true, Some(_)) if d.current => "registered",
        (true, Some(_)) => "registered, outdated",
        (false, None) => "off",
        _ => "partly registered (run install)",
    };
    match d.action {
        "listed" | "unchanged" | "absent" => state.to_string(),
        action => format!("{action}: {state}"),
    }
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
