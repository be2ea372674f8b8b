//! `spool export` / `spool import`: moving issues between the classic shape spool keeps
//! and bd v1's export shape (`_type` first, counts last), so teams can mix tools.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};
use spool_core::beads::graph::Graph;
use spool_core::beads::json::{write_value, Format};
use spool_core::beads::node::Node;
use spool_core::beads::skim::{Skim, SkimKind};
use spool_core::beads::write::sort_bd_order;
use spool_core::beads::{NewLine, Severity, Source, StatusKind, Timestamp};

use super::args::{ExportArgs, ImportArgs};
use super::common::SkimSnapshot;
use super::output::print_json;
use super::Ctx;
use crate::atomic::write_atomic_with;
use crate::backlog::{modify, parse_threads, read_source};

/// Keys tools compute rather than store; never imported, replaced on export.
const COMPUTED: &[&str] = &[
    "_type",
    "dependency_count",
    "dependent_count",
    "comment_count",
    "parent",
];

fn raw_map(bytes: &[u8]) -> Result<Map<String, Value>> {
    Ok(serde_json::from_slice(bytes)?)
}

fn strip_computed(mut m: Map<String, Value>) -> Map<String, Value> {
    for k in COMPUTED {
        m.remove(*k);
    }
    m
}

pub fn export(ctx: &Ctx, args: &ExportArgs) -> Result<i32> {
    let v1 = match args.format.as_str() {
        "v1" => true,
        "classic" => false,
        other => bail!("unknown export format {other:?} (v1 or classic)"),
    };
    let snap = SkimSnapshot::load(ctx)?;
    let graph = Graph::new(snap.issues());
    let skim = &snap.skim;
    // Streamed: one issue line read, rewritten and written at a time.
    let write_all = |w: &mut dyn Write| -> Result<usize> {
        let mut n = 0usize;
        let mut out = Vec::new();
        // The issues in effect only (a duplicated id is exported once), in file order.
        for (k, issue) in graph.issues().iter().enumerate() {
            if issue.status_kind() == StatusKind::Tombstone && !args.all {
                continue;
            }
            let bytes = skim
                .issue_line(k)
                .and_then(|j| skim.line_copy(j))
                .with_context(|| format!("reading the line of {}", issue.id()))?;
            let mut m = strip_computed(raw_map(&bytes)?);
            if v1 {
                let mut with_type = Map::new();
                with_type.insert("_type".into(), "issue".into());
                with_type.extend(sort_bd_order(m));
                if graph.is_live(k) {
                    let c = graph.counts_of(k);
                    with_type.insert("dependency_count".into(), c.dependency_count.into());
                    with_type.insert("dependent_count".into(), c.dependent_count.into());
                    with_type.insert("comment_count".into(), c.comment_count.into());
                }
                m = with_type;
            } else {
                m = sort_bd_order(m);
            }
            out.clear();
            write_value(&mut out, &Value::Object(m), &Format::go());
            out.push(b'\n');
            w.write_all(&out)?;
            n += 1;
        }
        w.flush()?;
        Ok(n)
    };
    match &args.output {
        Some(p) => {
            let path = ctx.cwd.join(p);
            let mut n = 0;
            write_atomic_with(&path, |w| {
                n = write_all(w).map_err(std::io::Error::other)?;
                Ok(())
            })?;
            if !ctx.global.quiet {
                eprintln!("Exported {n} issues to {}", path.display());
            }
        }
        None => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            write_all(&mut stdout)?;
        }
    }
    Ok(0)
}

#[derive(Debug, Default, serde::Serialize)]
struct ImportSummary {
    created: usize,
    updated: usize,
    unchanged: usize,
    /// Present here with a newer or equal `updated_at`: kept.
    skipped_older: usize,
    /// Not issues (`_type:"memory"`, headers): left out.
    skipped_records: usize,
    dry_run: bool,
}

fn updated_at(m: &Map<String, Value>) -> Option<Timestamp> {
    m.get("updated_at")
        .or_else(|| m.get("updated"))
        .and_then(Value::as_str)
        .and_then(Timestamp::parse)
}

pub fn import(ctx: &Ctx, args: &ImportArgs) -> Result<i32> {
    let file = args.file.as_ref().or(args.input.as_ref());
    let (label, source): (String, Arc<dyn Source>) = if file.is_none_or(|f| f.as_os_str() == "-") {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("reading stdin")?;
        ("<stdin>".to_string(), Arc::new(b))
    } else {
        let p = ctx.cwd.join(file.expect("a file unless stdin"));
        // `read_source` takes a missing backlog for an empty one; a file to import must be
        // there.
        let meta = std::fs::metadata(&p).with_context(|| format!("reading {}", p.display()))?;
        if meta.is_dir() {
            bail!("{}: is a directory, expected a JSONL file", p.display());
        }
        (p.display().to_string(), read_source(&p)?)
    };
    // Skimmed: the check is a full parse's, and each record is read from its line when
    // it is imported.
    let (incoming, diags) = Skim::parse(source, parse_threads());
    let errors: Vec<String> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{label}:{}: {}", d.line, d.message))
        .collect();
    if !errors.is_empty() {
        bail!(
            "nothing imported; fix these lines first:\n{}",
            errors.join("\n")
        );
    }
    let mut summary = ImportSummary {
        dry_run: args.dry_run,
        skipped_records: incoming
            .lines()
            .iter()
            .filter(|l| matches!(l.kind(), SkimKind::Record(_)))
            .count(),
        ..Default::default()
    };
    let ws = ctx.workspace()?;
    let summary = modify(&ws, |tx| {
        // New issues are inserted together at the end, in one pass over the file.
        let mut new: Vec<NewLine> = Vec::new();
        let mut new_ids: HashSet<String> = HashSet::new();
        for (j, l) in incoming.lines().iter().enumerate() {
            if !matches!(l.kind(), SkimKind::Issue(_)) {
                continue;
            }
            let bytes = incoming
                .line_copy(j)
                .with_context(|| format!("{label}: reading line {}", j + 1))?;
            let m = strip_computed(raw_map(&bytes)?);
            let id = m
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if new_ids.contains(&id) {
                // The id again: as one-by-one inserts would, this updates the line just
                // added.
                tx.insert_lines(std::mem::take(&mut new))?;
                new_ids.clear();
            }
            let Some(line) = tx.file.line_of(&id) else {
                summary.created += 1;
                if !args.dry_run {
                    new_ids.insert(id);
                    new.push(NewLine::of_map(m));
                }
                continue;
            };
            let current = strip_computed(raw_map(&tx.file.line_copy(line - 1)?)?);
            if current == m {
                summary.unchanged += 1;
                continue;
            }
            if updated_at(&m) <= updated_at(&current) {
                summary.skipped_older += 1;
                continue;
            }
            summary.updated += 1;
            if args.dry_run {
                continue;
            }
            tx.edit(&id, |ed| {
                for (k, v) in &m {
                    if current.get(k) != Some(v) {
                        ed.set(k, v.clone())?;
                    }
                }
                for k in current.keys().filter(|k| !m.contains_key(*k)) {
                    ed.remove(k)?;
                }
                Ok(())
            })?;
        }
        tx.insert_lines(new)?;
        Ok(summary)
    })?;
    if ctx.global.json {
        print_json(&summary)?;
    } else if !ctx.global.quiet {
        println!(
            "{}{} created, {} updated, {} unchanged, {} kept (newer here), {} non-issue records skipped",
            if summary.dry_run { "Dry run: " } else { "" },
            summary.created,
            summary.updated,
            summary.unchanged,
            summary.skipped_older,
            summary.skipped_records
        );
    }
    Ok(0)
}
