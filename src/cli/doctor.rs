//! `spool doctor`: every problem in the backlog file at once, each with its line number.
//! It never rewrites the file; it says what to fix.

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::json;
use spool_core::beads::graph::Graph;
use spool_core::beads::{BeadsFile, DiagnosticKind, Severity};

use super::args::DoctorArgs;
use super::output::{print_json, Style};
use super::Ctx;
use crate::backlog::{parse, read_bytes};

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

/// Everything wrong with `file` beyond single-line problems: dangling dependencies,
/// blocking cycles, inconsistent close data.
fn graph_problems(file: &BeadsFile) -> Vec<Problem> {
    let graph = Graph::new(file.issues());
    let line = |id: &str| file.line_of(id).unwrap_or(0);
    let mut out = Vec::new();
    for d in graph.dangling() {
        out.push(Problem {
            line: line(d.issue_id),
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
    for issue in file.issues().filter(|i| !i.is_tombstone()) {
        if issue.status() == "closed" && issue.closed_at.is_none() {
            out.push(Problem {
                line: line(&issue.id),
                severity: "warning",
                kind: "closed-at".into(),
                message: format!("{} is closed but has no closed_at", issue.id),
            });
        }
        if !(0..=4).contains(&issue.priority) {
            out.push(Problem {
                line: line(&issue.id),
                severity: "warning",
                kind: "priority".into(),
                message: format!("{} has priority {}, outside 0-4", issue.id, issue.priority),
            });
        }
    }
    out
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
    let backlog = parse(&path, read_bytes(&path)?);
    if args.check.as_deref() == Some("pollution") {
        return pollution(ctx, &backlog.file);
    }
    let mut problems: Vec<Problem> = backlog
        .diagnostics
        .iter()
        .map(|d| Problem {
            line: d.line,
            severity: severity(d.severity),
            kind: kind_name(d.kind).into(),
            message: d.message.clone(),
        })
        .collect();
    problems.extend(graph_problems(&backlog.file));
    problems.sort_by_key(|p| p.line);
    let errors = problems.iter().filter(|p| p.severity == "error").count();
    let warnings = problems.len() - errors;
    let issues = backlog.file.issues().filter(|i| !i.is_tombstone()).count();
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

/// Issues that look like test leftovers (titles starting with "test"), for bd's
/// `doctor --check=pollution`. Only reports; never deletes.
fn pollution(ctx: &Ctx, file: &BeadsFile) -> Result<i32> {
    let suspects: Vec<serde_json::Value> = file
        .issues()
        .filter(|i| !i.is_tombstone())
        .filter(|i| {
            let t = i.title.trim().to_lowercase();
            t == "test"
                || t.starts_with("test ")
                || t.starts_with("test:")
                || t.starts_with("test issue")
        })
        .map(|i| json!({"id": i.id, "title": i.title, "line": file.line_of(&i.id)}))
        .collect();
    if ctx.global.json {
        print_json(&json!({"check": "pollution", "detected": suspects.len(), "issues": suspects}))?;
    } else if suspects.is_empty() {
        println!("No test issues found.");
    } else {
        for s in &suspects {
            println!(
                "line {}: {} {}",
                s["line"],
                s["id"].as_str().unwrap_or(""),
                s["title"].as_str().unwrap_or("")
            );
        }
    }
    Ok(0)
}
