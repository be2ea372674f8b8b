//! `spool info [--schema]` and `spool migrate [--inspect]`: what the workspace's store is
//! and holds, in bd's key shape.
//!
//! bd answers these from its database; spool has none: `.beads/issues.jsonl` is the
//! store, read as it is in every shape bd ever wrote. So the answers describe the file —
//! which record variants it holds, which issue fields appear, the prefix and a few ids —
//! and report no registered or pending migrations, because there are none. Both commands
//! read the file without judging it (unreadable lines are counted and warned about, not
//! refused), and never write.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::Result;
use clap::Args;
use serde::de::IgnoredAny;
use serde::Serialize;
use serde_json::{json, Map, Value};
use spool_core::beads::ids;
use spool_core::beads::node::Node;
use spool_core::beads::skim::{Skim, SkimKind};
use spool_core::beads::{RecordKind, StatusKind};

use super::output::print_json;
use super::{Ctx, BD_COMPAT_VERSION};
use crate::backlog::{parse_threads, read_source};
use crate::workspace::{BeadsConfig, Workspace};

#[derive(Debug, Args, Default)]
pub struct InfoArgs {
    /// Also describe the schema: record kinds, issue fields, prefix, sample ids.
    #[arg(long)]
    pub schema: bool,
}

#[derive(Debug, Args, Default)]
pub struct MigrateArgs {
    /// Describe the store and the migrations that would run (none: there is no database).
    #[arg(long)]
    pub inspect: bool,
    /// Accepted for bd compatibility: there is never anything to migrate.
    #[arg(long, hide = true)]
    pub dry_run: bool,
    /// Accepted for bd compatibility: there is never anything to confirm.
    #[arg(long, hide = true)]
    pub yes: bool,
}

/// How many ids `info --schema` shows, as bd.
const SAMPLE_IDS: usize = 3;

/// What the backlog file holds, line by line.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Records {
    pub lines: usize,
    /// Issue lines without `_type` (bd before v1, br, Dolt-era exports).
    pub classic_issue_lines: usize,
    /// Issue lines of bd v1 exports (`"_type":"issue"`).
    pub v1_issue_lines: usize,
    /// `{"_schema":...}` header lines.
    pub schema_headers: usize,
    /// `{"_type":"memory",...}` lines of bd v1 exports.
    pub memory_records: usize,
    /// Other `_type` records, kept as they are.
    pub other_records: usize,
    /// Issues in effect whose status is `tombstone` (soft-deleted).
    pub tombstones: usize,
    /// Issue lines that use the legacy `created`/`updated` keys.
    pub legacy_created_updated_lines: usize,
    pub blank_lines: usize,
    /// Lines that are not a readable record (`spool doctor` names them).
    pub invalid_lines: usize,
    /// Ids that appear on more than one line (the last line is in effect).
    pub duplicate_ids: usize,
}

/// The backlog file described: record variants, issue fields, ids.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Profile {
    pub records: Records,
    /// Top-level keys of the issue lines, sorted.
    pub fields: BTreeSet<String>,
    /// bd tables whose rows the file holds (issue lines embed dependencies, labels and
    /// comments).
    pub tables: Vec<&'static str>,
    /// Issues in effect that are not tombstones.
    pub issue_count: usize,
    /// The first live issue ids, in file order.
    pub sample_ids: Vec<String>,
    /// The prefix most live ids use.
    pub detected_prefix: Option<String>,
}

/// Describes `file`. Pure: the caller reads the bytes.
pub fn profile(skim: &Skim) -> Profile {
    let mut p = Profile::default();
    let r = &mut p.records;
    r.lines = skim.lines().len();
    for (j, line) in skim.lines().iter().enumerate() {
        match line.kind() {
            SkimKind::Blank => r.blank_lines += 1,
            SkimKind::Invalid => r.invalid_lines += 1,
            SkimKind::Record(RecordKind::Header) => r.schema_headers += 1,
            SkimKind::Record(RecordKind::Memory) => r.memory_records += 1,
            SkimKind::Record(RecordKind::Other(_)) => r.other_records += 1,
            SkimKind::Issue(_) => {
                // The keys, from the line read again (a skim keeps no key names).
                let keys = skim.line_copy(j).and_then(|bytes| {
                    serde_json::from_slice::<HashMap<String, IgnoredAny>>(&bytes).ok()
                });
                let keys = keys.unwrap_or_default();
                // An issue line with a `_type` is a bd v1 export's (`_type:"issue"`).
                #[derive(serde::Deserialize)]
                struct Type {
                    #[serde(rename = "_type")]
                    record_type: Option<String>,
                }
                let v1 = keys.contains_key("_type")
                    && skim
                        .line_copy(j)
                        .and_then(|b| serde_json::from_slice::<Type>(&b).ok())
                        .is_some_and(|t| t.record_type.is_some());
                if v1 {
                    r.v1_issue_lines += 1;
                } else {
                    r.classic_issue_lines += 1;
                }
                if keys.contains_key("created") || keys.contains_key("updated") {
                    r.legacy_created_updated_lines += 1;
                }
                p.fields.extend(keys.into_keys());
            }
        }
    }
    r.duplicate_ids = skim.duplicates().count();
    let (mut deps, mut labels, mut comments) = (false, false, false);
    let mut live = Vec::new();
    for issue in skim.issues() {
        deps |= issue.dep_count() > 0;
        labels |= !issue.labels().is_empty();
        comments |= issue.comment_count() > 0;
        if issue.status_kind() == StatusKind::Tombstone {
            r.tombstones += 1;
        } else {
            live.push(issue.id());
        }
    }
    p.issue_count = live.len();
    p.sample_ids = live
        .iter()
        .take(SAMPLE_IDS)
        .map(|s| s.to_string())
        .collect();
    let prefix = ids::choose_prefix(None, live.iter().copied(), "");
    p.detected_prefix = (!prefix.is_empty()).then_some(prefix);
    let has_issues = r.classic_issue_lines + r.v1_issue_lines > 0;
    for (present, table) in [
        (has_issues, "issues"),
        (deps, "dependencies"),
        (labels, "labels"),
        (comments, "comments"),
    ] {
        if present {
            p.tables.push(table);
        }
    }
    p
}

/// The configuration bd reports: the configured issue prefix, if any.
fn config_map(prefix: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(p) = prefix {
        m.insert("issue_prefix".into(), p.into());
    }
    m
}

/// Warnings for `migrate --inspect`, bd's first (a missing prefix), then the file's own.
pub fn warnings(p: &Profile, configured_prefix: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    if p.issue_count > 0 && configured_prefix.is_none() {
        out.push(format!(
            "issue_prefix config not set - may break commands after migration (detected: {})",
            p.detected_prefix.as_deref().unwrap_or("")
        ));
    }
    if p.records.invalid_lines > 0 {
        out.push(format!(
            "{} unreadable line(s) in the backlog: commands that write refuse it until they are fixed (run `spool doctor`)",
            p.records.invalid_lines
        ));
    }
    if p.records.duplicate_ids > 0 {
        out.push(format!(
            "{} id(s) appear on more than one line; the last line of each is in effect (run `spool doctor`)",
            p.records.duplicate_ids
        ));
    }
    out
}

/// The workspace, its backlog described, and the configured prefix.
fn load(ctx: &Ctx) -> Result<(Workspace, Profile, Option<String>)> {
    let ws = ctx.workspace()?;
    let path = ws.issues_path();
    let (skim, _) = Skim::parse(read_source(&path)?, parse_threads());
    let prefix = BeadsConfig::load(&ws.config_path())?
        .issue_prefix
        .map(|p| p.trim().trim_end_matches('-').to_string())
        .filter(|p| !p.is_empty());
    Ok((ws, profile(&skim), prefix))
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

pub fn info_cmd(ctx: &Ctx, args: &InfoArgs) -> Result<i32> {
    let (ws, p, prefix) = load(ctx)?;
    let path = absolute(&ws.issues_path());
    let config = config_map(prefix.as_deref());
    let mut info = json!({
        "database_path": path,
        "mode": "direct",
        "backend": "jsonl",
        "issue_count": p.issue_count,
    });
    if !config.is_empty() {
        info["config"] = Value::Object(config.clone());
    }
    if args.schema {
        info["schema"] = json!({
            "tables": p.tables,
            "schema_version": BD_COMPAT_VERSION,
            "spool_version": env!("CARGO_PKG_VERSION"),
            "config": config,
            "sample_issue_ids": p.sample_ids,
            "detected_prefix": p.detected_prefix.as_deref().unwrap_or(""),
            "fields": p.fields,
            "records": p.records,
        });
    }
    if ctx.global.json {
        print_json(&info)?;
        return Ok(0);
    }
    println!("\nBeads Database Information");
    println!("===========================");
    println!("Database: {path} (JSONL, read and written directly; no database file)");
    println!("Mode: direct");
    println!("\nIssue Count: {}", p.issue_count);
    if let Some(prefix) = &prefix {
        println!("Issue Prefix: {prefix}");
    }
    if args.schema {
        println!("\nSchema Information:");
        println!("  Tables: [{}]", p.tables.join(" "));
        println!(
            "  Schema Version: {BD_COMPAT_VERSION} (spool {})",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(d) = &p.detected_prefix {
            println!("  Detected Prefix: {d}");
        }
        if !p.sample_ids.is_empty() {
            println!("  Sample Issues: [{}]", p.sample_ids.join(" "));
        }
        let fields: Vec<&str> = p.fields.iter().map(String::as_str).collect();
        println!("  Fields: {}", fields.join(", "));
        print_records(&p.records);
    }
    println!();
    Ok(0)
}

pub fn migrate_cmd(ctx: &Ctx, args: &MigrateArgs) -> Result<i32> {
    let (ws, p, prefix) = load(ctx)?;
    if !args.inspect {
        if ctx.global.json {
            print_json(&json!({"status": "current", "applied": 0}))?;
        } else {
            println!(
                "Nothing to migrate: the backlog is {}, read in every shape bd wrote; spool keeps no database.",
                ws.issues_path().display()
            );
        }
        return Ok(0);
    }
    let missing: Vec<&str> = if p.issue_count > 0 && prefix.is_none() {
        vec!["issue_prefix"]
    } else {
        Vec::new()
    };
    let warnings = warnings(&p, prefix.as_deref());
    if ctx.global.json {
        print_json(&json!({
            "registered_migrations": [],
            "current_state": {
                "schema_version": BD_COMPAT_VERSION,
                "issue_count": p.issue_count,
                "config": config_map(prefix.as_deref()),
                "missing_config": missing,
                "db_exists": false,
                "backlog_path": absolute(&ws.issues_path()),
                "records": p.records,
            },
            "warnings": warnings,
            "invariants_to_check": [],
        }))?;
        return Ok(0);
    }
    println!("\nMigration Inspection");
    println!("====================");
    println!(
        "Store: {} (JSONL; no database, no migrations)",
        ws.issues_path().display()
    );
    println!("Schema Version: {BD_COMPAT_VERSION}");
    println!("Issue Count: {}", p.issue_count);
    println!("Registered Migrations: 0");
    print_records(&p.records);
    if !warnings.is_empty() {
        println!("\nWarnings:");
        for w in &warnings {
            println!("  ⚠ {w}");
        }
    }
    if !missing.is_empty() {
        println!("\nMissing Config:");
        for k in &missing {
            println!("  - {k}");
        }
    }
    println!();
    Ok(0)
}

fn print_records(r: &Records) {
    println!("\nRecords ({} lines):", r.lines);
    for (n, what) in [
        (r.classic_issue_lines, "classic issue lines"),
        (r.v1_issue_lines, "bd v1 issue lines (_type)"),
        (r.schema_headers, "_schema headers"),
        (r.memory_records, "memory records"),
        (r.other_records, "other records"),
        (r.tombstones, "tombstones"),
        (
            r.legacy_created_updated_lines,
            "lines with legacy created/updated keys",
        ),
        (r.blank_lines, "blank lines"),
        (r.invalid_lines, "unreadable lines"),
        (r.duplicate_ids, "duplicated ids"),
    ] {
        if n > 0 {
            println!("  {n} {what}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_counts_record_variants_fields_and_ids() {
        let text = concat!(
            "{\"_schema\":\"beads\",\"version\":1}\n",
            "{\"id\":\"p-1\",\"title\":\"a\",\"status\":\"open\",\"labels\":[\"x\"]}\n",
            "{\"_type\":\"issue\",\"id\":\"p-2\",\"title\":\"b\",\"dependencies\":[{\"depends_on_id\":\"p-1\",\"type\":\"blocks\"}]}\n",
            "{\"id\":\"p-3\",\"title\":\"c\",\"status\":\"tombstone\"}\n",
            "{\"id\":\"q-4\",\"title\":\"d\",\"created\":\"2026-01-01T00:00:00Z\"}\n",
            "{\"_type\":\"memory\",\"key\":\"k\",\"value\":\"v\"}\n",
            "\n",
            "not json\n",
        );
        let (skim, _) = Skim::parse(
            std::sync::Arc::new(text.as_bytes().to_vec()),
            std::num::NonZeroUsize::MIN,
        );
        let p = profile(&skim);
        assert_eq!(
            p.records,
            Records {
                lines: 8,
                classic_issue_lines: 3,
                v1_issue_lines: 1,
                schema_headers: 1,
                memory_records: 1,
                other_records: 0,
                tombstones: 1,
                legacy_created_updated_lines: 1,
                blank_lines: 1,
                invalid_lines: 1,
                duplicate_ids: 0,
            }
        );
        assert_eq!(p.issue_count, 3);
        assert_eq!(p.sample_ids, ["p-1", "p-2", "q-4"]);
        assert_eq!(p.detected_prefix.as_deref(), Some("p"));
        assert_eq!(p.tables, ["issues", "dependencies", "labels"]);
        let fields: Vec<&str> = p.fields.iter().map(String::as_str).collect();
        assert_eq!(
            fields,
            [
                "_type",
                "created",
                "dependencies",
                "id",
                "labels",
                "status",
                "title"
            ]
        );
        let w = warnings(&p, None);
        assert!(w[0].contains("detected: p"), "{w:?}");
        assert!(w.iter().any(|w| w.contains("1 unreadable line")), "{w:?}");
        assert_eq!(warnings(&p, Some("p")).len(), 1);
    }
}
