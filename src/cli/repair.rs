//! `spool repair-deps`: dependencies whose target id is in no line of the backlog
//! (orphans), and with `--fix` their removal from the issue lines that hold them.
//!
//! Answers in bd's shape (`orphans_found`, `orphans`, `fixed`). A target that is a
//! tombstone is not an orphan (the id exists), and `external:` targets are references to
//! other projects, never orphans, as in bd's own integrity checks.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args;
use serde::Serialize;
use serde_json::json;
use spool_core::beads::node::Record;
use spool_core::beads::ops::{self, Stamp};
use spool_core::beads::BeadsFile;
use spool_core::beads::StatusKind;

use super::common::now_stamp;
use super::output::{print_json, Style};
use super::Ctx;
use crate::backlog::modify;

#[derive(Debug, Args, Default)]
pub struct RepairDepsArgs {
    /// Remove the orphaned dependencies from the backlog.
    #[arg(long)]
    pub fix: bool,
}

/// A dependency whose target does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orphan {
    pub issue_id: String,
    pub depends_on_id: String,
    #[serde(rename = "type")]
    pub dep_type: String,
}

/// Every orphaned dependency of the live issues in effect, in file order. Only the lines
/// that have one are read in full (a skimmed file keeps no dependency types).
pub fn orphans<N: Record>(file: &BeadsFile<N>) -> Vec<Orphan> {
    let missing = |t: &str| (t.is_empty() || file.get(t).is_none()) && !t.starts_with("external:");
    let mut found = Vec::new();
    for issue in file.issues() {
        let live = !issue.id().is_empty() && issue.status_kind() != StatusKind::Tombstone;
        if !live || !(0..issue.dep_count()).any(|d| missing(issue.dep(d).target)) {
            continue;
        }
        let Some(full) = file.get_full(issue.id()) else {
            continue;
        };
        found.extend(
            full.dependencies
                .iter()
                .filter(|d| missing(&d.depends_on_id))
                .map(|d| Orphan {
                    issue_id: full.id.clone(),
                    depends_on_id: d.depends_on_id.clone(),
                    dep_type: d.dep_type.clone(),
                }),
        );
    }
    found
}

pub fn repair_deps_cmd(ctx: &Ctx, args: &RepairDepsArgs) -> Result<i32> {
    let (found, fixed) = if args.fix {
        let ws = ctx.workspace()?;
        let actor = ctx.actor(Some(&ws));
        let now = now_stamp(ctx);
        let stamp = Stamp::new(&now, &actor);
        modify(&ws, |tx| {
            let found = orphans(&tx.file);
            let mut by_issue: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for o in &found {
                by_issue
                    .entry(o.issue_id.as_str())
                    .or_default()
                    .push(o.depends_on_id.as_str());
            }
            let mut fixed = 0;
            for (id, targets) in by_issue {
                tx.edit(id, |ed| {
                    let mut removed = 0;
                    for target in targets {
                        removed += ed.remove_dependency(target)?;
                    }
                    if removed > 0 {
                        ops::touch(ed, stamp)?;
                    }
                    fixed += removed;
                    Ok(())
                })?;
            }
            Ok((found, Some(fixed)))
        })?
    } else {
        let file = crate::backlog::load_skimmed(&ctx.workspace()?)?;
        let found = orphans(&file);
        crate::backlog::drop_later(file);
        (found, None)
    };
    if ctx.global.json {
        let mut out = json!({"orphans_found": found.len(), "orphans": found});
        if let Some(n) = fixed {
            out["fixed"] = n.into();
        }
        print_json(&out)?;
        return Ok(0);
    }
    let st = Style { color: ctx.color };
    if found.is_empty() {
        println!("{} No orphaned dependencies found", st.green("✓"));
        return Ok(0);
    }
    println!(
        "{} Found {} orphaned dependencies:\n",
        st.yellow("⚠"),
        found.len()
    );
    for (n, o) in found.iter().enumerate() {
        println!(
            "{}. {} → {} ({}) [{} does not exist]",
            n + 1,
            o.issue_id,
            o.depends_on_id,
            o.dep_type,
            o.depends_on_id
        );
    }
    println!();
    match fixed {
        Some(n) => println!("{} Fixed {n} orphaned dependencies", st.green("✓")),
        None => println!("Run with --fix to remove the orphaned dependencies"),
    }
    Ok(0)
}
