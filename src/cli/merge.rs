//! `spool merge` (git's merge driver for the backlog) and `spool resolve` (a backlog that
//! already holds conflict markers). The merge itself is `spool_core::beads::merge`; this
//! is the file handling around it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use spool_core::beads::merge::{merge, resolve, Finding, MergeOutcome};

use super::output::print_json;
use super::Ctx;
use crate::atomic::{write_atomic, FileLock};

/// Exit code for inputs that could not be read or written (git treats any non-zero exit
/// as "conflict" and keeps the file as it was).
const EXIT_ERROR: i32 = 2;

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The common ancestor's version (git's `%O`).
    pub base: PathBuf,
    /// Our version (git's `%A`); the result replaces it.
    pub ours: PathBuf,
    /// Their version (git's `%B`).
    pub theirs: PathBuf,
    /// Accepted and ignored: git's conflict-marker size (`%L`); no markers are written.
    pub marker_size: Option<String>,
    /// The file's path in the repository (git's `%P`), named in messages.
    pub path: Option<String>,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The file with conflict markers (default: this repository's `.beads/issues.jsonl`).
    pub path: Option<PathBuf>,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn print_findings(prefix: &str, out: &MergeOutcome, quiet: bool) {
    for c in &out.conflicts {
        eprintln!("{prefix}: conflict: {c}");
    }
    if !quiet {
        for n in &out.notes {
            eprintln!("{prefix}: {n}");
        }
    }
}

fn findings_json(f: &[Finding]) -> serde_json::Value {
    serde_json::to_value(f).unwrap_or_default()
}

/// Merges the three files and writes the result over `ours`: exit 0 when clean, 1 when a
/// conflict remains (the file then holds the rule's choice for each), 2 when an input
/// could not be read or the result not written (nothing is written then).
pub fn merge_cmd(ctx: &Ctx, a: &MergeArgs) -> Result<i32> {
    let abs = |p: &Path| ctx.cwd.join(p);
    let (base, ours, theirs) = (abs(&a.base), abs(&a.ours), abs(&a.theirs));
    let name = a.path.clone().unwrap_or_else(|| ours.display().to_string());
    let inputs = (|| Ok::<_, anyhow::Error>((read(&base)?, read(&ours)?, read(&theirs)?)))();
    let (b, o, t) = match inputs {
        Ok(i) => i,
        Err(e) => {
            eprintln!("spool merge: error: {e:#}; nothing was written");
            return Ok(EXIT_ERROR);
        }
    };
    let out = merge(&b, &o, &t);
    let written = out.text != o;
    if written {
        if let Err(e) = write_atomic(&ours, &out.text) {
            eprintln!("spool merge: error: {e:#}");
            return Ok(EXIT_ERROR);
        }
    }
    if ctx.global.json {
        print_json(&json!({
            "path": name,
            "written": written,
            "clean": out.is_clean(),
            "conflicts": findings_json(&out.conflicts),
            "notes": findings_json(&out.notes),
        }))?;
    }
    print_findings(&format!("spool merge: {name}"), &out, ctx.global.quiet);
    Ok(if out.is_clean() { 0 } else { 1 })
}

/// Rewrites a file with conflict markers as the merge of its sides: exit 0 when clean,
/// 1 when a conflict remains (decided by the rules and reported).
pub fn resolve_cmd(ctx: &Ctx, a: &ResolveArgs) -> Result<i32> {
    let ws = ctx.workspace().ok();
    let path = match (&a.path, &ws) {
        (Some(p), _) => ctx.cwd.join(p),
        (None, Some(ws)) => ws.issues_path(),
        (None, None) => anyhow::bail!(
            "no .beads/ directory here or above {}; name the file to resolve",
            ctx.cwd.display()
        ),
    };
    // The repository's backlog is written under its write lock, like every backlog write.
    let backlog_ws = ws.filter(|ws| same_file(&ws.issues_path(), &path));
    let _lock = match &backlog_ws {
        Some(ws) => Some(FileLock::acquire(
            &ws.lock_path(),
            std::time::Duration::from_secs(30),
        )?),
        None => None,
    };
    let bytes = read(&path)?;
    let resolved = resolve(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let out = &resolved.outcome;
    let written = resolved.hunks > 0 && out.text != bytes;
    if written {
        if let Some(ws) = &backlog_ws {
            crate::write_index::forget(ws);
        }
        write_atomic(&path, &out.text)?;
    }
    print_findings(
        &format!("spool resolve: {}", path.display()),
        out,
        ctx.global.quiet,
    );
    if ctx.global.json {
        print_json(&json!({
            "path": path.display().to_string(),
            "hunks": resolved.hunks,
            "hunks_with_base": resolved.hunks_with_base,
            "written": written,
            "clean": out.is_clean(),
            "conflicts": findings_json(&out.conflicts),
            "notes": findings_json(&out.notes),
        }))?;
    } else if !ctx.global.quiet {
        if resolved.hunks == 0 {
            println!("{}: no conflict markers; nothing to do", path.display());
        } else {
            println!(
                "{}: merged {} conflict hunk{} ({} with a base section){}",
                path.display(),
                resolved.hunks,
                if resolved.hunks == 1 { "" } else { "s" },
                resolved.hunks_with_base,
                if out.is_clean() {
                    String::new()
                } else {
                    format!(
                        "; {} conflict(s) decided by rule, listed above",
                        out.conflicts.len()
                    )
                }
            );
        }
    }
    Ok(if out.is_clean() { 0 } else { 1 })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[derive(Debug, Args)]
pub struct MergeBenchArgs {
    /// Issues in the synthetic backlog.
    #[arg(long, default_value_t = 100_000)]
    pub issues: usize,
    /// Issues changed on each side (different issues), besides `--overlap`.
    #[arg(long, default_value_t = 300)]
    pub changes: usize,
    /// Issues changed on both sides, in different fields.
    #[arg(long, default_value_t = 30)]
    pub overlap: usize,
    /// Issues new on theirs, and issues removed on theirs.
    #[arg(long, default_value_t = 50)]
    pub new: usize,
    /// Timed runs.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
}

/// The base and two edited sides for the merge benchmark, made with the file editor
/// (as spool's own writes would make them).
fn bench_sides(a: &MergeBenchArgs) -> Result<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    use spool_core::beads::BeadsFile;
    let base = super::bench::synth_bytes(&crate::synth::SynthSpec {
        issues: a.issues,
        seed: 42,
        prefix: "bench".into(),
    });
    let (file, _) = BeadsFile::parse(&base);
    let ids: Vec<String> = file.issues().map(|i| i.id.clone()).collect();
    let wanted = 2 * a.changes + a.overlap + a.new;
    if ids.len() < wanted * 2 {
        anyhow::bail!("{} issues are too few for {wanted} changed ones", ids.len());
    }
    // Changed issues spread over the whole file.
    let stride = ids.len() / wanted;
    let pick = |k: usize| ids[k * stride].clone();
    let (mut ours, mut theirs) = (file.clone(), file);
    let edit = |f: &mut BeadsFile, id: &str, key: &str, v: serde_json::Value, day: u8| {
        f.edit(id, |e| {
            e.set(key, v)?;
            e.set("updated_at", format!("2026-07-{day:02}T10:00:00Z"))
        })
        .with_context(|| format!("editing {id}"))
    };
    for k in 0..a.changes {
        edit(&mut ours, &pick(k), "title", json!(format!("ours {k}")), 2)?;
        edit(
            &mut theirs,
            &pick(a.changes + k),
            "assignee",
            json!("theirs"),
            3,
        )?;
    }
    for k in 0..a.overlap {
        let id = pick(2 * a.changes + k);
        edit(&mut ours, &id, "title", json!(format!("both {k}")), 2)?;
        edit(&mut theirs, &id, "priority", json!(0), 3)?;
    }
    for k in 0..a.new {
        let m = match json!({"id": format!("bench-new{k:04}"), "title": "new on theirs", "status": "open", "priority": 2})
        {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("an object literal"),
        };
        theirs.insert_map(m).context("inserting")?;
    }
    // Removed on theirs: issues nobody else touched.
    let removed: std::collections::HashSet<String> = (0..a.new)
        .map(|k| pick(2 * a.changes + a.overlap + k))
        .collect();
    let theirs_bytes: Vec<u8> = theirs
        .to_bytes()
        .split_inclusive(|b| *b == b'\n')
        .filter(|l| {
            !removed
                .iter()
                .any(|id| l.starts_with(format!("{{\"id\":\"{id}\"").as_bytes()))
        })
        .flatten()
        .copied()
        .collect();
    Ok((base, ours.to_bytes(), theirs_bytes))
}

/// `spool bench merge`: the merge in-process, and `spool merge` as git runs it (a whole
/// process reading three files and writing the result with fsync).
pub fn bench_merge(a: &MergeBenchArgs) -> Result<i32> {
    use super::bench::{machine, time_runs, Sample};
    use std::time::Instant;
    if a.runs == 0 {
        anyhow::bail!("--runs must be at least 1");
    }
    let (base, ours, theirs) = bench_sides(a)?;
    let check = merge(&base, &ours, &theirs);
    if !check.is_clean() {
        anyhow::bail!("the benchmark merge has conflicts: {:?}", check.conflicts);
    }
    let lines = |b: &[u8]| b.iter().filter(|c| **c == b'\n').count();
    if lines(&check.text) != lines(&base) {
        anyhow::bail!(
            "the merged backlog has {} lines, expected {}",
            lines(&check.text),
            lines(&base)
        );
    }
    let tmp = tempfile::tempdir().context("creating a scratch directory")?;
    let keep = std::env::var_os("SPOOL_BENCH_KEEP").map(std::path::PathBuf::from);
    let dir = keep.as_deref().unwrap_or(tmp.path());
    for (name, bytes) in [("base", &base), ("ours0", &ours), ("theirs", &theirs)] {
        std::fs::write(dir.join(format!("{name}.jsonl")), bytes)?;
    }
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "spool".into());
    let argv: Vec<String> = [&exe, "merge", "base.jsonl", "ours.jsonl", "theirs.jsonl"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let samples = [
        Sample {
            what: "`merge` in-process (the three texts in memory)".into(),
            times: time_runs(a.runs, |_| {
                let start = Instant::now();
                std::hint::black_box(merge(&base, &ours, &theirs));
                Ok(start.elapsed())
            })?,
        },
        Sample {
            what: "`spool merge %O %A %B` process (read 3 files, merge, atomic write)".into(),
            times: time_runs(a.runs, |_| {
                std::fs::copy(dir.join("ours0.jsonl"), dir.join("ours.jsonl"))?;
                crate::exec::measure::time_command(&argv, dir, &[("NO_COLOR", "1")])
            })?,
        },
    ];
    if std::fs::read(dir.join("ours.jsonl"))? != check.text {
        anyhow::bail!("`spool merge` wrote another result than the in-process merge");
    }
    println!("# spool merge benchmark\n");
    println!("- machine: {}", machine());
    println!(
        "- command: `spool bench merge --issues {} --changes {} --overlap {} --new {} --runs {}`",
        a.issues, a.changes, a.overlap, a.new, a.runs
    );
    println!(
        "- backlog: {:.1} MB; ours changes {} issues, theirs {} others and removes {}, adds {}; {} issues changed on both sides in different fields",
        base.len() as f64 / 1e6,
        a.changes + a.overlap,
        a.changes + a.overlap,
        a.new,
        a.new,
        a.overlap
    );
    println!("- p50 / p90 / min in ms over {} runs\n", a.runs);
    super::bench::print_table("what", &samples);
    Ok(0)
}
