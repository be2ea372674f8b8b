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
use spool_core::beads::graph::Graph;
use spool_core::beads::node::{Node, Record};
use spool_core::beads::ops::{self, Stamp};
use spool_core::beads::{BeadsFile, Issue};

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

/// Every dependency of a live issue of `graph` whose target id is on no line, in file
/// order, its type read from the full record of the issue that holds it (`full(ix)`: a
/// skim keeps no types; only those issues are read).
pub fn dangling<N: Node>(
    graph: &Graph<'_, N>,
    full: impl Fn(usize) -> Option<Issue>,
) -> Vec<Orphan> {
    let mut found = Vec::new();
    let mut held: Option<(usize, Option<Issue>)> = None;
    for (ix, d) in graph.dangling_edges() {
        if held.as_ref().map(|(i, _)| *i) != Some(ix) {
            held = Some((ix, full(ix)));
        }
        let Some((_, Some(issue))) = &held else {
            continue;
        };
        if let Some(dep) = issue.dependencies.get(d) {
            found.push(Orphan {
                issue_id: issue.id.clone(),
                depends_on_id: dep.depends_on_id.clone(),
                dep_type: dep.dep_type.clone(),
            });
        }
    }
    found
}

/// Every orphaned dependency of the live issues in effect, in file order: the dangling
/// ones but references to other projects (`external:`).
pub fn orphans<N: Record>(file: &BeadsFile<N>) -> Vec<Orphan> {
    let graph = Graph::new(file.issues());
    dangling(&graph, |ix| file.get_full(graph.issue(ix).id()))
        .into_iter()
        .filter(|o| !o.depends_on_id.starts_with("external:"))
        .collect()
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
