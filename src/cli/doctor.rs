//! `spool doctor`: every problem in the backlog file at once, each with its line number.
//! It says what to fix and never rewrites the file, except `--check=pollution --clean`,
//! which deletes test leftovers as bd does (tombstones) once confirmed.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::json;
use spool_core::beads::graph::Graph;
use spool_core::beads::node::{Node, Skimmed};
use spool_core::beads::ops::{self, Stamp};
use spool_core::beads::skim::Skim;
use spool_core::beads::{Diagnostic, DiagnosticKind, Issue, Severity, StatusKind};

use super::args::DoctorArgs;
use super::common::now_stamp;
use super::output::{print_json, Style};
use super::repair::dangling;
use super::Ctx;
use crate::backlog::{modify, parse_threads, read_source};

#[derive(Debug, Serialize)]
struct Problem {
    line: usize,
    severity: &'static str,
    kind: String,
    message: String,
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn kind_name(k: DiagnosticKind) -> &'static str {
    match k {
        DiagnosticKind::InvalidJson => "invalid-json",
        DiagnosticKind::Truncated => "truncated",
        DiagnosticKind::InvalidUtf8 => "invalid-utf8",
        DiagnosticKind::ConflictMarker => "conflict-marker",
        DiagnosticKind::NotAnObject => "not-an-object",
        DiagnosticKind::MissingId => "missing-id",
        DiagnosticKind::FieldType => "field-type",
        DiagnosticKind::DuplicateId => "duplicate-id",
    }
}

/// A skimmed backlog with each issue in effect's 1-based line number.
struct Lines<'s> {
    skim: &'s Skim,
    issues: Vec<&'s Skimmed>,
    line: HashMap<&'s str, usize>,
}

impl<'s> Lines<'s> {
    fn of(skim: &'s Skim) -> Lines<'s> {
        let issues: Vec<&Skimmed> = skim.issues().collect();
        let line = issues
            .iter()
            .enumerate()
            .filter_map(|(k, i)| Some((i.id(), skim.issue_line(k)? + 1)))
            .collect();
        Lines { skim, issues, line }
    }

    fn line(&self, id: &str) -> usize {
        self.line.get(id).copied().unwrap_or(0)
    }

    /// Issue `k` read again in full from its line (for the few issues a check must see
    /// whole); `None` if the file changed underneath.
    fn issue(&self, k: usize) -> Option<Box<Issue>> {
        self.skim
            .issue_line(k)
            .and_then(|j| self.skim.lean_issue(j))
    }
}

/// Everything wrong with the backlog beyond single-line problems: dangling dependencies,
/// blocking cycles, inconsistent close data. The skim has every issue's graph facts; the
/// few issues a check needs whole are read again.
fn graph_problems(lines: &Lines<'_>) -> Vec<Problem> {
    let graph = Graph::new(lines.issues.iter().copied());
    let line = |id: &str| lines.line(id);
    let mut out = Vec::new();
    for d in dangling(&graph, |k| lines.issue(k).map(|i| *i)) {
        out.push(Problem {
            line: line(&d.issue_id),
            severity: "warning",
            kind: "dangling-dependency".into(),
            message: format!(
                "{} depends on {} ({}), which is not in the backlog; the edge does not block",
                d.issue_id, d.depends_on_id, d.dep_type
            ),
        });
    }
    for cycle in graph.cycles() {
        let first = cycle.first().copied().unwrap_or("");
        out.push(Problem {
            line: line(first),
            severity: "error",
            kind: "cycle".into(),
            message: format!(
                "blocking cycle: {} → {first}; none of these can ever become ready — remove one edge with `spool dep remove`",
                cycle.join(" → ")
            ),
        });
    }
    for (k, issue) in lines.issues.iter().enumerate() {
        if issue.status_kind() == StatusKind::Tombstone {
            continue;
        }
        // A lead time needs `closed_at`: only a closed issue without one is read again.
        if issue.status() == "closed"
            && issue.lead_time_ms().is_none()
            && lines.issue(k).is_some_and(|full| full.closed_at.is_none())
        {
            out.push(Problem {
                line: line(issue.id()),
                severity: "warning",
                kind: "closed-at".into(),
                message: format!("{} is closed but has no closed_at", issue.id()),
            });
        }
        if !(0..=4).contains(&issue.priority()) {
            out.push(Problem {
                line: line(issue.id()),
                severity: "warning",
                kind: "priority".into(),
                message: format!(
                    "{} has priority {}, outside 0-4",
                    issue.id(),
                    issue.priority()
                ),
            });
        }
    }
    out
}

/// The backlog at `path`, skimmed with titles (the pollution check reads them).
fn skim_at(path: &Path) -> Result<(Skim, Vec<Diagnostic>)> {
    Ok(Skim::parse_titled(read_source(path)?, parse_threads()))
}

pub fn run(ctx: &Ctx, args: &DoctorArgs) -> Result<i32> {
    let path: PathBuf = match &args.file {
        Some(f) => ctx.cwd.join(f),
        None => ctx.workspace()?.issues_path(),
    };
    if let Some(check) = args.check.as_deref() {
        if !matches!(check, "validate" | "all" | "pollution") {
            bail!("unknown check {check:?} (validate or pollution)");
        }
    }
    let (skim, diagnostics) = skim_at(&path)?;
    let lines = Lines::of(&skim);
    if args.check.as_deref() == Some("pollution") {
        return pollution(ctx, args, &lines);
    }
    if args.clean {
        bail!("--clean goes with --check=pollution");
    }
    let mut problems: Vec<Problem> = diagnostics
        .iter()
        .map(|d| Problem {
            line: d.line,
            severity: severity(d.severity),
            kind: kind_name(d.kind).into(),
            message: d.message.clone(),
        })
        .collect();
    problems.extend(graph_problems(&lines));
    problems.sort_by_key(|p| p.line);
    let errors = problems.iter().filter(|p| p.severity == "error").count();
    let warnings = problems.len() - errors;
    let issues = lines
        .issues
        .iter()
        .filter(|i| i.status_kind() != StatusKind::Tombstone)
        .count();
    if ctx.global.json {
        print_json(&json!({
            "path": path.display().to_string(),
            "ok": errors == 0,
            "issues": issues,
            "errors": errors,
            "warnings": warnings,
            "problems": problems,
        }))?;
    } else {
        let st = Style { color: ctx.color };
        for p in &problems {
            let sev = if p.severity == "error" {
                st.red(p.severity)
            } else {
                st.yellow(p.severity)
            };
            println!("{}:{}: {sev}: {}", path.display(), p.line, p.message);
        }
        if problems.iter().any(|p| p.kind == "conflict-marker") {
            println!(
                "\nThe file has unresolved git conflict markers. Keep the lines of both sides (for an \
                 issue present on both, keep the version you want), delete the marker lines, and run \
                 `spool doctor` again."
            );
        }
        if problems.is_empty() {
            println!(
                "{} {}: {issues} issues, no problems",
                st.green("ok"),
                path.display()
            );
        } else {
            println!(
                "\n{errors} error(s), {warnings} warning(s) in {}",
                path.display()
            );
        }
    }
    Ok(if errors > 0 { 1 } else { 0 })
}

/// Why a pollution clean tombstones an issue (its `delete_reason`).
const POLLUTION_REASON: &str = "test pollution (doctor --check=pollution --clean)";

/// Whether a title says its issue is a test leftover ("test", "test: ...", "test issue
/// 1"). Narrower than bd's scoring on purpose: `--clean` deletes what this matches, so it
/// flags only issues whose own title says they are tests.
fn looks_like_test(title: &str) -> bool {
    let t = title.trim().to_lowercase();
    t == "test" || t.starts_with("test ") || t.starts_with("test:") || t.starts_with("test issue")
}

/// The live issues that look like test leftovers, in file order.
fn polluted<'s>(lines: &Lines<'s>) -> Vec<&'s Skimmed> {
    lines
        .issues
        .iter()
        .copied()
        .filter(|i| i.status_kind() != StatusKind::Tombstone && looks_like_test(i.title()))
        .collect()
}

/// bd's `doctor --check=pollution`: issues that look like test leftovers. With `--clean`
/// they are deleted the way bd deletes, as tombstones, written through the locked write
/// path; only their lines change.
fn pollution(ctx: &Ctx, args: &DoctorArgs, lines: &Lines<'_>) -> Result<i32> {
    if args.clean && args.file.is_some() {
        bail!("--clean deletes from the workspace backlog; it does not take --file");
    }
    let found = polluted(lines);
    let suspects: Vec<serde_json::Value> = found
        .iter()
        .map(|i| json!({"id": i.id(), "title": i.title(), "line": lines.line(i.id())}))
        .collect();
    let mut canceled = false;
    let deleted = if args.clean && !found.is_empty() {
        if args.yes || confirm(found.len())? {
            let ids: Vec<String> = found.iter().map(|i| i.id().to_string()).collect();
            Some(clean(ctx, &ids)?)
        } else {
            eprintln!("Canceled.");
            canceled = true;
            Some(Vec::new())
        }
    } else if args.clean {
        Some(Vec::new())
    } else {
        None
    };
    if ctx.global.json {
        let mut out = json!({
            "check": "pollution",
            "polluted_count": suspects.len(),
            "detected": suspects.len(),
            "issues": suspects,
        });
        if let Some(d) = &deleted {
            out["deleted_count"] = d.len().into();
            out["deleted"] = json!(d);
        }
        print_json(&out)?;
        return Ok(0);
    }
    if suspects.is_empty() {
        println!("No test issues found.");
        return Ok(0);
    }
    for s in &suspects {
        println!(
            "line {}: {} {}",
            s["line"],
            s["id"].as_str().unwrap_or(""),
            s["title"].as_str().unwrap_or("")
        );
    }
    match deleted {
        Some(_) if canceled => {}
        Some(d) => {
            let st = Style { color: ctx.color };
            println!(
                "{} Deleted {} test issue(s): each line stays in the file as a tombstone",
                st.green("✓"),
                d.len()
            );
        }
        None => println!(
            "Run `spool doctor --check=pollution --clean` to delete these issues (with confirmation)."
        ),
    }
    Ok(0)
}

/// Asks on the terminal before deleting; refuses when nobody can answer.
fn confirm(n: usize) -> Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "refusing to delete {n} test issue(s) without confirmation: stdin is not a terminal; \
             run again with --yes to delete them"
        );
    }
    eprint!("Delete {n} test issue(s)? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Tombstones those of `ids` that still look like test leftovers in the file as it is
/// under the write lock; returns the ids tombstoned.
fn clean(ctx: &Ctx, ids: &[String]) -> Result<Vec<String>> {
    let ws = ctx.workspace()?;
    let actor = ctx.actor(Some(&ws));
    let now = now_stamp(ctx);
    let stamp = Stamp::new(&now, &actor);
    modify(&ws, |tx| {
        let mut deleted = Vec::new();
        for id in ids {
            let Some(issue) = tx.file.get_full(id) else {
                continue;
            };
            if issue.is_tombstone() || !looks_like_test(&issue.title) {
                continue;
            }
            tx.edit(id, |ed| ops::tombstone(ed, &issue, POLLUTION_REASON, stamp))?;
            deleted.push(id.clone());
        }
        Ok(deleted)
    })
}
